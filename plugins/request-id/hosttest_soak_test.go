//go:build !wasm

package main

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/concierge-wasm/concierge/hosttest"
)

// soakBound is the linear memory one VM may reach over the soak: the Go
// runtime starts at about 3 MiB, each request holds a ~1 KiB body and its
// envelope, and the GC keeps the heap near twice the live data.
const soakBound = 16 << 20

// TestSoak sends 20,000 requests through one VM with the envelope on ~1
// KiB JSON bodies (half with an incoming ID, all with a traceparent to
// create) and fails if its linear memory passes soakBound.
func TestSoak(t *testing.T) {
	body := benchBody(t, 1<<10)
	h := newHost(t, `{"traceparent": true, "envelope": {"enabled": true}}`, hosttest.Workers(1),
		hosttest.Upstream(respond(200, []string{"Content-Type", "application/json", "Content-Length", strconv.Itoa(len(body))}, string(body))))
	suffix := append(append([]byte(nil), body...), '}')
	rep := hosttest.RunSoak(t, h, hosttest.Soak{
		Requests: 20000,
		Request: func(i int) *hosttest.Request {
			r := hosttest.GET("/api/items?page=" + strconv.Itoa(i))
			if i%2 == 0 {
				r.Header("x-request-id", "client-"+strconv.Itoa(i))
			}
			return r
		},
		MaxMemoryBytes: soakBound,
		Check: func(i int, r *hosttest.Response) error {
			id := r.Header("x-request-id")
			if r.Status != 200 || (i%2 == 0 && id != "client-"+strconv.Itoa(i)) ||
				!bytes.HasPrefix(r.Body, []byte(`{"requestId":"`+id+`","timestamp":"`)) || !bytes.HasSuffix(r.Body, suffix) {
				return fmt.Errorf("got %v with x-request-id %q, want the envelope of the body", r, id)
			}
			return nil
		},
	})
	t.Log(rep)
	if got := metric(h, "enveloped_total"); got != 20000 {
		t.Errorf("enveloped_total = %d, want 20000", got)
	}
}

// TestGCAfterRandomness: the Go GC keeps working after the filter has
// read the host's randomness. Under Envoy 1.33–1.37 (hosttest's default
// profile) a plugin whose runtime has armed any timer aborts at its next
// GC (poll_oneoff is refused); crypto/rand arms one on first use, which is
// why the filter reads random_get directly (random_wasip1.go).
func TestGCAfterRandomness(t *testing.T) {
	body := `"` + strings.Repeat("x", 900<<10) + `"`
	h := newHost(t, `{"traceparent": true, "envelope": {"enabled": true}}`, hosttest.Workers(1),
		hosttest.Env("GODEBUG", "gctrace=1"),
		hosttest.Upstream(respond(200, []string{"Content-Type", "application/json"}, body)))
	for i := range 12 {
		if resp := h.Do(hosttest.GET("/")); resp.Status != 200 || len(resp.Body) <= len(body) {
			t.Fatalf("request %d: %v, want the enveloped 200", i, resp)
		}
	}
	var runtimeOut strings.Builder
	for _, l := range h.Logs() {
		if l.Level.String() == "error" {
			runtimeOut.WriteString(l.Message)
		}
	}
	if !strings.Contains(runtimeOut.String(), "gc 3 @") {
		t.Errorf("the Go GC did not run 3 times in 12 requests of 900 KiB; runtime output: %.300q", runtimeOut.String())
	}
}
