package main

import (
	"fmt"
	"testing"

	"github.com/concierge-wasm/concierge/hosttest"
)

// soakMaxMemory is the linear-memory bound README.md states for one VM
// with up to 1,000 consumers. (Measured: 6.0 MiB at start, 8.6 MiB at
// most; the Go runtime's 4 MiB minimum heap goal is most of the growth.)
const soakMaxMemory = 10 << 20

// TestSoak sends 20,000 requests through one worker VM with 1,000
// consumers: valid keys of many consumers (so that many per-consumer
// counters get defined), unknown keys, missing keys and permission
// denials. Linear memory must stay under soakMaxMemory, and the VM must
// survive its garbage collections under the Envoy 1.33 WASI profile
// (hosttest's default), where a timer or a sleep would kill it.
func TestSoak(t *testing.T) {
	const consumers = 1000
	h := newHost(t, manyConsumers(consumers, `,"permission_by_method":{"GET":"read","*":"admin"}`), hosttest.Workers(1))
	rep := hosttest.RunSoak(t, h, hosttest.Soak{
		Requests:       20000,
		MaxMemoryBytes: soakMaxMemory,
		Request: func(i int) *hosttest.Request {
			r := hosttest.GET(fmt.Sprint("/api/", i)).Header("x-request-id", fmt.Sprint("soak-", i)).Header("x-consumer", "spoof")
			switch i % 4 {
			case 0, 1:
				r.Header("x-api-key", consumerKey(i%consumers))
			case 2:
				r.Header("x-api-key", fmt.Sprint("unknown-key-", i))
			case 3:
				if i%8 == 3 {
					r = hosttest.POST("/api", "{}").Header("x-api-key", consumerKey(i%consumers))
				}
			}
			return r
		},
		Check: func(i int, r *hosttest.Response) error {
			want := map[int]int{0: 200, 1: 200, 2: 401, 3: 401}[i%4]
			if i%8 == 3 {
				want = 403
			}
			if r.Status != want {
				return fmt.Errorf("got %v, want %d", r, want)
			}
			if want == 200 && r.Upstream.Header("x-consumer") != fmt.Sprint("c", i%consumers) {
				return fmt.Errorf("x-consumer = %q, want c%d", r.Upstream.Header("x-consumer"), i%consumers)
			}
			return nil
		},
	})
	t.Log(rep)
	wantEqual(t, metricAllowed, metric(t, h, metricAllowed), 10000)
	wantEqual(t, metricDenied, metric(t, h, metricDenied), 10000)
}
