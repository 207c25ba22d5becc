//go:build !wasm

package main

import (
	"strconv"
	"testing"

	"github.com/concierge-wasm/concierge/hosttest"
)

// BenchmarkFilter measures one whole request through the compiled filter
// on one worker VM, beside the noop filter (hosttest/testdata/noop) with
// the same upstream, the floor of the host itself. B/op and allocs/op are
// the test process's (host and wazero), not the guest's; the guest's own
// allocations are in the native benchmarks (BenchmarkRequest,
// BenchmarkEnvelope).
//
//	go test -run '^$' -bench BenchmarkFilter ./plugins/request-id/
func BenchmarkFilter(b *testing.B) {
	const envelope = `{"envelope": {"enabled": true}}`
	cases := []struct {
		name, plugin, cfg string
		body              int // JSON body size; 0: the default "ok" upstream
	}{
		{"noop", noopDir, "", 0},
		{"request-id", ".", `{}`, 0},
		{"request-id+traceparent", ".", `{"traceparent": true}`, 0},
		{"noop/1KiB", noopDir, "", 1 << 10},
		{"envelope/1KiB", ".", envelope, 1 << 10},
		{"noop/64KiB", noopDir, "", 64 << 10},
		{"envelope/64KiB", ".", envelope, 64 << 10},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			opts := []hosttest.Option{hosttest.Plugin(c.plugin), hosttest.Workers(1)}
			if c.cfg != "" {
				opts = append(opts, hosttest.Config(c.cfg))
			}
			if c.body > 0 {
				// 16 KiB frames, as Envoy reads them, with a content-length.
				body := string(benchBody(b, c.body))
				var frames []string
				for s := body; len(s) > 0; {
					n := min(len(s), 16<<10)
					frames = append(frames, s[:n])
					s = s[n:]
				}
				opts = append(opts, hosttest.Upstream(respond(200,
					[]string{"Content-Type", "application/json", "Content-Length", strconv.Itoa(len(body))}, frames...)))
			}
			h := hosttest.New(b, opts...)
			req := hosttest.GET("/api/users/1")
			b.ReportAllocs()
			for b.Loop() {
				if resp := h.Do(req); resp.Status != 200 {
					b.Fatalf("status %d", resp.Status)
				}
			}
		})
	}
}
