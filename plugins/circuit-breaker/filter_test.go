//go:build !wasm

package main

import (
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/concierge-wasm/concierge/hosttest"
)

const recordKey = "circuit-breaker/circuit-breaker/b/0/backend"

func TestTripByConsecutiveFailures(t *testing.T) {
	be := newBackend()
	h := newHost(t, `{}`, hosttest.Upstream(be))
	trip(t, h, be, 4)
	if r := sharedRecord(t, h, recordKey); r.state != closed || r.consecutive != 4 {
		t.Fatalf("after 4 failures: %+v, want closed with 4 consecutive", r)
	}
	trip(t, h, be, 1)
	calls := be.calls.Load()
	wantRejected(t, h.Do(get("/x")), "60")
	if be.calls.Load() != calls {
		t.Fatalf("the open breaker let a request reach the backend")
	}
	wantMetric(t, h, "opened_total", 1)
	wantMetric(t, h, "rejected_total", 1)
	wantMetric(t, h, "failures_total", 5)
	wantMetric(t, h, "state_backend", int64(open))
	tr := transitions(h)
	if len(tr) != 1 || !strings.Contains(tr[0], `breaker "backend" closed -> open: 5 consecutive failures, the last: status 503; open for 1m0s`) {
		t.Fatalf("transition log lines = %q, want exactly one closed -> open", tr)
	}
}

func TestTripByFailureRate(t *testing.T) {
	be := newBackend()
	h := newHost(t, `{"consecutive_failures": 100, "failure_rate": {"threshold": 0.5, "minimum_requests": 10, "window": "10s"}}`,
		hosttest.Upstream(be))
	// 9 calls, 5 failures: under minimum_requests, so closed.
	for i := range 9 {
		be.set(map[bool]string{true: "fail", false: "ok"}[i%2 == 0])
		h.Do(get("/x"))
	}
	wantMetric(t, h, "opened_total", 0)
	be.set("ok")
	h.Do(get("/x")) // 10 calls, 5 failures: 0.5 reached... on a success, which never trips
	wantMetric(t, h, "opened_total", 0)
	be.set("fail")
	h.Do(get("/x")) // 11 calls, 6 failures
	wantMetric(t, h, "opened_total", 1)
	wantRejected(t, h.Do(get("/x")), "60")
	if tr := transitions(h); len(tr) != 1 || !strings.Contains(tr[0], "failure rate 6/11 in 10s reached 0.5") {
		t.Fatalf("transition lines = %q", tr)
	}
}

// Old failures slide out of the window: spread over more than the window,
// the same failures never trip it.
func TestFailureRateWindowSlides(t *testing.T) {
	be := newBackend()
	h := newHost(t, `{"consecutive_failures": 100, "failure_rate": {"threshold": 0.5, "minimum_requests": 4, "window": "10s"}}`,
		hosttest.Upstream(be))
	for range 6 {
		be.set("fail")
		h.Do(get("/x"))
		be.set("ok")
		h.Do(get("/x"))
		h.Do(get("/x"))
		h.Clock().Advance(11 * time.Second)
	}
	wantMetric(t, h, "opened_total", 0)
}

func TestResetsAndTimeoutsAreFailures(t *testing.T) {
	be := newBackend()
	h := newHost(t, `{"consecutive_failures": 3}`, hosttest.Upstream(be), hosttest.Workers(1))
	be.set("reset")
	r := h.Do(get("/x"))
	if r.Status != 503 || r.Flags.String() != "UC" {
		t.Fatalf("reset: %v, want the router's 503 with UC", r)
	}
	be.set("hold")
	s := h.Stream(get("/x").Timeout(5 * time.Second)).SendHeaders()
	h.Clock().Advance(5 * time.Second)
	r, ok := s.Wait(5 * time.Second)
	if !ok || r.Status != 504 || r.Flags.String() != "UT" {
		t.Fatalf("route timeout: %v, want 504 UT", r)
	}
	if rec := sharedRecord(t, h, recordKey); rec.consecutive != 2 {
		t.Fatalf("after a reset and a timeout: %d consecutive failures, want 2", rec.consecutive)
	}
	be.set("fail")
	h.Do(get("/x"))
	wantRejected(t, h.Do(get("/x")), "60")
}

func TestSlowCallsAreFailures(t *testing.T) {
	be := newBackend()
	h := newHost(t, `{"consecutive_failures": 2, "slow_call": {"duration": "2s"}}`, hosttest.Upstream(be), hosttest.Workers(1))
	slow := func(d time.Duration) {
		be.set("hold")
		s := h.Stream(get("/x")).SendHeaders()
		be.awaitArrivals(t, 1)
		h.Clock().Advance(d)
		be.set("ok")
		r, ok := s.Wait(5 * time.Second)
		if !ok || r.Status != 200 {
			t.Fatalf("slow request: %v", r)
		}
	}
	slow(1 * time.Second) // fast enough
	slow(3 * time.Second)
	wantMetric(t, h, "failures_total", 1)
	slow(3 * time.Second)
	wantMetric(t, h, "opened_total", 1)
	// The host clock is real time plus what the test added: 3s and a bit.
	if tr := transitions(h); len(tr) != 1 || !regexp.MustCompile(`slow call: 3(\.\d+)?s > 2s`).MatchString(tr[0]) {
		t.Fatalf("transition lines = %q", tr)
	}
}

func TestRetryAfterCountsDown(t *testing.T) {
	be := newBackend()
	h := newHost(t, `{}`, hosttest.Upstream(be))
	trip(t, h, be, 5)
	h.Clock().Advance(20 * time.Second)
	wantRejected(t, h.Do(get("/x")), "40")
	h.Clock().Advance(39 * time.Second)
	wantRejected(t, h.Do(get("/x")), "1")
}

func TestProbeSuccessCloses(t *testing.T) {
	be := newBackend()
	h := newHost(t, `{"open_duration": "10s"}`, hosttest.Upstream(be))
	trip(t, h, be, 5)
	h.Clock().Advance(10 * time.Second)
	be.set("ok")
	wantStatus(t, h.Do(get("/x")), 200) // the probe
	for range 10 {
		wantStatus(t, h.Do(get("/x")), 200)
	}
	wantMetric(t, h, "probes_total", 1)
	wantMetric(t, h, "closed_total", 1)
	wantMetric(t, h, "state_backend", int64(closed))
	tr := transitions(h)
	if len(tr) != 3 || !strings.Contains(tr[1], "open -> half-open") || !strings.Contains(tr[2], "half-open -> closed: 1 probe(s) succeeded") {
		t.Fatalf("transition lines = %q", tr)
	}
}

func TestProbeFailureReopensWithBackoff(t *testing.T) {
	be := newBackend()
	h := newHost(t, `{"open_duration": "10s", "backoff_multiplier": 2, "max_open_duration": "30s"}`, hosttest.Upstream(be))
	trip(t, h, be, 5)
	for _, open := range []int{20, 30, 30} {
		h.Clock().Advance(time.Duration(open-10) * time.Second) // due
		h.Clock().Advance(10 * time.Second)
		r := h.Do(get("/x")) // the probe fails
		if r.Status != 503 || r.LocalReplyBy != "" {
			t.Fatalf("probe: %v, want the backend's 503", r)
		}
		wantRejected(t, h.Do(get("/x")), strconv.Itoa(open))
	}
	// Recovery closes it and resets the backoff.
	h.Clock().Advance(30 * time.Second)
	be.set("ok")
	wantStatus(t, h.Do(get("/x")), 200)
	trip(t, h, be, 5)
	wantRejected(t, h.Do(get("/x")), "10")
}

// Half-open admits exactly half_open_requests probes, however many
// workers race for them.
func TestHalfOpenAdmitsExactlyNAcrossWorkers(t *testing.T) {
	for _, n := range []int{1, 3} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			be := newBackend()
			h := newHost(t, `{"open_duration": "10s", "half_open_requests": `+strconv.Itoa(n)+`}`, hosttest.Upstream(be), hosttest.Workers(4))
			trip(t, h, be, 5)
			h.Clock().Advance(10 * time.Second)
			be.set("hold")
			const racers = 24
			streams := make([]*hosttest.Stream, racers)
			var wg sync.WaitGroup
			for i := range racers {
				wg.Go(func() { streams[i] = h.Stream(get("/x")).SendHeaders() })
			}
			wg.Wait()
			be.awaitArrivals(t, n)
			rejected := 0
			for _, s := range streams {
				if s.Complete() {
					r, _ := s.Wait(time.Second)
					wantRejected(t, r, "1")
					rejected++
				}
			}
			if rejected != racers-n || be.calls.Load() != 5+int64(n) {
				t.Fatalf("%d rejected, backend saw %d probes; want %d rejected and %d probes", rejected, be.calls.Load()-5, racers-n, n)
			}
			wantMetric(t, h, "probes_total", int64(n))
			be.set("ok")
			for _, s := range streams {
				if r, ok := s.Wait(5 * time.Second); !ok {
					t.Fatalf("stream did not finish: %v", r)
				}
			}
			wantMetric(t, h, "closed_total", 1)
			wantMetric(t, h, "in_flight", 0)
		})
	}
}

// A probe whose client hangs up gives its permit back: the next request
// probes instead of the breaker staying half-open for good.
func TestAbandonedProbeFreesItsPermit(t *testing.T) {
	be := newBackend()
	h := newHost(t, `{"open_duration": "10s"}`, hosttest.Upstream(be))
	trip(t, h, be, 5)
	h.Clock().Advance(10 * time.Second)
	be.set("hold")
	probe := h.Stream(get("/x")).SendHeaders()
	be.awaitArrivals(t, 1)
	wantRejected(t, h.Do(get("/x")), "1")
	probe.Reset()
	be.set("ok")
	r := h.Do(get("/x"))
	wantStatus(t, r, 200)
	wantMetric(t, h, "probes_total", 2)
	wantMetric(t, h, "closed_total", 1)
	wantMetric(t, h, "in_flight", 0)
}

// Local replies of other filters (a 401, a 429) are not backend outcomes,
// even with their status in failure_statuses, wherever the filter sits in
// the chain.
func TestOtherFiltersRepliesNotCounted(t *testing.T) {
	jwt := hosttest.Filter{Plugin: "../jwt-auth", Config: `{"providers":[{"issuer":"https://a","algorithms":["HS256"],"hmac_secret":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}]}`}
	cb := hosttest.Filter{Plugin: ".", Config: `{"consecutive_failures": 2, "failure_statuses": [401, 500, 503]}`}
	for name, chain := range map[string][]hosttest.Filter{"jwt-auth first": {jwt, cb}, "circuit-breaker first": {cb, jwt}} {
		t.Run(name, func(t *testing.T) {
			be := newBackend()
			h := hosttest.New(t, hosttest.Chain(chain...), hosttest.Upstream(be))
			for range 5 {
				r := h.Do(get("/x"))
				if r.Status != 401 || r.LocalReplyBy != "jwt-auth" {
					t.Fatalf("response %v, want jwt-auth's 401", r)
				}
			}
			wantMetric(t, h, "failures_total", 0)
			wantMetric(t, h, "opened_total", 0)
			wantMetric(t, h, "in_flight", 0)
		})
	}
}

func TestBulkheadUnderParallelLoad(t *testing.T) {
	be := newBackend()
	h := newHost(t, `{"max_concurrent": 3}`, hosttest.Upstream(be), hosttest.Workers(4))
	be.set("hold")
	const n = 16
	streams := make([]*hosttest.Stream, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { streams[i] = h.Stream(get("/x")).SendHeaders() })
	}
	wg.Wait()
	be.awaitArrivals(t, 3)
	over := 0
	for _, s := range streams {
		if s.Complete() {
			r, _ := s.Wait(time.Second)
			wantRejected(t, r, "1")
			over++
		}
	}
	if over != n-3 || be.calls.Load() != 3 {
		t.Fatalf("%d over the limit, %d reached the backend; want %d and 3", over, be.calls.Load(), n-3)
	}
	wantMetric(t, h, "in_flight", 3)
	wantMetric(t, h, "overflow_total", n-3)
	be.set("ok")
	for _, s := range streams {
		if _, ok := s.Wait(5 * time.Second); !ok {
			t.Fatal("a held request did not finish")
		}
	}
	wantMetric(t, h, "in_flight", 0)
	if r := sharedRecord(t, h, recordKey); r.inFlight != 0 {
		t.Fatalf("in flight in shared data after every request ended: %d", r.inFlight)
	}
	for range 3 {
		wantStatus(t, h.Do(get("/x")), 200)
	}
}

func TestShadowLetsEverythingThrough(t *testing.T) {
	be := newBackend()
	h := newHost(t, `{"shadow": true}`, hosttest.Upstream(be))
	trip(t, h, be, 5)
	be.set("ok")
	for range 3 {
		wantStatus(t, h.Do(get("/x")), 200)
	}
	wantMetric(t, h, "opened_total", 1)
	wantMetric(t, h, "rejected_total", 3)
	wantMetric(t, h, "shadowed_total", 3)
	if l := h.LogsContaining("shadow: would reject"); len(l) != 3 {
		t.Fatalf("shadow log lines = %q", l)
	}
}

func TestForceState(t *testing.T) {
	be := newBackend()
	h := newHost(t, `{"force_state": {"backend": "open", "other": "closed"}, "open_duration": "30s"}`, hosttest.Upstream(be))
	wantRejected(t, h.Do(get("/x")), "30")
	be.set("fail")
	other := func() *hosttest.Request { return hosttest.GET("/x").Attribute("xds.cluster_name", []byte("other")) }
	for range 10 {
		wantStatus(t, h.Do(other()), 503)
	}
	if be.calls.Load() != 10 {
		t.Fatalf("backend saw %d requests, want the 10 to the forced-closed cluster", be.calls.Load())
	}
}

func TestProblemJSON(t *testing.T) {
	be := newBackend()
	h := newHost(t, `{"error_format": "problem+json"}`, hosttest.Upstream(be))
	trip(t, h, be, 5)
	r := h.Do(get("/x"))
	want := `{"type":"about:blank","title":"Service Unavailable","status":503,"detail":"service unavailable","retryAfter":60,"requestId":"req-1"}`
	if string(r.Body) != want || r.Header("content-type") != "application/problem+json" {
		t.Fatalf("body %s (%s), want %s", r.Body, r.Header("content-type"), want)
	}
}

func TestRules(t *testing.T) {
	be := newBackend()
	h := newHost(t, `{"rules": [{"match": {"prefix": "/health"}, "enabled": false},
		{"match": {"prefix": "/fragile"}, "consecutive_failures": 1}]}`, hosttest.Upstream(be))
	be.set("fail")
	for range 10 {
		h.Do(get("/health"))
	}
	wantMetric(t, h, "failures_total", 0)
	h.Do(get("/fragile"))
	wantRejected(t, h.Do(get("/fragile")), "60")
	// The rule's breaker is its own: the top-level one is still closed.
	r := h.Do(get("/x"))
	if r.LocalReplyBy != "" {
		t.Fatalf("top-level breaker: %v, want the request through", r)
	}
}

func TestScopes(t *testing.T) {
	cases := []struct {
		cfg  string
		a, b *hosttest.Request // two requests under different scope keys
		key  string
	}{
		{`{"scope": "route", "consecutive_failures": 1}`, hosttest.GET("/x").Route("a"), hosttest.GET("/x").Route("b"), "circuit-breaker/circuit-breaker/b/0/a"},
		{`{"scope": "authority", "consecutive_failures": 1}`, hosttest.GET("/x").Host("A.example.com:8443"), hosttest.GET("/x").Host("b.example.com"), "circuit-breaker/circuit-breaker/b/0/a.example.com"},
		{`{"consecutive_failures": 1}`, hosttest.GET("/x").Attribute("xds.cluster_name", []byte("a")), hosttest.GET("/x"), "circuit-breaker/circuit-breaker/b/0/a"},
	}
	for _, c := range cases {
		t.Run(c.cfg, func(t *testing.T) {
			be := newBackend()
			h := newHost(t, c.cfg, hosttest.Upstream(be))
			be.set("fail")
			h.Do(c.a)
			if r := h.Do(c.a); r.LocalReplyBy != filterName {
				t.Fatalf("second request to a: %v, want the breaker's 503", r)
			}
			if r := h.Do(c.b); r.LocalReplyBy != "" {
				t.Fatalf("request to b: %v, want it through", r)
			}
			if _, _, ok := h.SharedData("").Get(c.key); !ok {
				t.Fatalf("no record %s in %q", c.key, h.SharedData("").Keys())
			}
		})
	}
}

func TestBadConfigRefusedAtStart(t *testing.T) {
	cases := []struct{ cfg, want string }{
		{`{"failure_rate": {"threshold": 1.5}}`, `failure_rate.threshold: must be in (0, 1], got 1.5`},
		{`{"consecutive_failures": 0}`, `consecutive_failures: must be from 1 to 1000000, got 0`},
		{`{"half_open_requests": 0}`, `half_open_requests: must be from 1 to 1000000, got 0`},
		{`{"open_duration": "0s"}`, `open_duration: must be from 1ms to 24h0m0s, got "0s"`},
		{`{"scope": "ip"}`, `scope: must be one of "cluster", "route", "authority", got "ip"`},
		{`{"max_concurent": 3}`, `unknown field "max_concurent"`},
	}
	for _, c := range cases {
		h, err := hosttest.Start(hosttest.Plugin("."), hosttest.Config(c.cfg))
		if err == nil {
			h.Close()
			t.Errorf("Start(%s) succeeded, want it refused", c.cfg)
			continue
		}
		if want := "[error] " + c.want; !strings.Contains(err.Error(), want) {
			t.Errorf("Start(%s) = %q, want it to contain %q", c.cfg, err, want)
		}
	}
}

// Requests that only succeed create no breaker: with "scope":
// "authority", clients cannot spend the key bound on made-up hosts that
// answer.
func TestSuccessesCreateNoBreaker(t *testing.T) {
	be := newBackend()
	h := newHost(t, `{"scope": "authority"}`, hosttest.Upstream(be))
	for i := range 50 {
		wantStatus(t, h.Do(hosttest.GET("/x").Host("made-up-"+strconv.Itoa(i)+".example.com")), 200)
	}
	if keys := h.SharedData("").Keys(); len(keys) != 1 || keys[0] != "circuit-breaker/circuit-breaker/lock" {
		t.Fatalf("shared data after 50 successes: %q, want only the creation lock", keys)
	}
	be.set("fail")
	h.Do(hosttest.GET("/x").Host("real.example.com"))
	if keys := h.SharedData("").Keys(); len(keys) != 3 {
		t.Fatalf("shared data after a failure: %q, want the breaker, the key count and the lock", keys)
	}
}

// A client that hangs up gives its bulkhead slot back (on_log runs for
// every stream).
func TestBulkheadSlotFreedByClientReset(t *testing.T) {
	be := newBackend()
	h := newHost(t, `{"max_concurrent": 1}`, hosttest.Upstream(be))
	be.set("hold")
	first := h.Stream(get("/x")).SendHeaders()
	be.awaitArrivals(t, 1)
	wantRejected(t, h.Do(get("/x")), "1")
	wantMetric(t, h, "in_flight", 1)
	first.Reset()
	wantMetric(t, h, "in_flight", 0)
	be.set("ok")
	wantStatus(t, h.Do(get("/x")), 200)
	if r := sharedRecord(t, h, recordKey); r.inFlight != 0 || r.consecutive != 0 {
		t.Fatalf("record after the reset and a success: %+v, want no slot held and no failure counted", r)
	}
}
