package gateway

import (
	"io"
	"math"
	"net/http"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// overloadBootstrap adds an overload manager (fixed_heap at maxHeap bytes,
// stop_accepting_requests at threshold) to the probe gateway.
func overloadBootstrap(t *testing.T, maxHeap string, threshold string) string {
	t.Helper()
	one := echoServer(t, "one")
	y := bootstrap(wasmFilter("probe", module(t, "hosttest/testdata/probe"), `{"name":"probe"}`),
		"- name: all\n  match: { prefix: / }\n  route: { cluster: one }", staticCluster("one", []string{port(t, one)}, ""))
	return y + `
overload_manager:
  refresh_interval: 0.05s
  resource_monitors:
  - name: envoy.resource_monitors.fixed_heap
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.resource_monitors.fixed_heap.v3.FixedHeapConfig
      max_heap_size_bytes: ` + maxHeap + `
  actions:
  - name: envoy.overload_actions.stop_accepting_requests
    triggers:
    - name: envoy.resource_monitors.fixed_heap
      threshold: { value: ` + threshold + ` }
`
}

// TestOverloadStopsAcceptingRequests: with the memory in use over the
// fixed_heap monitor's threshold, new requests get Envoy's 503 "envoy
// overloaded" before any filter runs; under it they pass.
func TestOverloadStopsAcceptingRequests(t *testing.T) {
	tests := []struct {
		name    string
		maxHeap string
		status  int
	}{
		// The test process alone uses far more than 1 MiB.
		{"over the threshold", "1048576", 503},
		{"under the threshold", "1099511627776", 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := start(t, overloadBootstrap(t, tc.maxHeap, "0.95"))
			base := "http://" + g.Addr("ingress")
			r := do(t, client(t), "GET", base+"/x", map[string]string{"x-probe": "add-req:x-probed=1"}, nil)
			if r.status != tc.status {
				t.Fatalf("status %d %q, want %d", r.status, r.body, tc.status)
			}
			if tc.status == 503 {
				if string(r.body) != "envoy overloaded" || r.header.Get("x-probe-saw") != "" {
					t.Errorf("overloaded: body %q, x-probe-saw %q; want \"envoy overloaded\" from the connection manager, no filter run", r.body, r.header.Get("x-probe-saw"))
				}
				stats := adminGet(t, g, "/stats/prometheus")
				for _, want := range []string{"envoy_http_downstream_rq_overload_close{envoy_http_conn_manager_prefix=\"ingress_http\"} 1",
					"envoy_overload_envoy_overload_actions_stop_accepting_requests_scale_percent 100"} {
					if !strings.Contains(stats, want) {
						t.Errorf("/stats/prometheus lacks %q", want)
					}
				}
			}
		})
	}
}

func adminGet(t *testing.T, g *Gateway, path string) string {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	res, err := c.Get("http://" + g.AdminAddr() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

// TestOverloadMeasuresLiveMemory: garbage left by a burst does not keep
// the gateway shedding. Go's heap holds it until a collection, and a
// gateway that refuses every request allocates nothing that would start
// one; the monitor collects before it decides, as Envoy's allocator, which
// frees at once, would count.
func TestOverloadMeasuresLiveMemory(t *testing.T) {
	runtime.GC()
	base := memoryInUse()
	defer debug.SetGCPercent(debug.SetGCPercent(-1)) // no collection but the monitor's
	garbage := make([]byte, 256<<20)
	for i := 0; i < len(garbage); i += 4096 {
		garbage[i] = 1
	}
	garbage = nil
	if got := memoryInUse(); got < base+128<<20 {
		t.Fatalf("memory in use %d MiB after 256 MiB of garbage from %d MiB: the setup did not hold the garbage", got>>20, base>>20)
	}
	o := &overload{cfg: &OverloadConfig{MaxHeapBytes: base + 64<<20, StopRequests: &OverloadTrigger{Value: 0.95}}}
	o.sample()
	if o.shed() {
		t.Errorf("pressure %.2f after the garbage (live %d MiB, limit %d MiB): the monitor sheds on garbage",
			math.Float64frombits(o.pressure.Load()), base>>20, (base+64<<20)>>20)
	}
}
