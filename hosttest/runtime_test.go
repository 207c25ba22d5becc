package hosttest_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/concierge-wasm/concierge/hosttest"
)

func TestStdoutStderrBecomeLogLines(t *testing.T) {
	h := probeHost(t, "")
	h.Do(hosttest.GET("/").Header("x-p", script("stdout:to-out", "stderr:to-err", "log:warn:warned")))
	levels := map[string]string{}
	for _, l := range h.Logs() {
		levels[l.Message] = l.Level.String()
	}
	for msg, want := range map[string]string{"to-out": "info", "to-err": "error", "warned": "warn"} {
		if levels[msg] != want {
			t.Errorf("log %q at level %q, want %q (one line, trailing newline cut)", msg, levels[msg], want)
		}
	}
}

// Advance moves both WASI clocks: wall time (time.Now) and the monotonic
// clock Go's time.Since reads.
func TestClockAdvanceMovesWallAndMonotonic(t *testing.T) {
	h := probeHost(t, "", hosttest.Workers(1))
	read := func() (wall, mono int64) {
		up := h.Do(hosttest.GET("/").Header("x-p", "time")).Upstream
		wall, _ = strconv.ParseInt(up.Header("x-p-now"), 10, 64)
		mono, _ = strconv.ParseInt(up.Header("x-p-mono"), 10, 64)
		return
	}
	w1, m1 := read()
	h.Clock().Advance(time.Hour)
	w2, m2 := read()
	if d := time.Duration(w2 - w1); d < time.Hour || d > time.Hour+time.Minute {
		t.Errorf("wall clock moved %v, want about 1h", d)
	}
	if d := time.Duration(m2 - m1); d < time.Hour || d > time.Hour+time.Minute {
		t.Errorf("monotonic clock moved %v, want about 1h", d)
	}
	if d := h.Clock().Now().Sub(time.Unix(0, w2)); d < 0 || d > time.Minute {
		t.Errorf("host Clock().Now() and the plugin's time.Now differ by %v", d)
	}
}

func TestTicksFollowTheClock(t *testing.T) {
	h := hosttest.New(t, hosttest.Plugin("testdata/ticker"), hosttest.Config(`{"tick_ms":1000}`), hosttest.Workers(2))
	h.Clock().Advance(10 * time.Second)
	// Every VM (main thread and each worker) ticks on its own, as in
	// Envoy: 3 VMs x 10 periods.
	// Envoy re-arms a tick timer after on_tick returns, so periods drift
	// by the callback's duration: each VM ticks 9 or 10 times.
	if n, _ := h.Metric("ticker_ticks_total"); n < 27 || n > 33 {
		t.Errorf("ticks after 10s on 3 VMs = %d, want about 30", n)
	}
}

func TestSeededRandomIsReproducible(t *testing.T) {
	read := func(seed uint64) string {
		h := probeHost(t, "", hosttest.Seed(seed), hosttest.Workers(1))
		return h.Do(hosttest.GET("/").Header("x-p", "rand")).Upstream.Header("x-p-rand")
	}
	a, b, c := read(7), read(7), read(8)
	if a == "" || a != b {
		t.Errorf("seed 7 gave %q then %q, want the same", a, b)
	}
	if a == c {
		t.Errorf("seeds 7 and 8 both gave %q", a)
	}
}

// Under Envoy 1.33's WASI, poll_oneoff is ENOSYS: time.Sleep makes the Go
// runtime throw, which traps the VM; under the newer host it returns at
// once, and hosttest flags the attempt.
func TestSleepFailsAsInEnvoy(t *testing.T) {
	t.Run("envoy-1.33 traps", func(t *testing.T) {
		h := probeHost(t, "", hosttest.AllowTraps(), hosttest.Workers(1))
		// A long sleep: a short one can be over before the Go scheduler
		// goes idle on a loaded machine, and then it never polls.
		resp := h.Do(hosttest.GET("/").Header("x-p", "sleep:600000"))
		wantStatus(t, resp, 503)
		wantHeader(t, "details", resp.Details, "wasm_fail_stream")
		if len(h.Traps()) != 1 || !containsLog(h, "poll_oneoff") {
			t.Errorf("traps %v; want one, with the runtime's poll_oneoff failure in the logs", h.Traps())
		}
	})
	t.Run("envoy-latest flags it", func(t *testing.T) {
		h := probeHost(t, "", hosttest.AllowTraps(), hosttest.WithProfile(hosttest.EnvoyLatest), hosttest.Workers(1))
		h.Do(hosttest.GET("/").Header("x-p", "sleep:5"))
		if b := h.Blocking(); len(b) == 0 || !strings.Contains(b[0], "asked to sleep") {
			t.Errorf("Blocking() = %v, want the sleep reported", b)
		}
	})
}

func TestBlockedGoroutineTraps(t *testing.T) {
	h := probeHost(t, "", hosttest.AllowTraps(), hosttest.Workers(1))
	resp := h.Do(hosttest.GET("/").Header("x-p", "block"))
	wantStatus(t, resp, 503)
	if !containsLog(h, "deadlock") {
		t.Error("no deadlock message in the logs")
	}
}

func TestTrapAndFailurePolicies(t *testing.T) {
	tests := []struct {
		policy            hosttest.FailurePolicy
		name              string
		wantAfter         int
		wantAfterAdvanced int
	}{
		{hosttest.FailClosed, "fail-closed", 503, 503},
		{hosttest.FailOpen, "fail-open", 200, 200},
		{hosttest.FailReload, "fail-reload", 503, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := probeFilter("p", "")
			f.FailurePolicy = tc.policy
			h := hosttest.New(t, hosttest.Chain(f), hosttest.Workers(1), hosttest.AllowTraps())
			resp := h.Do(hosttest.GET("/").Header("x-p", "panic-req"))
			want := 503
			if tc.policy == hosttest.FailOpen {
				want = 200 // fail_open: the trapping filter is skipped
			}
			wantStatus(t, resp, want)
			if want == 503 {
				wantHeader(t, "details", resp.Details, "wasm_fail_stream")
				wantHeader(t, "LocalReplyBy", resp.LocalReplyBy, "p")
			}
			// Under Envoy 1.33's WASI the Go runtime crashes while printing
			// the panic (it sleeps, poll_oneoff fails): the message is lost.
			if !containsLog(h, "panic during panic") {
				t.Error("want the runtime's double panic in the logs")
			}
			wantStatus(t, h.Do(hosttest.GET("/")), tc.wantAfter)
			h.Clock().Advance(2 * time.Second)
			wantStatus(t, h.Do(hosttest.GET("/")), tc.wantAfterAdvanced)
		})
	}
}

// TestFailReloadPacing: FAIL_RELOAD paces reloads as Envoy does, from the
// time the VM was loaded (or last reloaded), not from the failure: a VM that
// ran for a while is reloaded on the very next stream, while a module that
// traps right after each reload is retried at most once per backoff (10s
// base here, jittered up to 15s: long beside the real time a loaded
// machine takes between steps, which the host clock also counts). The
// stream that trapped always gets 503.
func TestFailReloadPacing(t *testing.T) {
	type step struct {
		advance time.Duration
		panic   bool
		want    int
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"a VM that ran for a while is reloaded at once", []step{
			{advance: 100 * time.Second, panic: true, want: 503},
			{want: 200},
			{want: 200},
		}},
		{"a VM that fails at once waits out the backoff", []step{
			{panic: true, want: 503},
			{want: 503},
			{advance: 9 * time.Second, want: 503},
			{advance: 7 * time.Second, want: 200},
		}},
		{"a crash loop is retried once per backoff", []step{
			{advance: 100 * time.Second, panic: true, want: 503},
			{panic: true, want: 503}, // reloaded, and trapped again
			{want: 503},
			{advance: 16 * time.Second, want: 200},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := probeFilter("p", "")
			f.FailurePolicy = hosttest.FailReload
			f.ReloadBackoff = 10 * time.Second
			h := hosttest.New(t, hosttest.Chain(f), hosttest.Workers(1), hosttest.AllowTraps())
			for i, st := range tc.steps {
				h.Clock().Advance(st.advance)
				req := hosttest.GET("/")
				if st.panic {
					req = req.Header("x-p", "panic-req")
				}
				resp := h.Do(req)
				if resp.Status != st.want {
					t.Fatalf("step %d (advance %v, panic %v): status %d, want %d", i, st.advance, st.panic, resp.Status, st.want)
				}
				if st.want == 503 {
					wantHeader(t, "details", resp.Details, "wasm_fail_stream")
				}
			}
		})
	}
}

// With the newer host, poll_oneoff succeeds and the panic text arrives.
func TestPanicMessageUnderLatestProfile(t *testing.T) {
	h := probeHost(t, "", hosttest.AllowTraps(), hosttest.WithProfile(hosttest.EnvoyLatest), hosttest.Workers(1))
	wantStatus(t, h.Do(hosttest.GET("/").Header("x-p", "panic-req")), 503)
	if !containsLog(h, "probe p: panic-req") {
		t.Error("the panic message did not reach the logs")
	}
	if b := h.Blocking(); len(b) != 0 {
		t.Errorf("a panic was reported as blocking: %v", b)
	}
}

func TestTrapInResponsePathAfterUpstream(t *testing.T) {
	h := probeHost(t, "", hosttest.AllowTraps(), hosttest.Workers(1))
	resp := h.Do(hosttest.GET("/").Header("x-p", "panic-resp"))
	wantStatus(t, resp, 503)
	if resp.Upstream == nil {
		t.Error("upstream should have been reached")
	}
}

// A test host fails the test on an unexpected trap, with the plugin's logs.
func TestUnexpectedTrapFailsTheTest(t *testing.T) {
	ft := &fakeT{TB: t}
	func() {
		h := hosttest.New(ft, hosttest.Chain(probeFilter("p", "")), hosttest.Workers(1))
		defer ft.cleanup()
		h.Do(hosttest.GET("/").Header("x-p", "panic-req"))
	}()
	if len(ft.errors) != 1 || !strings.Contains(ft.errors[0], "trapped in proxy_on_request_headers") {
		t.Errorf("errors reported = %q, want one: the trap with the plugin's logs", ft.errors)
	}
}

type fakeT struct {
	testing.TB
	errors   []string
	cleanups []func()
}

func (f *fakeT) Helper()           {}
func (f *fakeT) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }
func (f *fakeT) Errorf(format string, args ...any) {
	f.errors = append(f.errors, sprintf(format, args...))
}
func (f *fakeT) cleanup() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}
