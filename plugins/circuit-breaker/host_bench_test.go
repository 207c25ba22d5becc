//go:build !wasm

package main

import (
	"strconv"
	"sync"
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

// BenchmarkRatio compares this filter with the noop filter on one machine
// load: with 1 worker it sends each request through noop and then through
// this filter, alternately; with 4 it runs a burst through noop, then one
// through this filter, each from 4 goroutines. Besides wall time it
// reports the process CPU time each took (getrusage): on a shared machine
// wall time mostly measures the neighbours, CPU time the work.
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
				do := func(h *hosttest.Host, want int) bool {
					if r := h.Do(req); r.Status != want {
						b.Errorf("status %d, want %d", r.Status, want)
						return false
					}
					return true
				}
				var wall, cpu [2]time.Duration // noop, circuit-breaker
				b.ResetTimer()
				if workers == 1 {
					for range b.N {
						for k, h := range [2]*hosttest.Host{noop, cb} {
							w0, c0 := time.Now(), cpuTime()
							if !do(h, [2]int{200, want}[k]) {
								return
							}
							wall[k] += time.Since(w0)
							cpu[k] += cpuTime() - c0
						}
					}
				} else {
					for k, h := range [2]*hosttest.Host{noop, cb} {
						w0, c0 := time.Now(), cpuTime()
						var wg sync.WaitGroup
						for g := range workers {
							wg.Go(func() {
								for i := g; i < b.N; i += workers {
									if !do(h, [2]int{200, want}[k]) {
										return
									}
								}
							})
						}
						wg.Wait()
						wall[k], cpu[k] = time.Since(w0), cpuTime()-c0
					}
				}
				n := float64(b.N)
				b.ReportMetric(float64(wall[0])/n, "noop-ns/req")
				b.ReportMetric(float64(wall[1])/n, "cb-ns/req")
				b.ReportMetric(float64(wall[1])/float64(wall[0]), "wall-ratio")
				b.ReportMetric(float64(cpu[0])/n, "noop-cpu-ns/req")
				b.ReportMetric(float64(cpu[1])/n, "cb-cpu-ns/req")
				b.ReportMetric(float64(cpu[1])/float64(cpu[0]), "cpu-ratio")
			})
		}
	}
}
