//go:build !wasm

package main

// Helpers for the tests that run the compiled module in hosttest.

import (
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/concierge-wasm/concierge/hosttest"
)

const (
	probeDir = "../../hosttest/testdata/probe"
	noopDir  = "../../hosttest/testdata/noop"
)

// origin is a test upstream: each path answers with the headers its
// handler sets, and the origin counts the requests it saw.
type origin struct {
	t     testing.TB
	clock func() time.Time
	mu    sync.Mutex
	count map[string]int
	last  map[string]*http.Request
	// answer writes the response for one request; the default is 200
	// "body of <path>" with Cache-Control max-age=60.
	answer func(w http.ResponseWriter, r *http.Request, n int)
}

func newOrigin(t testing.TB) *origin {
	return &origin{t: t, count: map[string]int{}, last: map[string]*http.Request{}}
}

func (o *origin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	o.count[r.URL.Path]++
	n := o.count[r.URL.Path]
	o.last[r.URL.Path] = r
	answer := o.answer
	o.mu.Unlock()
	if o.clock != nil {
		w.Header().Set("Date", formatHTTPDate(o.clock()))
	}
	if answer != nil {
		answer(w, r, n)
		return
	}
	w.Header().Set("Cache-Control", "max-age=60")
	w.Header().Set("Content-Type", "text/plain")
	w.Write([]byte("body of " + r.URL.Path + " #" + strconv.Itoa(n)))
}

// hits is how many requests for path reached the origin.
func (o *origin) hits(path string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.count[path]
}

func (o *origin) lastRequest(path string) *http.Request {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.last[path]
}

// newCache runs the compiled filter with cfg in front of o.
func newCache(t testing.TB, cfg string, o *origin, opts ...hosttest.Option) *hosttest.Host {
	t.Helper()
	h := hosttest.New(t, append([]hosttest.Option{hosttest.Plugin("."), hosttest.Config(cfg), hosttest.Upstream(o)}, opts...)...)
	o.clock = h.Clock().Now
	return h
}

// withIdentity chains the probe filter, which sets the identity property
// from the request's x-probe script as an auth filter would, before the
// cache.
func newCacheWithIdentity(t testing.TB, cfg string, o *origin, opts ...hosttest.Option) *hosttest.Host {
	t.Helper()
	h := hosttest.New(t, append([]hosttest.Option{hosttest.Chain(
		hosttest.Filter{Name: "auth", Plugin: probeDir},
		hosttest.Filter{Name: "response-cache", Plugin: ".", Config: cfg},
	), hosttest.Upstream(o)}, opts...)...)
	o.clock = h.Clock().Now
	return h
}

// as marks a request as verified for subject (through the probe filter).
func as(r *hosttest.Request, subject string) *hosttest.Request {
	return r.Header("x-probe", `set-prop:concierge.identity={"v":1,"m":"jwt","s":"`+subject+`"}`)
}

func metric(h *hosttest.Host, name string) int64 {
	v, _ := h.Metric(metricPrefix + name)
	return v
}

// expect checks a response's status, X-Cache and body.
func expect(t testing.TB, what string, r *hosttest.Response, status int, xcache, body string) {
	t.Helper()
	if r.Status != status || r.Header("x-cache") != xcache || (body != "" && string(r.Body) != body) {
		t.Errorf("%s: got %d x-cache=%q body=%q cache-status=%q, want %d %q %q", what, r.Status, r.Header("x-cache"), r.Body,
			r.HeaderValues("cache-status"), status, xcache, body)
	}
}
