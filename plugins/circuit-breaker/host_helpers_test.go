//go:build !wasm

package main

// Helpers for the tests that run the compiled module in hosttest.

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concierge-wasm/concierge/hosttest"
)

const filterName = "circuit-breaker" // hosttest names a filter after its folder

// newHost runs this folder's module with configuration cfg.
func newHost(tb testing.TB, cfg string, opts ...hosttest.Option) *hosttest.Host {
	tb.Helper()
	return hosttest.New(tb, append([]hosttest.Option{hosttest.Plugin("."), hosttest.Config(cfg)}, opts...)...)
}

// backend is an upstream whose behaviour a test switches: it answers
// status (200 by default), or resets the stream, or holds every request
// until released. It counts the requests it saw.
type backend struct {
	mu     sync.Mutex
	mode   string // "ok", "fail" (503), "reset", "hold"
	status int
	gate   chan struct{} // closed to release held requests
	calls  atomic.Int64
	// arrived receives one value per request that reached the backend
	// (buffered), so a test can wait for held requests to be there.
	arrived chan struct{}
}

func newBackend() *backend {
	return &backend{mode: "ok", gate: make(chan struct{}), arrived: make(chan struct{}, 1024)}
}

func (b *backend) set(mode string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.mode == "hold" && mode != "hold" {
		close(b.gate)
		b.gate = make(chan struct{})
	}
	b.mode = mode
}

func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.calls.Add(1)
	b.mu.Lock()
	mode, gate := b.mode, b.gate
	b.mu.Unlock()
	select {
	case b.arrived <- struct{}{}:
	default: // nobody waits for arrivals (a benchmark): do not block
	}
	switch mode {
	case "fail":
		w.WriteHeader(503)
	case "reset":
		panic(http.ErrAbortHandler)
	case "hold":
		select {
		case <-gate:
			w.WriteHeader(200)
		case <-r.Context().Done():
			panic(http.ErrAbortHandler)
		}
	default:
		w.WriteHeader(200)
	}
}

// awaitArrivals waits (real time, bounded) until n requests reached the
// backend since the last call.
func (b *backend) awaitArrivals(tb testing.TB, n int) {
	tb.Helper()
	for i := range n {
		select {
		case <-b.arrived:
		case <-time.After(5 * time.Second):
			tb.Fatalf("only %d of %d requests reached the backend", i, n)
		}
	}
}

// drain forgets the arrivals so far.
func (b *backend) drain() {
	for {
		select {
		case <-b.arrived:
		default:
			return
		}
	}
}

// get is a request to cluster "backend" with a request ID.
func get(path string) *hosttest.Request {
	return hosttest.GET(path).Header("x-request-id", "req-1").Attribute("xds.cluster_name", []byte("backend"))
}

func metric(h *hosttest.Host, name string) int64 {
	v, _ := h.Metric(metricPrefix + name)
	return v
}

func wantMetric(tb testing.TB, h *hosttest.Host, name string, want int64) {
	tb.Helper()
	if got := metric(h, name); got != want {
		tb.Errorf("%s%s = %d, want %d", metricPrefix, name, got, want)
	}
}

func wantStatus(tb testing.TB, r *hosttest.Response, want int) {
	tb.Helper()
	if r.Status != want {
		tb.Fatalf("status = %d, want %d; response %v", r.Status, want, r)
	}
}

// wantRejected checks the breaker's 503: from this filter, never upstream,
// Retry-After and the JSON body with retryAfter and the request ID.
func wantRejected(tb testing.TB, r *hosttest.Response, retryAfter string) {
	tb.Helper()
	wantStatus(tb, r, 503)
	if r.LocalReplyBy != filterName || r.Upstream != nil {
		tb.Fatalf("503 answered by %q, upstream %v; want the breaker, without the upstream", r.LocalReplyBy, r.Upstream)
	}
	if got := r.Header("retry-after"); got != retryAfter {
		tb.Errorf("Retry-After = %q, want %q", got, retryAfter)
	}
	if got := r.Header("content-type"); got != "application/json" {
		tb.Errorf("content-type = %q, want application/json", got)
	}
	var body struct {
		Error      string `json:"error"`
		RetryAfter *int   `json:"retryAfter"`
		RequestID  string `json:"requestId"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil {
		tb.Fatalf("body %q: %v", r.Body, err)
	}
	if body.Error != "service unavailable" || body.RetryAfter == nil || body.RequestID != r.Header("x-request-id") {
		tb.Errorf("body = %s, want error \"service unavailable\", retryAfter and the request ID", r.Body)
	}
}

// transitions returns the transition lines the filter logged (warn).
func transitions(h *hosttest.Host) []string {
	var out []string
	for _, l := range h.Logs() {
		if l.Filter == filterName && l.Level.String() == "warn" && strings.Contains(l.Message, " -> ") {
			out = append(out, l.Message)
		}
	}
	return out
}

// sharedRecord reads a breaker's record from the host's shared data.
func sharedRecord(tb testing.TB, h *hosttest.Host, key string) record {
	tb.Helper()
	v, _, ok := h.SharedData("").Get(key)
	if !ok {
		return record{}
	}
	var r record
	if err := decodeRecord(v, &r); err != nil {
		tb.Fatalf("record %s: %v", key, err)
	}
	return r
}

// trip sends n requests that fail upstream.
func trip(tb testing.TB, h *hosttest.Host, be *backend, n int) {
	tb.Helper()
	be.set("fail")
	for range n {
		r := h.Do(get("/x"))
		wantStatus(tb, r, 503)
		if r.LocalReplyBy != "" {
			tb.Fatalf("tripping: the 503 came from %q, want the backend", r.LocalReplyBy)
		}
	}
	be.drain()
}
