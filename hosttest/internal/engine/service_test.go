package engine

import (
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/concierge-wasm/concierge/hosttest/internal/abi"
	"github.com/concierge-wasm/concierge/hosttest/internal/build"
)

// A singleton service (a MainThreadOnly filter, in no chain) registers a
// queue; the HTTP filter of the host's chain enqueues to it on a worker,
// and the service's on_queue_ready runs on the main thread.
func TestSingletonServiceConsumesQueue(t *testing.T) {
	path, err := build.New(build.DefaultCacheDir()).Build("../../testdata/probe")
	if err != nil {
		t.Fatal(err)
	}
	wasm, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h, err := Start(Options{Workers: 2, Filters: []FilterConfig{
		{Name: "probe", VMID: "shared", Wasm: wasm, Configuration: []byte(`{"name": "probe"}`)},
		{Name: "collector", VMID: "shared", Wasm: wasm, Configuration: []byte(`{"name": "collector", "queue": "events"}`), MainThreadOnly: true},
	}, Upstream: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for _, msg := range []string{"one", "two"} {
		res, ok := h.NewStream(Request{Headers: []abi.Pair{{Key: ":method", Value: "GET"}, {Key: ":path", Value: "/"},
			{Key: ":authority", Value: "x"}, {Key: "x-probe", Value: "enqueue:events=" + msg}}}).Do(5 * time.Second)
		if !ok || res.Status != 200 {
			t.Fatalf("request: ok=%v status=%d", ok, res.Status)
		}
	}
	// The enqueues posted on_queue_ready to the main thread before Do
	// returned: once the main thread has run what was posted, it is done.
	h.main.call(func() {})
	var got []string
	for _, l := range h.Logs() {
		if l.Filter == "collector" && strings.Contains(l.Message, " got ") {
			if l.Worker != -1 {
				t.Errorf("on_queue_ready ran on worker %d, want the main thread", l.Worker)
			}
			got = append(got, l.Message[strings.Index(l.Message, " got ")+5:])
		}
	}
	if strings.Join(got, ",") != "one,two" {
		t.Errorf("service dequeued %q, want one,two; logs: %v", got, h.Logs())
	}
}
