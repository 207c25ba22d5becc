package gateway

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"time"

	overloadv3 "github.com/envoyproxy/go-control-plane/envoy/config/overload/v3"
	fixedheapv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/resource_monitors/fixed_heap/v3"
)

// Envoy's names for what the gateway emulates of the overload manager.
const (
	fixedHeapMonitor       = "envoy.resource_monitors.fixed_heap"
	stopAcceptingRequests  = "envoy.overload_actions.stop_accepting_requests"
	defaultOverloadRefresh = time.Second
)

// OverloadConfig is the part of the bootstrap's overload_manager the
// gateway emulates: the fixed_heap resource monitor and the
// stop_accepting_requests action on it.
type OverloadConfig struct {
	// Refresh is refresh_interval: how often the monitor samples.
	Refresh time.Duration
	// MaxHeapBytes is the fixed_heap monitor's max_heap_size_bytes:
	// pressure is the memory in use over it.
	MaxHeapBytes uint64
	// StopRequests is the trigger of stop_accepting_requests; nil: the
	// action is not configured.
	StopRequests *OverloadTrigger
}

// OverloadTrigger is a threshold trigger (the action is fully on at Value
// and above) or a scaled one (off below Scaling, on at Saturation and
// above, in proportion between).
type OverloadTrigger struct {
	Scaled              bool
	Value               float64
	Scaling, Saturation float64
}

// level is how far the action is on at pressure p, 0 to 1.
func (t *OverloadTrigger) level(p float64) float64 {
	switch {
	case !t.Scaled && p >= t.Value:
		return 1
	case !t.Scaled:
		return 0
	case p >= t.Saturation:
		return 1
	case p <= t.Scaling:
		return 0
	}
	return (p - t.Scaling) / (t.Saturation - t.Scaling)
}

func compileOverload(c *checker, om *overloadv3.OverloadManager) *OverloadConfig {
	const at = "bootstrap.overload_manager"
	c.check(om, at, fields{use: "refresh_interval resource_monitors actions", warn: map[string]string{
		"buffer_factory_config": "buffer accounting",
		"loadshed_points":       "load shed points",
	}})
	o := &OverloadConfig{Refresh: dur(om.GetRefreshInterval(), defaultOverloadRefresh)}
	for i, m := range om.GetResourceMonitors() {
		mat := fmt.Sprintf("%s.resource_monitors[%d]", at, i)
		if m.GetName() != fixedHeapMonitor {
			c.warnf("%s: resource monitor %q is not emulated (only %s)", mat, m.GetName(), fixedHeapMonitor)
			continue
		}
		var fh fixedheapv3.FixedHeapConfig
		if err := m.GetTypedConfig().UnmarshalTo(&fh); err != nil {
			c.errorf("%s.typed_config: %v", mat, err)
			continue
		}
		o.MaxHeapBytes = fh.GetMaxHeapSizeBytes()
	}
	for i, a := range om.GetActions() {
		aat := fmt.Sprintf("%s.actions[%d]", at, i)
		if a.GetName() != stopAcceptingRequests {
			c.warnf("%s: overload action %q is not emulated (only %s)", aat, a.GetName(), stopAcceptingRequests)
			continue
		}
		for j, tr := range a.GetTriggers() {
			tat := fmt.Sprintf("%s.triggers[%d]", aat, j)
			if tr.GetName() != fixedHeapMonitor {
				c.warnf("%s: trigger on %q is not emulated (only %s)", tat, tr.GetName(), fixedHeapMonitor)
				continue
			}
			switch {
			case tr.GetThreshold() != nil:
				o.StopRequests = &OverloadTrigger{Value: tr.GetThreshold().GetValue()}
			case tr.GetScaled() != nil:
				s := tr.GetScaled()
				o.StopRequests = &OverloadTrigger{Scaled: true, Scaling: s.GetScalingThreshold(), Saturation: s.GetSaturationThreshold()}
			}
		}
	}
	if o.StopRequests != nil && o.MaxHeapBytes == 0 {
		c.errorf("%s: %s triggers on %s, which is not configured", at, stopAcceptingRequests, fixedHeapMonitor)
	}
	return o
}

// overload is the running monitor: it samples the memory in use every
// refresh interval and publishes the stop_accepting_requests level, which
// every new request reads.
type overload struct {
	cfg   *OverloadConfig
	level atomic.Uint64 // float64 bits, 0 to 1
	// pressure is the last sample, for /stats (float64 bits).
	pressure atomic.Uint64
	stop     chan struct{}
}

func startOverload(cfg *OverloadConfig) *overload {
	o := &overload{cfg: cfg, stop: make(chan struct{})}
	o.sample()
	go func() {
		t := time.NewTicker(cfg.Refresh)
		defer t.Stop()
		for {
			select {
			case <-o.stop:
				return
			case <-t.C:
				o.sample()
			}
		}
	}()
	return o
}

// memoryInUse is the process's memory the Go runtime has mapped and not
// given back or left free, the analogue of the fixed_heap monitor's
// heap_size - pageheap_unmapped - pageheap_free. It includes every VM's
// linear memory: wazero allocates it on the Go heap.
func memoryInUse() uint64 {
	s := []metrics.Sample{
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
	}
	metrics.Read(s)
	return s[0].Value.Uint64() - s[1].Value.Uint64() - s[2].Value.Uint64()
}

func (o *overload) sample() {
	p := float64(memoryInUse()) / float64(o.cfg.MaxHeapBytes)
	if o.cfg.StopRequests != nil && o.cfg.StopRequests.level(p) > 0 {
		// Envoy's allocator frees memory as it goes; Go's heap holds
		// garbage until the next collection, and a gateway that sheds
		// every request allocates nothing that would start one. Under
		// pressure, measure the live heap instead (one collection per
		// refresh interval at most).
		runtime.GC()
		p = float64(memoryInUse()) / float64(o.cfg.MaxHeapBytes)
	}
	o.pressure.Store(math.Float64bits(p))
	if o.cfg.StopRequests != nil {
		o.level.Store(math.Float64bits(o.cfg.StopRequests.level(p)))
	}
}

// shed reports whether a new request is refused: with the action's level
// as probability, as Envoy's connection manager draws it per request.
func (o *overload) shed() bool {
	if o == nil {
		return false
	}
	l := math.Float64frombits(o.level.Load())
	return l > 0 && (l >= 1 || rand.Float64() < l)
}

func (o *overload) close() {
	if o != nil {
		close(o.stop)
	}
}

// overloadReply is Envoy's answer to a request dropped by
// stop_accepting_requests: 503 "envoy overloaded", details overload, flag
// OM, sent before any filter is created.
func (l *listener) overloadReply(w http.ResponseWriter, r *http.Request) {
	l.rqOverload.Add(1)
	l.count(http.StatusServiceUnavailable)
	l.g.log.Debugf("http", "%s %s: 503 overload (OM)", r.Method, r.RequestURI)
	w.Header().Set("content-type", "text/plain")
	l.serverHeader(w.Header())
	w.WriteHeader(http.StatusServiceUnavailable)
	io.WriteString(w, "envoy overloaded")
}
