//go:build !wasm

package main

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/concierge-wasm/concierge/hosttest"
)

// BenchmarkFilter measures whole requests through the compiled filter on
// one worker VM, beside the noop filter (hosttest/testdata/noop) in front
// of the same upstream: a hit never reaches the upstream, so "noop/1KiB"
// is the cost of the same response without a cache. B/op and allocs/op are
// the test process's (host and wazero), not the guest's.
//
//	go test -run '^$' -bench BenchmarkFilter ./plugins/response-cache/
func BenchmarkFilter(b *testing.B) {
	cases := []struct {
		name, plugin string
		body         int
		path         func(i int) string
		req          func(r *hosttest.Request) *hosttest.Request
	}{
		{"noop/1KiB", noopDir, 1 << 10, nil, nil},
		{"hit/1KiB", ".", 1 << 10, nil, nil},
		{"noop/64KiB", noopDir, 64 << 10, nil, nil},
		{"hit/64KiB", ".", 64 << 10, nil, nil},
		{"miss-store/1KiB", ".", 1 << 10, func(i int) string { return "/m/" + strconv.Itoa(i) }, nil},
		{"bypass/1KiB", ".", 1 << 10, nil, func(r *hosttest.Request) *hosttest.Request { return r.Header("cache-control", "no-store") }},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			body := strings.Repeat("b", c.body)
			up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Cache-Control", "max-age=3600")
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Content-Length", strconv.Itoa(len(body)))
				for s := body; len(s) > 0; {
					n := min(len(s), 16<<10)
					w.Write([]byte(s[:n]))
					s = s[n:]
				}
			})
			opts := []hosttest.Option{hosttest.Plugin(c.plugin), hosttest.Workers(1), hosttest.Upstream(up)}
			if c.plugin == "." {
				opts = append(opts, hosttest.Config(`{}`))
			}
			h := hosttest.New(b, opts...)
			req := hosttest.GET("/api/products/1")
			if c.req != nil {
				req = c.req(req)
			}
			h.Do(req) // the entry a hit reads
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				r := req
				if c.path != nil {
					r = hosttest.GET(c.path(i))
					i++
				}
				if resp := h.Do(r); resp.Status != 200 || len(resp.Body) != c.body || (c.plugin == "." && c.path == nil && c.req == nil && resp.Header("x-cache") != "HIT") {
					b.Fatalf("%s", resp)
				}
			}
		})
	}
}
