package main

import (
	"testing"
	"time"
)

// BenchmarkBreaker measures the filter's own logic per request, natively,
// with shared data as an in-process map (fakeShared): find the breaker,
// admit under compare-and-swap, classify the response and record it.
//
//	go test -run '^$' -bench BenchmarkBreaker ./plugins/circuit-breaker/
func BenchmarkBreaker(b *testing.B) {
	cases := []struct {
		name string
		mod  func(p *policy)
		open bool
	}{
		{"closed", nil, false},
		{"closed+rate+bulkhead", func(p *policy) {
			p.rateThreshold, p.minimumRequests, p.window = 0.5, 10, 10*time.Second
			p.maxConcurrent = 1000
		}, false},
		{"open", nil, true},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			p := testPolicy(c.mod)
			st := newStore(newFakeShared(), "ns", 1)
			scope := []byte("backend")
			bk, _ := st.breaker(0, "0", scope, true)
			var r record
			if c.open {
				st.update(bk, &r, func(r *record) bool { r.trip(p, t0, "bench"); return true })
			}
			now := t0
			resp := response{status: 200, details: viaUpstream, elapsed: 3 * time.Millisecond}
			b.ReportAllocs()
			for b.Loop() {
				now += int64(time.Millisecond)
				k, _ := st.breaker(0, "0", scope, false)
				var v verdict
				var t ticket
				st.update(k, &r, func(r *record) bool {
					var changed bool
					v, t, _, changed, _ = admit(r, p, now)
					return changed
				})
				if v != admitted {
					if !c.open {
						b.Fatalf("verdict %d", v)
					}
					continue
				}
				o, why := classify(resp, p)
				st.update(k, &r, func(r *record) bool {
					changed, _ := observe(r, p, t, o, now, why)
					return changed
				})
				if t.slot {
					st.update(k, &r, func(r *record) bool { return release(r, t) })
				}
			}
		})
	}
}
