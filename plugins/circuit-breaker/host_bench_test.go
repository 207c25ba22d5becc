//go:build !wasm

package main

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"

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
			b.Run(c.name+"/workers="+strconv.Itoa(workers), func(b *testing.B) {
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

// BenchmarkRatio sends each request through the noop filter and then
// through this filter, alternately, so that both see the same machine
// load (a shared machine makes separate runs hard to compare). It reports
// ns per request of each and the ratio; with 4 workers the pairs run in
// parallel.
//
//	go test -run '^$' -bench BenchmarkRatio ./plugins/circuit-breaker/
func BenchmarkRatio(b *testing.B) {
	cases := []struct {
		name, cfg string
		open      bool
	}{
		{"closed", `{}`, false},
		{"closed+rate+bulkhead", `{"failure_rate": {"threshold": 0.5}, "max_concurrent": 1000}`, false},
		{"open", `{}`, true},
	}
	for _, workers := range []int{1, 4} {
		for _, c := range cases {
			b.Run(c.name+"/workers="+strconv.Itoa(workers), func(b *testing.B) {
				noop := hosttest.New(b, hosttest.Plugin(noopDir), hosttest.Workers(workers))
				be := newBackend()
				cb := hosttest.New(b, hosttest.Plugin("."), hosttest.Config(c.cfg), hosttest.Workers(workers), hosttest.Upstream(be))
				want := 200
				if c.open {
					trip(b, cb, be, 5)
					want = 503
				}
				req := get("/api/users/1")
				var noopNs, cbNs atomic.Int64
				pair := func() bool {
					t0 := time.Now()
					if r := noop.Do(req); r.Status != 200 {
						b.Errorf("noop: status %d", r.Status)
						return false
					}
					t1 := time.Now()
					if r := cb.Do(req); r.Status != want {
						b.Errorf("circuit-breaker: status %d, want %d", r.Status, want)
						return false
					}
					t2 := time.Now()
					noopNs.Add(int64(t1.Sub(t0)))
					cbNs.Add(int64(t2.Sub(t1)))
					return true
				}
				b.ResetTimer()
				if workers == 1 {
					for range b.N {
						if !pair() {
							return
						}
					}
				} else {
					b.SetParallelism(workers)
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() && pair() {
						}
					})
				}
				n := float64(b.N)
				b.ReportMetric(float64(noopNs.Load())/n, "noop-ns/req")
				b.ReportMetric(float64(cbNs.Load())/n, "cb-ns/req")
				b.ReportMetric(float64(cbNs.Load())/float64(noopNs.Load()), "ratio")
			})
		}
	}
}
