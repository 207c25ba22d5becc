package engine

import (
	"context"
	"net/http"
	"testing"

	"github.com/tetratelabs/wazero/api"
)

// probeFn stands in for a guest export: it records what the worker says
// is running while it runs, which is what a "worker is stuck" message
// names.
type probeFn struct {
	api.Function
	w    *worker
	seen *string
}

func (p probeFn) CallWithStack(context.Context, []uint64) error {
	*p.seen = p.w.running()
	return nil
}

// TestRunningNamesFilterAndCallback pins the label of every callback the
// host runs, `filter: export`, and that none is left once it returns.
func TestRunningNamesFilterAndCallback(t *testing.T) {
	t.Parallel()
	h := startNoop(t, http.NotFoundHandler())
	w := h.workers[0]
	want := map[export]string{
		exMalloc: "noop: proxy_on_memory_allocate", exInitialize: "noop: _initialize", exStart: "noop: _start",
		exContextCreate: "noop: proxy_on_context_create", exVMStart: "noop: proxy_on_vm_start",
		exConfigure: "noop: proxy_on_configure", exTick: "noop: proxy_on_tick", exQueueReady: "noop: proxy_on_queue_ready",
		exReqHeaders: "noop: proxy_on_request_headers", exReqBody: "noop: proxy_on_request_body",
		exReqTrailers: "noop: proxy_on_request_trailers", exRespHeaders: "noop: proxy_on_response_headers",
		exRespBody: "noop: proxy_on_response_body", exRespTrailers: "noop: proxy_on_response_trailers",
		exCallResponse: "noop: proxy_on_http_call_response", exLog: "noop: proxy_on_log", exDone: "noop: proxy_on_done",
		exDelete: "noop: proxy_on_delete", exNewConnection: "noop: proxy_on_new_connection",
		exDownstreamData: "noop: proxy_on_downstream_data", exUpstreamData: "noop: proxy_on_upstream_data",
		exDownstreamClose: "noop: proxy_on_downstream_connection_close",
		exUpstreamClose:   "noop: proxy_on_upstream_connection_close",
	}
	if len(want) != int(numExports) {
		t.Fatalf("the test knows %d callbacks, the engine %d", len(want), numExports)
	}
	w.call(func() {
		vm := w.plugins[0].vm
		for ex := range numExports {
			for range 2 { // the second time from the cached label
				var seen string
				if _, ok := vm.call(probeFn{w: w, seen: &seen}, ex); !ok {
					t.Fatalf("call %s failed", exportNames[ex])
				}
				if seen != want[ex] {
					t.Errorf("running during %s = %q, want %q", exportNames[ex], seen, want[ex])
				}
				if got := w.running(); got != "no callback" {
					t.Errorf("running after %s = %q, want %q", exportNames[ex], got, "no callback")
				}
			}
		}
	})
}
