package hosttest_test

import (
	"testing"

	"github.com/concierge-wasm/concierge/hosttest"
)

// BenchmarkNoopRequest is the floor every filter's overhead is measured
// against: one whole request through a filter that does nothing.
func BenchmarkNoopRequest(b *testing.B) {
	h := hosttest.New(b, hosttest.Plugin("testdata/noop"), hosttest.Workers(1))
	req := hosttest.GET("/api/users/1")
	b.ReportAllocs()
	b.ResetTimer()
	defer cpuPerOp(b)()
	for i := 0; i < b.N; i++ {
		if resp := h.Do(req); resp.Status != 200 {
			b.Fatalf("status %d", resp.Status)
		}
	}
}

// BenchmarkProbeHeaderCalls measures the host's per-call overhead: each
// request makes the probe read and add request headers.
func BenchmarkProbeHeaderCalls(b *testing.B) {
	h := hosttest.New(b, hosttest.Plugin("testdata/probe"), hosttest.Config(`{"name":"p"}`), hosttest.Workers(1))
	script := "add-req:a=1 add-req:b=2 add-req:c=3 add-req:d=4 add-req:e=5 add-req:f=6 add-req:g=7 add-req:h=8 add-req:i=9 add-req:j=10"
	base := hosttest.GET("/x")
	with := hosttest.GET("/x").Header("x-p", script)
	b.Run("no-calls", func(b *testing.B) {
		b.ReportAllocs()
		defer cpuPerOp(b)()
		for i := 0; i < b.N; i++ {
			h.Do(base)
		}
	})
	b.Run("10-add-header-calls", func(b *testing.B) {
		b.ReportAllocs()
		defer cpuPerOp(b)()
		for i := 0; i < b.N; i++ {
			h.Do(with)
		}
	})
}

// BenchmarkProbePropertyReads compares ten reads of a plain attribute
// (request.path) with ten reads of a value inside route metadata (a proto
// walked as Envoy's CEL view does), side by side.
func BenchmarkProbePropertyReads(b *testing.B) {
	h := hosttest.New(b, hosttest.Plugin("testdata/probe"), hosttest.Config(`{"name":"p"}`), hosttest.Workers(1))
	repeat := func(verb string) string {
		s := verb
		for range 9 {
			s += " " + verb
		}
		return s
	}
	plain := hosttest.GET("/x").Header("x-p", repeat("get-prop:request.path"))
	meta := hosttest.GET("/x").RouteMetadata("acme", map[string]any{"auth": "cookie"}).
		Header("x-p", repeat("get-prop:xds.route_metadata.filter_metadata.acme.auth"))
	for name, req := range map[string]*hosttest.Request{"10-request.path": plain, "10-route-metadata-value": meta} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				h.Do(req)
			}
		})
	}
}
