//go:build !wasm

package main

import (
	"strconv"
	"syscall"
	"testing"

	"github.com/concierge-wasm/concierge/hosttest"
)

// BenchmarkFilter measures one whole allowed request through the compiled
// filter beside the noop filter (hosttest/testdata/noop), the floor of
// the host itself, in the same run: one hot key and 100,000 keys (client
// addresses), on 1 worker and on 4 workers driven in parallel. B/op and
// allocs/op are the test process's (host and wazero), not the guest's;
// the guest's Go logic is BenchmarkDecision.
//
//	go test -run '^$' -bench BenchmarkFilter -benchmem ./plugins/rate-limit/
func BenchmarkFilter(b *testing.B) {
	peers := make([]string, 100000)
	for i := range peers {
		peers[i] = "10." + strconv.Itoa(i>>16&255) + "." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255)
	}
	for _, workers := range []int{1, 4} {
		for _, c := range []struct {
			name, plugin, cfg string
			keys              int
		}{
			{"noop", noopDir, "", 1},
			{"hot-key", ".", benchConfig, 1},
			{"100k-keys", ".", benchConfig, len(peers)},
		} {
			b.Run(c.name+"/workers="+strconv.Itoa(workers), func(b *testing.B) {
				opts := []hosttest.Option{hosttest.Plugin(c.plugin), hosttest.Workers(workers)}
				if c.cfg != "" {
					opts = append(opts, hosttest.Config(c.cfg))
				}
				h := hosttest.New(b, opts...)
				reqs := make([]*hosttest.Request, min(c.keys, 1000))
				for i := range reqs {
					reqs[i] = hosttest.GET("/api/users/1").Source(peers[i*(c.keys/len(reqs))] + ":4000")
				}
				// Every key's slot exists before the clock starts, as after
				// the first seconds of traffic: creating a slot is a one-off
				// per key (BenchmarkDecision/100k-keys covers a churning
				// key space natively).
				for _, r := range reqs {
					if resp := h.Do(r); resp.Status != 200 {
						b.Fatalf("warm-up: status %d", resp.Status)
					}
				}
				b.ReportAllocs()
				cpu0 := processCPU(b)
				defer func() { b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op") }()
				b.ResetTimer()
				if workers == 1 {
					i := 0
					for b.Loop() {
						if resp := h.Do(reqs[i%len(reqs)]); resp.Status != 200 {
							b.Fatalf("status %d", resp.Status)
						}
						i++
					}
					return
				}
				b.SetParallelism(2) // 2 × GOMAXPROCS clients, so that 4 workers have work
				b.ResetTimer()      // this function runs once per b.N tried; each starts a host
				b.RunParallel(func(pb *testing.PB) {
					i := 0
					for pb.Next() {
						if resp := h.Do(reqs[i%len(reqs)]); resp.Status != 200 {
							b.Errorf("status %d", resp.Status)
							return
						}
						i++
					}
				})
			})
		}
	}
}

// processCPU is the CPU time this process has used (user + system), in
// nanoseconds. On a shared machine wall time per request mostly measures
// the wait for a core; cpu-ns/op is what a request costs.
func processCPU(tb testing.TB) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
