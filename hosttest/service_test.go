package hosttest_test

import (
	"fmt"
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

// TestSingletonSharesMainThreadVM: a singleton and a filter of one
// vm_config share the main thread's VM, as in Envoy: the filter is root
// context 1 there and the service, created once the listeners are, 2 (one
// package counter); on the workers, where the singleton does not run, the
// filter's VM is its own.
func TestSingletonSharesMainThreadVM(t *testing.T) {
	h := hosttest.New(t,
		hosttest.Chain(hosttest.Filter{Name: "a", Plugin: "testdata/sharedvm", VMID: "x", Config: `{"name": "a"}`}),
		hosttest.Singleton(hosttest.Filter{Name: "svc", Plugin: "testdata/sharedvm", VMID: "x", Config: `{"name": "svc"}`}),
		hosttest.Workers(1),
	)
	var starts []string
	for _, l := range h.Logs() {
		if strings.HasPrefix(l.Message, "plugin_start ") {
			starts = append(starts, fmt.Sprintf("%d: %s", l.Worker, l.Message))
		}
	}
	want := "-1: plugin_start name=a root=1 count=1|-1: plugin_start name=svc root=2 count=2|0: plugin_start name=a root=1 count=1"
	if got := strings.Join(starts, "|"); got != want {
		t.Errorf("plugin starts:\n%s\nwant\n%s", got, want)
	}
	r := h.Do(hosttest.GET("/"))
	if got := r.Upstream.Header("x-a-root") + "/" + r.Upstream.Header("x-a-count"); got != "1/1" {
		t.Errorf("a on the worker: root/count %s, want 1/1", got)
	}
	if got := h.Filters(); len(got) != 1 || got[0] != "a" {
		t.Errorf("Filters() = %q, want [a]", got)
	}
}
