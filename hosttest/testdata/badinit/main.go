// Command badinit makes host calls from Go init(), i.e. inside the module's
// _initialize export, before any proxy-wasm context exists. It reproduces the
// Envoy failure where such a plugin fails to load: the SDK's
// DefineCounterMetric panics when the host returns an error, which traps
// _initialize.
package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetHttpContext(func(uint32) types.HttpContext {
		return &types.DefaultHttpContext{}
	})

	// Logging is allowed during init in Envoy, so the results are visible.
	err := proxywasm.SetSharedData("k", []byte("v"), 0)
	proxywasm.LogErrorf("badinit: SetSharedData during init: err=%v", err)

	// DefineCounterMetric has no error result: on a host error it panics
	// ("define metric of name x: ..."), and that panic is the point of this
	// plugin. The log line below is only reached if the host accepted it.
	id := proxywasm.DefineCounterMetric("x")
	proxywasm.LogErrorf("badinit: DefineCounterMetric during init: id=%d", uint32(id))
}
