//go:build !wasm

package main

import (
	"testing"

	"github.com/concierge-wasm/concierge/hosttest"
)

const noopDir = "../../hosttest/testdata/noop"

// BenchmarkFilter measures one whole request through the compiled filter
// beside the noop filter (hosttest/testdata/noop) in the same run, the
// floor of the host itself: closed (the common path: a shared-data read,
// and a write only when the record changes), closed with the rate window
// and the bulkhead (three compare-and-swap writes per request), and open
// (the 503 at once). With 4 workers the requests run in parallel
// (b.RunParallel), so the shared-data writes contend as in Envoy. B/op and
// allocs/op are the test process's (host and wazero), not the guest's;
// BenchmarkBreaker measures the logic natively.
//
//	go test -run '^$' -bench BenchmarkFilter ./plugins/circuit-breaker/
func BenchmarkFilter(b *testing.B) {
	cases := []struct {
		name, plugin, cfg string
		open              bool
	}{
		{"noop", noopDir, "", false},
		{"closed", ".", `{}`, false},
		{"closed+rate+bulkhead", ".", `{"failure_rate": {"threshold": 0.5}, "max_concurrent": 1000}`, false},
		{"open", ".", `{}`, true},
	}
	for _, workers := range []int{1, 4} {
		for _, c := range cases {
			b.Run(c.name+"/workers="+string(rune('0'+workers)), func(b *testing.B) {
				be := newBackend()
				opts := []hosttest.Option{hosttest.Plugin(c.plugin), hosttest.Workers(workers), hosttest.Upstream(be)}
				if c.cfg != "" {
					opts = append(opts, hosttest.Config(c.cfg))
				}
				h := hosttest.New(b, opts...)
				want := 200
				if c.open {
					trip(b, h, be, 5)
					want = 503
				}
				req := get("/api/users/1")
				b.ReportAllocs()
				b.ResetTimer()
				if workers == 1 {
					for b.Loop() {
						if r := h.Do(req); r.Status != want {
							b.Fatalf("status %d, want %d", r.Status, want)
						}
					}
					return
				}
				b.SetParallelism(workers)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if r := h.Do(req); r.Status != want {
							b.Errorf("status %d, want %d", r.Status, want)
							return
						}
					}
				})
			})
		}
	}
}
