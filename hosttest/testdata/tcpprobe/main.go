// Command tcpprobe is a network (TCP) filter for hosttest's own tests of
// connection contexts. Plugin configuration, every field optional:
//
//		{"upper": true, "prefix_up": "S:", "pause": true, "tick_ms": 10, "close_on": "QUIT"}
//
//	  - upper: downstream data is replaced by its upper-case form.
//	  - prefix_up: prepended to every upstream data chunk.
//	  - pause: downstream data is held (Pause) until the next tick resumes the
//	    connection with ContinueTcpStream (needs tick_ms).
//	  - close_on: downstream data containing this text closes the connection.
//	  - log_cluster: on new connection and on upstream data, a line with
//	    xds.cluster_name and xds.cluster_metadata.filter_metadata.location.
//
// It logs one info line per callback (new, down, up, down-close, up-close,
// done) and counts bytes in the counter tcpprobe_bytes_total.
package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sort"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetPluginContext(func(uint32) types.PluginContext { return &plugin{} })
}

type config struct {
	upper    bool
	prefixUp string
	pause    bool
	closeOn  string
	panicOn  string
	cluster  bool
}

type plugin struct {
	types.DefaultPluginContext
	cfg    config
	bytes  proxywasm.MetricCounter
	paused []uint32
}

func (p *plugin) OnPluginStart(int) types.OnPluginStartStatus {
	raw, _ := proxywasm.GetPluginConfiguration()
	if len(raw) > 0 && !gjson.ValidBytes(raw) {
		proxywasm.LogError("invalid config: not valid JSON")
		return types.OnPluginStartStatusFailed
	}
	p.cfg = config{
		upper:    gjson.GetBytes(raw, "upper").Bool(),
		prefixUp: gjson.GetBytes(raw, "prefix_up").String(),
		pause:    gjson.GetBytes(raw, "pause").Bool(),
		closeOn:  gjson.GetBytes(raw, "close_on").String(),
		panicOn:  gjson.GetBytes(raw, "panic_on").String(),
		cluster:  gjson.GetBytes(raw, "log_cluster").Bool(),
	}
	p.bytes = proxywasm.DefineCounterMetric("tcpprobe_bytes_total")
	if ms := gjson.GetBytes(raw, "tick_ms").Uint(); ms > 0 {
		if err := proxywasm.SetTickPeriodMilliSeconds(uint32(ms)); err != nil {
			proxywasm.LogErrorf("set tick period: %v", err)
		}
	}
	return types.OnPluginStartStatusOK
}

func (p *plugin) OnTick() {
	for _, id := range p.paused {
		if err := proxywasm.SetEffectiveContext(id); err != nil {
			proxywasm.LogErrorf("resume ctx=%d: set effective context: %v", id, err)
			continue
		}
		if err := proxywasm.ContinueTcpStream(); err != nil {
			proxywasm.LogErrorf("resume ctx=%d: %v", id, err)
			continue
		}
		proxywasm.LogInfof("resume ctx=%d", id)
	}
	p.paused = p.paused[:0]
}

func (p *plugin) NewTcpContext(id uint32) types.TcpContext {
	return &conn{p: p, id: id}
}

type conn struct {
	types.DefaultTcpContext
	p          *plugin
	id         uint32
	down, up   int
	heldBefore bool
}

func prop(path ...string) string {
	v, err := proxywasm.GetProperty(path)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(v)
}

func intProp(path ...string) string {
	v, err := proxywasm.GetProperty(path)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	if len(v) != 8 {
		return fmt.Sprintf("<%d bytes>", len(v))
	}
	return fmt.Sprint(binary.LittleEndian.Uint64(v))
}

// pairsProp reads a map-valued property (proxy-wasm pairs) as sorted
// k=v,k=v.
func pairsProp(path ...string) string {
	kvs, err := proxywasm.GetPropertyMap(path)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	var out []string
	for _, kv := range kvs {
		out = append(out, kv[0]+"="+kv[1])
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// logCluster logs what the filter knows of tcp_proxy's cluster.
func (c *conn) logCluster(when string) {
	if !c.p.cfg.cluster {
		return
	}
	proxywasm.LogInfof("cluster ctx=%d at=%s name=%s location=%s", c.id, when,
		prop("xds", "cluster_name"), pairsProp("xds", "cluster_metadata", "filter_metadata", "location"))
}

func (c *conn) OnNewConnection() types.Action {
	proxywasm.LogInfof("new ctx=%d src=%s dst=%s conn=%s", c.id,
		prop("source", "address"), prop("destination", "address"), intProp("connection_id"))
	c.logCluster("new")
	return types.ActionContinue
}

func (c *conn) OnDownstreamData(size int, eos bool) types.Action {
	data, err := proxywasm.GetDownstreamData(0, size)
	if err != nil && size > 0 {
		proxywasm.LogErrorf("get downstream data: %v", err)
	}
	proxywasm.LogInfof("down ctx=%d size=%d eos=%t data=%q upstream=%s", c.id, size, eos, data, prop("upstream", "address"))
	if c.p.cfg.panicOn != "" && bytes.Contains(data, []byte(c.p.cfg.panicOn)) {
		panic("tcpprobe: panic_on")
	}
	if c.p.cfg.closeOn != "" && bytes.Contains(data, []byte(c.p.cfg.closeOn)) {
		if err := proxywasm.CloseDownstream(); err != nil {
			proxywasm.LogErrorf("close: %v", err)
		}
		return types.ActionPause
	}
	if c.p.cfg.pause && !c.heldBefore {
		// Held once: the tick resumes it, and later data flows freely.
		c.heldBefore = true
		c.p.paused = append(c.p.paused, c.id)
		return types.ActionPause
	}
	c.down += size
	if size > 0 {
		c.p.bytes.Increment(uint64(size)) // a counter refuses a zero increment
	}
	if c.p.cfg.upper && size > 0 {
		if err := proxywasm.ReplaceDownstreamData(bytes.ToUpper(data)); err != nil {
			proxywasm.LogErrorf("replace downstream data: %v", err)
		}
	}
	return types.ActionContinue
}

func (c *conn) OnUpstreamData(size int, eos bool) types.Action {
	data, err := proxywasm.GetUpstreamData(0, size)
	if err != nil && size > 0 {
		proxywasm.LogErrorf("get upstream data: %v", err)
	}
	proxywasm.LogInfof("up ctx=%d size=%d eos=%t data=%q upstream=%s", c.id, size, eos, data, prop("upstream", "address"))
	c.logCluster("up")
	c.up += size
	if size > 0 {
		c.p.bytes.Increment(uint64(size))
	}
	if c.p.cfg.prefixUp != "" && size > 0 {
		if err := proxywasm.PrependUpstreamData([]byte(c.p.cfg.prefixUp)); err != nil {
			proxywasm.LogErrorf("prepend upstream data: %v", err)
		}
	}
	return types.ActionContinue
}

func (c *conn) OnDownstreamClose(peer types.PeerType) {
	proxywasm.LogInfof("down-close ctx=%d peer=%d", c.id, peer)
}

func (c *conn) OnUpstreamClose(peer types.PeerType) {
	proxywasm.LogInfof("up-close ctx=%d peer=%d", c.id, peer)
}

func (c *conn) OnStreamDone() {
	proxywasm.LogInfof("done ctx=%d down=%d up=%d", c.id, c.down, c.up)
}
