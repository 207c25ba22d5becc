package gateway

import (
	"fmt"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
)

// ServiceConfig is a bootstrap_extensions envoy.bootstrap.wasm: a
// WasmService, a plugin with a root context and no stream (the usual
// consumer of shared queues, or a ticker that refreshes shared data).
type ServiceConfig struct {
	Filter FilterConfig
	// Singleton: one VM on the main thread; otherwise one per worker.
	Singleton bool
}

func compileServices(c *checker, bs *bootstrapv3.Bootstrap, o Options) []ServiceConfig {
	var out []ServiceConfig
	for i, ext := range bs.GetBootstrapExtensions() {
		at := fmt.Sprintf("bootstrap_extensions[%d]", i)
		c.check(ext, at, fields{use: "name typed_config"})
		m, err := ext.GetTypedConfig().UnmarshalNew()
		if err != nil {
			c.errorf("%s.typed_config: %v", at, err)
			continue
		}
		ws, ok := m.(*wasmv3.WasmService)
		if !ok {
			c.errorf("%s.typed_config: %s is not supported; only envoy.bootstrap.wasm (WasmService) is", at, ext.GetTypedConfig().GetTypeUrl())
			continue
		}
		c.check(ws, at+".typed_config", fields{use: "config singleton"})
		if ws.GetConfig() == nil {
			c.errorf("%s.typed_config.config: required", at)
			continue
		}
		if f, ok := compileWasm(c, ws.GetConfig(), at+".typed_config.config", ext.GetName(), o); ok {
			f.Engine.Name = c.engineName(f.Engine.Name)
			f.Engine.MainThreadOnly = ws.GetSingleton()
			out = append(out, ServiceConfig{Filter: f, Singleton: ws.GetSingleton()})
		}
	}
	return out
}
