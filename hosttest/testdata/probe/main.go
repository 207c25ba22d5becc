// Command probe is a scriptable proxy-wasm HTTP filter used by hosttest to
// exercise every host call. Each request carries its script in the request
// header "x-<name>" (a space-separated list of "verb" or "verb:arg"
// actions); results come back as headers "x-<name>-..." and as log lines.
// The exact protocol is in ../README.md.
//
// This file holds the VM and plugin contexts (configuration, ticks, queues,
// metrics); http.go holds the per-request verbs.
package main

import (
	"bytes"
	"errors"
	"time"

	"github.com/tidwall/gjson"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetVMContext(&vmContext{})
}

type vmContext struct {
	types.DefaultVMContext
}

func (*vmContext) OnVMStart(int) types.OnVMStartStatus {
	// An absent VM configuration is reported as an error by the SDK; it is
	// logged as empty.
	cfg, _ := proxywasm.GetVMConfiguration()
	proxywasm.LogInfof("vm_start config=%s", cfg)
	return types.OnVMStartStatusOK
}

func (*vmContext) NewPluginContext(id uint32) types.PluginContext {
	return &pluginContext{id: id}
}

// config is the plugin configuration, e.g.
// {"name": "p", "tick_ms": 0, "queue": "", "fail_start": false, "metrics": false}.
type config struct {
	name      string // request script header is "x-<name>"; use a lowercase token
	tickMs    uint32
	queue     string
	failStart bool
	metrics   bool
	// startProps are '.'-separated property paths logged at plugin start
	// ("start-prop <path>=<value>"): what a root context reads.
	startProps []string
}

func parseConfig(raw []byte) (config, error) {
	c := config{name: "probe"}
	if len(bytes.TrimSpace(raw)) == 0 {
		return c, nil
	}
	if !gjson.ValidBytes(raw) {
		return c, errors.New("not valid JSON")
	}
	r := gjson.ParseBytes(raw)
	if n := r.Get("name").String(); n != "" {
		c.name = n
	}
	c.tickMs = uint32(r.Get("tick_ms").Uint())
	c.queue = r.Get("queue").String()
	c.failStart = r.Get("fail_start").Bool()
	c.metrics = r.Get("metrics").Bool()
	for _, p := range r.Get("start_props").Array() {
		c.startProps = append(c.startProps, p.String())
	}
	return c, nil
}

// pausedStream is a stream stopped by pause-req/pause-resp, resumed on the
// next tick.
type pausedStream struct {
	id       uint32
	response bool
}

type pluginContext struct {
	types.DefaultPluginContext
	id      uint32
	cfg     config
	start   time.Time // for the "time" verb's monotonic reading
	queueID uint32
	paused  []pausedStream

	// Defined only when cfg.metrics is true.
	requests proxywasm.MetricCounter
	inflight proxywasm.MetricGauge
	size     proxywasm.MetricHistogram
}

func (p *pluginContext) OnPluginStart(int) types.OnPluginStartStatus {
	p.start = time.Now()
	raw, _ := proxywasm.GetPluginConfiguration() // absent config means defaults
	cfg, err := parseConfig(raw)
	if err != nil {
		proxywasm.LogErrorf("invalid config: %v", err)
		return types.OnPluginStartStatusFailed
	}
	p.cfg = cfg
	proxywasm.LogInfof("plugin_start name=%s", cfg.name)
	for _, path := range cfg.startProps {
		proxywasm.LogInfof("start-prop %s=%s", path, getProp(path))
	}

	if cfg.failStart {
		proxywasm.LogError("refusing config")
		return types.OnPluginStartStatusFailed
	}
	if cfg.tickMs > 0 {
		if err := proxywasm.SetTickPeriodMilliSeconds(cfg.tickMs); err != nil {
			proxywasm.LogErrorf("set tick period: %v", err)
		}
	}
	if cfg.queue != "" {
		id, err := proxywasm.RegisterSharedQueue(cfg.queue)
		if err != nil {
			proxywasm.LogErrorf("register queue %s: %v", cfg.queue, err)
		} else {
			p.queueID = id
			proxywasm.LogInfof("queue %s registered id=%d", cfg.queue, id)
		}
	}
	if cfg.metrics {
		p.requests = proxywasm.DefineCounterMetric("probe_requests_total")
		p.inflight = proxywasm.DefineGaugeMetric("probe_inflight")
		p.size = proxywasm.DefineHistogramMetric("probe_size")
	}
	return types.OnPluginStartStatusOK
}

// OnTick resumes every stream paused by pause-req/pause-resp.
func (p *pluginContext) OnTick() {
	// Take the list first: a host that resumes synchronously may re-enter
	// the VM and pause the same stream again (pause-resp after pause-req),
	// which must land in a fresh list for the next tick.
	paused := p.paused
	p.paused = nil
	for _, s := range paused {
		dir := "req"
		if s.response {
			dir = "resp"
		}
		// Host calls made from OnTick target the plugin context until the
		// effective context is switched to the stream.
		if err := proxywasm.SetEffectiveContext(s.id); err != nil {
			proxywasm.LogErrorf("resume %s ctx=%d: set effective context: %v", dir, s.id, err)
			continue
		}
		var err error
		if s.response {
			err = proxywasm.ResumeHttpResponse()
		} else {
			err = proxywasm.ResumeHttpRequest()
		}
		if err != nil {
			proxywasm.LogErrorf("resume %s ctx=%d: %v", dir, s.id, err)
		} else {
			proxywasm.LogInfof("resume %s ctx=%d", dir, s.id)
		}
	}
}

// forget drops a finished stream from the paused list so a later tick does
// not try to resume a deleted context.
func (p *pluginContext) forget(id uint32) {
	kept := p.paused[:0]
	for _, s := range p.paused {
		if s.id != id {
			kept = append(kept, s)
		}
	}
	p.paused = kept
}

// OnQueueReady drains the queue; another VM may have emptied it already.
func (p *pluginContext) OnQueueReady(id uint32) {
	for {
		msg, err := proxywasm.DequeueSharedQueue(id)
		if errors.Is(err, types.ErrorStatusEmpty) {
			return
		}
		if err != nil {
			proxywasm.LogErrorf("queue %d dequeue: %v", id, err)
			return
		}
		proxywasm.LogInfof("queue %d got %s", id, msg)
	}
}

func (p *pluginContext) NewHttpContext(id uint32) types.HttpContext {
	return &httpContext{id: id, plugin: p, prefix: "x-" + p.cfg.name}
}
