package gateway

import (
	"fmt"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"

	"github.com/concierge-wasm/concierge/hosttest/internal/engine"
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
			out = append(out, ServiceConfig{Filter: f, Singleton: ws.GetSingleton()})
		}
	}
	return out
}

// startServices starts every WasmService before the listeners, as Envoy
// starts bootstrap extensions at boot; they share shared data and queues
// with every listener's filters.
func (g *Gateway) startServices() error {
	for _, s := range g.cfg.Services {
		f := s.Filter
		prefix := wasmLogPrefix(f.PluginName, f.Engine.RootID, f.Engine.VMID)
		clusters := map[string]engine.Cluster{}
		for name, c := range g.clusters {
			clusters[name] = engine.Cluster{Handler: c.calloutHandler()}
		}
		log := g.log
		h, err := engine.Start(engine.Options{Filters: []engine.FilterConfig{f.Engine}, Workers: g.opts.Workers,
			Profile: g.opts.Profile, Clusters: clusters, MaxLogs: 1000, MainThreadOnly: s.Singleton, ShareWith: g.shareRoot,
			LogSink: func(e engine.LogEntry) { log.plugin(e, prefix) }})
		if err != nil {
			return fmt.Errorf("bootstrap extension %s: %w", f.Engine.Name, err)
		}
		g.services = append(g.services, h)
		g.noteShared(h)
		g.logSharedVMs("wasm service "+f.Engine.Name, h, []engine.FilterConfig{f.Engine})
		kind := "one VM per worker"
		if s.Singleton {
			kind = "singleton on the main thread"
		}
		g.log.Infof("main", "wasm service %s started (%s)", f.Engine.Name, kind)
	}
	return nil
}

// noteShared makes h the host whose shared data and queues every later
// host uses: in Envoy both are process-wide.
func (g *Gateway) noteShared(h *engine.Host) {
	if g.shareRoot == nil {
		g.shareRoot = h
	}
}

// engineHosts are every engine the gateway runs: the HTTP listeners', the
// TCP listeners' and the services', whose metrics /stats merges.
func (g *Gateway) engineHosts() []*engine.Host {
	var out []*engine.Host
	for _, l := range g.listeners {
		if l.host != nil {
			out = append(out, l.host)
		}
	}
	for _, t := range g.tcp {
		if t.host != nil {
			out = append(out, t.host)
		}
	}
	return append(out, g.services...)
}
