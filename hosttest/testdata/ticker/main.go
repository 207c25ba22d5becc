// Command ticker counts OnTick calls in the counter metric
// ticker_ticks_total (the host aggregates counters across VMs) and logs
// "tick" each time. Plugin configuration: {"tick_ms": N}; 0 or absent means
// no ticks.
package main

import (
	"github.com/tidwall/gjson"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetPluginContext(func(uint32) types.PluginContext {
		return &ticker{}
	})
}

type ticker struct {
	types.DefaultPluginContext
	ticks proxywasm.MetricCounter
}

func (t *ticker) OnPluginStart(int) types.OnPluginStartStatus {
	cfg, _ := proxywasm.GetPluginConfiguration() // absent config: no ticks
	ms := gjson.GetBytes(cfg, "tick_ms").Uint()
	t.ticks = proxywasm.DefineCounterMetric("ticker_ticks_total")
	if ms > 0 {
		if err := proxywasm.SetTickPeriodMilliSeconds(uint32(ms)); err != nil {
			proxywasm.LogErrorf("ticker: set tick period: %v", err)
			return types.OnPluginStartStatusFailed
		}
	}
	return types.OnPluginStartStatusOK
}

func (t *ticker) OnTick() {
	t.ticks.Increment(1)
	proxywasm.LogInfo("tick")
}

// NewHttpContext must return a context: the default returns nil, and the SDK
// panics when a stream is created on a plugin with neither an HTTP nor a TCP
// context, which would break the ticker when installed as an HTTP filter.
func (*ticker) NewHttpContext(uint32) types.HttpContext {
	return &types.DefaultHttpContext{}
}
