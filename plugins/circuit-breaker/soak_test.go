//go:build !wasm

package main

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/concierge-wasm/concierge/hosttest"
)

// The linear memory one VM may reach over the soak (README.md,
// "Limitations"). The Go runtime starts near 3.5 MiB and its heap goal is
// at least 4 MiB × GOGC/100, which is most of the peak; the filter itself
// keeps little (at most maxKeys breakers per VM). With GOGC=50 in the VM's
// environment the aim of 8 MiB holds with room to spare.
var soakRuns = []struct {
	name  string
	opts  []hosttest.Option
	bound uint64
}{
	{"default GOGC", nil, 9 << 20},
	{"GOGC=50", []hosttest.Option{hosttest.Env("GOGC", "50")}, 8 << 20},
}

// TestSoak sends 20,000 requests through one VM, under the Envoy 1.33
// profile, with the rate window and the bulkhead on: most go to 300
// authorities, every tenth to a new one (so the key bound of 1,024 is
// passed). The backends of one authority in seven fail for 2,500 requests,
// then recover for 2,500, so breakers trip, reject, probe and close over
// and over as the clock moves.
func TestSoak(t *testing.T) {
	for _, run := range soakRuns {
		t.Run(run.name, func(t *testing.T) { soak(t, run.bound, run.opts...) })
	}
}

func soak(t *testing.T, bound uint64, opts ...hosttest.Option) {
	failing := false
	up := hosttest.UpstreamFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing && strings.HasPrefix(r.Host, "bad") {
			w.WriteHeader(503)
			return
		}
		w.WriteHeader(200)
	})
	h := newHost(t, `{"scope": "authority", "failure_rate": {"threshold": 0.5, "minimum_requests": 5},
		"max_concurrent": 100, "open_duration": "1s", "backoff_multiplier": 2, "max_open_duration": "10s"}`,
		append([]hosttest.Option{up, hosttest.Workers(1)}, opts...)...)
	rep := hosttest.RunSoak(t, h, hosttest.Soak{
		Requests: 20000,
		Request: func(i int) *hosttest.Request {
			if i%100 == 0 {
				h.Clock().Advance(time.Second)
			}
			failing = i/2500%2 == 0
			n := i % 300
			if i%10 == 0 {
				n = 1000 + i
			}
			host := "ok" + strconv.Itoa(n) + ".example.com"
			if n%7 == 0 {
				host = "bad" + strconv.Itoa(n) + ".example.com"
			}
			return hosttest.GET("/x").Host(host).Header("x-request-id", "soak-"+strconv.Itoa(i))
		},
		MaxMemoryBytes: bound,
		Check: func(i int, r *hosttest.Response) error {
			switch {
			case r.Status == 200, r.Status == 503 && (r.LocalReplyBy == "" || r.LocalReplyBy == filterName):
				return nil
			}
			return fmt.Errorf("request %d: %v", i, r)
		},
	})
	t.Log(rep)
	if metric(h, "opened_total") == 0 || metric(h, "closed_total") == 0 || metric(h, "rejected_total") == 0 ||
		metric(h, "untracked_total") == 0 {
		t.Errorf("the soak did not exercise the breakers: %v", h.Metrics())
	}
	wantMetric(t, h, "in_flight", 0)
	wantMetric(t, h, "cas_exhausted_total", 0)
	if n := len(h.SharedData("").Keys()); n > maxKeys+2 {
		t.Errorf("%d shared-data keys, want at most %d breakers, the counter and the lock", n, maxKeys)
	}
}
