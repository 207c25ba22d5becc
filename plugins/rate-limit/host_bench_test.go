//go:build !wasm

package main

import (
	"strconv"
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
				b.ReportAllocs()
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
