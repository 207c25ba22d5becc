package hosttest_test

import (
	"fmt"
	"testing"

	"github.com/concierge-wasm/concierge/hosttest"
)

// A plugin allocating ~256 KiB per request keeps its linear memory bounded
// over 20,000 requests on one VM, under both Envoy WASI profiles: the test
// clock keeps real time flowing, so the Go GC inside the plugin runs.
func TestSoakAllocatingPluginStaysBounded(t *testing.T) {
	const bound = 16 << 20
	for _, profile := range []hosttest.Profile{hosttest.Envoy133, hosttest.EnvoyLatest} {
		t.Run(profile.String(), func(t *testing.T) {
			h := hosttest.New(t, hosttest.Plugin("testdata/alloc"), hosttest.Workers(1), hosttest.WithProfile(profile))
			req := hosttest.GET("/")
			rep := hosttest.RunSoak(t, h, hosttest.Soak{
				Requests:       20000,
				Request:        func(int) *hosttest.Request { return req },
				MaxMemoryBytes: bound,
				Check: func(_ int, r *hosttest.Response) error {
					if r.Status != 200 || r.Upstream.Header("x-alloc-sum") != "6208953949678473126" {
						return fmt.Errorf("got %v, x-alloc-sum %q", r, r.Upstream.Header("x-alloc-sum"))
					}
					return nil
				},
			})
			t.Log(rep)
		})
	}
}
