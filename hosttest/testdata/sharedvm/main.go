// Command sharedvm shows which plugins share a VM: a package-level counter
// is incremented in every OnPluginStart, so two plugins in one VM see 1
// then 2, while plugins in separate VMs both see 1.
//
// Plugin configuration: {"name": S, "tick_ms": N, "tcp": B}.
//   - OnVMStart logs [info] "vm_start n=<vm starts in this VM>".
//   - OnPluginStart logs [info] "plugin_start name=<S> root=<root context id> count=<counter>";
//     with tick_ms > 0 it sets the tick period.
//   - OnTick logs [info] "tick name=<S> root=<root context id>".
//   - Request headers: adds request headers x-<S>-root (the root context
//     id), x-<S>-count (the counter now), x-<S>-parent-name (the
//     plugin_name property read from the stream context) and panics when
//     request header x-panic equals S.
//   - With "tcp": true it is a network filter (the Go SDK makes an HTTP
//     context whenever NewHttpContext returns one, so it returns none):
//     OnNewConnection logs [info] "tcp name=<S> root=<root context id>
//     count=<counter>".
package main

import (
	"strconv"

	"github.com/tidwall/gjson"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

// Shared by every plugin (root context) of this VM.
var (
	vmStarts     int
	pluginStarts int
)

func init() {
	proxywasm.SetVMContext(&vmContext{})
}

type vmContext struct {
	types.DefaultVMContext
}

func (*vmContext) OnVMStart(int) types.OnVMStartStatus {
	vmStarts++
	proxywasm.LogInfof("vm_start n=%d", vmStarts)
	return types.OnVMStartStatusOK
}

func (*vmContext) NewPluginContext(id uint32) types.PluginContext {
	return &pluginContext{id: id}
}

type pluginContext struct {
	types.DefaultPluginContext
	id   uint32
	name string
	tcp  bool
}

func (p *pluginContext) OnPluginStart(int) types.OnPluginStartStatus {
	pluginStarts++
	cfg, _ := proxywasm.GetPluginConfiguration()
	p.name = gjson.GetBytes(cfg, "name").String()
	p.tcp = gjson.GetBytes(cfg, "tcp").Bool()
	proxywasm.LogInfof("plugin_start name=%s root=%d count=%d", p.name, p.id, pluginStarts)
	if ms := gjson.GetBytes(cfg, "tick_ms").Uint(); ms > 0 {
		if err := proxywasm.SetTickPeriodMilliSeconds(uint32(ms)); err != nil {
			proxywasm.LogErrorf("set tick period: %v", err)
			return types.OnPluginStartStatusFailed
		}
	}
	return types.OnPluginStartStatusOK
}

func (p *pluginContext) OnTick() {
	proxywasm.LogInfof("tick name=%s root=%d", p.name, p.id)
}

func (p *pluginContext) NewHttpContext(uint32) types.HttpContext {
	if p.tcp {
		return nil
	}
	return &httpContext{p: p}
}

type httpContext struct {
	types.DefaultHttpContext
	p *pluginContext
}

func (h *httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	n := h.p.name
	add := func(k, v string) {
		if err := proxywasm.AddHttpRequestHeader(k, v); err != nil {
			proxywasm.LogErrorf("add %s: %v", k, err)
		}
	}
	add("x-"+n+"-root", strconv.FormatUint(uint64(h.p.id), 10))
	add("x-"+n+"-count", strconv.Itoa(pluginStarts))
	if v, err := proxywasm.GetProperty([]string{"plugin_name"}); err == nil {
		add("x-"+n+"-parent-name", string(v))
	} else {
		add("x-"+n+"-parent-name", "error: "+err.Error())
	}
	if v, _ := proxywasm.GetHttpRequestHeader("x-panic"); v != "" && v == n {
		panic("sharedvm " + n + ": x-panic")
	}
	return types.ActionContinue
}

func (p *pluginContext) NewTcpContext(uint32) types.TcpContext {
	return &tcpContext{p: p}
}

type tcpContext struct {
	types.DefaultTcpContext
	p *pluginContext
}

func (c *tcpContext) OnNewConnection() types.Action {
	proxywasm.LogInfof("tcp name=%s root=%d count=%d", c.p.name, c.p.id, pluginStarts)
	return types.ActionContinue
}
