package hosttest_test

import (
	"strings"
	"testing"

	"github.com/concierge-wasm/concierge/hosttest"
)

// The shared-queue pattern: HTTP filters enqueue, a singleton WasmService
// with the same vm_id dequeues on the main thread.
func TestSingletonConsumesQueue(t *testing.T) {
	h := hosttest.New(t,
		hosttest.Chain(hosttest.Filter{Name: "sender", Plugin: "testdata/probe", VMID: "q", Config: `{"name": "probe"}`}),
		hosttest.Singleton(hosttest.Filter{Name: "collector", Plugin: "testdata/probe", VMID: "q", Config: `{"name": "collector", "queue": "events"}`}),
	)
	for _, msg := range []string{"a", "b"} {
		if r := h.Do(hosttest.GET("/").Header("x-probe", "enqueue:events="+msg)); r.Status != 200 {
			t.Fatalf("status %d", r.Status)
		}
	}
	var got []string
	for _, l := range h.Logs() {
		if l.Filter == "collector" && strings.Contains(l.Message, " got ") {
			if l.Worker != -1 {
				t.Errorf("on_queue_ready on worker %d, want the main thread", l.Worker)
			}
			got = append(got, l.Message[strings.Index(l.Message, " got ")+5:])
		}
	}
	if strings.Join(got, ",") != "a,b" {
		t.Errorf("collector dequeued %q, want a,b", got)
	}
	if n := len(h.LogsContaining("plugin_start name=collector")); n != 1 {
		t.Errorf("singleton started %d times, want once", n)
	}
}
