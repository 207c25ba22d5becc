package main

import (
	"strings"
	"testing"
	"time"
)

// t0 is a realistic Unix time in ns: the window buckets are indexed by
// absolute time.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano()

func testPolicy(mod func(p *policy)) *policy {
	p := defaultPolicy()
	p.openDuration = 10 * time.Second
	p.maxOpenDuration = 10 * time.Second
	if mod != nil {
		mod(&p)
	}
	return &p
}

// sim drives one breaker through a script of events, as the wiring does,
// and keeps the tickets of the requests in flight by name.
type sim struct {
	t       testing.TB
	p       *policy
	r       record
	now     int64
	tickets map[string]ticket
	log     []string
}

func newSim(t testing.TB, p *policy) *sim {
	return &sim{t: t, p: p, now: t0, tickets: map[string]ticket{}}
}

func (s *sim) note(tr *transition) {
	if tr != nil {
		s.log = append(s.log, tr.from.String()+"->"+tr.to.String())
	}
}

// step runs one event:
//
//	"+5s"        time passes
//	"req a"      request a asks to pass; the verdict must be "pass" or "probe"
//	"rej"        a request asks and must be rejected
//	"full"       a request asks and must overflow the bulkhead
//	"ok a"       request a succeeded; "fail a" failed; "gone a" ended without an outcome
//	"done a"     request a's on_log (bulkhead slot back)
//	"S closed"   the state must be closed (open, half-open)
//	"hit"        shorthand for: a request passes and succeeds at once
//	"miss"       a request passes and fails at once
func (s *sim) step(ev string) {
	s.t.Helper()
	f := strings.Fields(ev)
	switch f[0] {
	case "hit", "miss":
		s.step("req _")
		if f[0] == "hit" {
			s.step("ok _")
		} else {
			s.step("fail _")
		}
		s.step("done _")
	case "req", "rej", "full":
		v, t, _, _, tr := admit(&s.r, s.p, s.now)
		s.note(tr)
		switch {
		case f[0] == "req" && (v == admitted || v == probing):
			s.tickets[f[1]] = t
		case f[0] == "rej" && v == rejected, f[0] == "full" && v == overflow:
		default:
			s.t.Fatalf("%q: verdict %d in state %s", ev, v, s.r.state)
		}
	case "ok", "fail", "gone":
		o := map[string]outcome{"ok": success, "fail": failure, "gone": noOutcome}[f[0]]
		_, tr := observe(&s.r, s.p, s.tickets[f[1]], o, s.now, "test")
		s.note(tr)
	case "done":
		release(&s.r, s.tickets[f[1]])
		delete(s.tickets, f[1])
	case "S":
		if got := s.r.state.String(); got != f[1] {
			s.t.Fatalf("after %v: state %s, want %s", s.log, got, f[1])
		}
	default:
		d, err := time.ParseDuration(strings.TrimPrefix(f[0], "+"))
		if err != nil {
			s.t.Fatalf("bad event %q", ev)
		}
		s.now += int64(d)
	}
}

func TestStateMachine(t *testing.T) {
	rate := func(p *policy) {
		p.consecutiveFailures = 1000
		p.rateThreshold, p.minimumRequests, p.window = 0.5, 4, 10*time.Second
	}
	cases := []struct {
		name   string
		mod    func(p *policy)
		script string
	}{
		{"four failures stay closed", nil, "miss; miss; miss; miss; S closed; req a"},
		{"five consecutive failures open", nil, "miss; miss; miss; miss; miss; S open; rej"},
		{"a success resets the run", nil, "miss; miss; miss; miss; hit; miss; miss; miss; miss; S closed; miss; S open"},
		{"open rejects until open_duration", nil, "miss; miss; miss; miss; miss; +9s; rej; S open; +1s; req p; S half-open"},
		{"one probe at a time", nil, "miss;miss;miss;miss;miss; +10s; req p; rej; rej; S half-open"},
		{"probe success closes", nil, "miss;miss;miss;miss;miss; +10s; req p; ok p; S closed; hit; req a"},
		{"probe failure reopens", nil, "miss;miss;miss;miss;miss; +10s; req p; fail p; S open; rej; +10s; req q; S half-open"},
		{"abandoned probe frees its permit", nil, "miss;miss;miss;miss;miss; +10s; req p; rej; gone p; S half-open; req q; ok q; S closed"},
		{"half_open_requests 3 admits three", func(p *policy) { p.halfOpenPermits = 3 },
			"miss;miss;miss;miss;miss; +10s; req p1; req p2; req p3; rej; S half-open"},
		{"success_threshold 2 needs two probes", func(p *policy) { p.successes = 2 },
			"miss;miss;miss;miss;miss; +10s; req p1; ok p1; S half-open; req p2; ok p2; S closed"},
		{"one failed probe among successes reopens", func(p *policy) { p.successes = 3; p.halfOpenPermits = 3 },
			"miss;miss;miss;miss;miss; +10s; req p1; req p2; req p3; ok p1; fail p2; S open; ok p3; S open"},
		{"late outcome of a request admitted while closed is ignored", nil,
			"req old; miss;miss;miss;miss;miss; S open; fail old; +10s; req p; ok old; S half-open; ok p; S closed"},
		{"late success does not close an open breaker", nil, "req old; miss;miss;miss;miss;miss; ok old; S open"},
		{"permit lapses after open_duration without news", nil,
			"miss;miss;miss;miss;miss; +10s; req p; rej; +10s; req q; ok p; S half-open; ok q; S closed"},
		{"rate: below minimum_requests stays closed", rate, "miss; miss; miss; S closed"},
		{"rate: 2 of 4 reaches 0.5", rate, "hit; miss; hit; miss; S open"},
		{"rate: 1 of 4 stays closed", rate, "hit; hit; hit; miss; S closed"},
		{"rate: old calls slide out", rate, "miss; miss; miss; +11s; hit; hit; hit; miss; S closed"},
		{"rate: reset on close", rate, "hit; miss; hit; miss; S open; +10s; req p; ok p; S closed; miss; miss; miss; S closed; miss; S open"},
		{"bulkhead: max_concurrent 2", func(p *policy) { p.maxConcurrent = 2 },
			"req a; req b; full; done a; req c; full; done b; done c; req d"},
		{"bulkhead holds probes too", func(p *policy) { p.maxConcurrent = 1 },
			"miss;miss;miss;miss;miss; +10s; req p; rej; gone p; done p; req q; S half-open"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newSim(t, testPolicy(c.mod))
			for ev := range strings.SplitSeq(c.script, ";") {
				s.step(strings.TrimSpace(ev))
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	p := testPolicy(func(p *policy) { p.backoff = 2; p.maxOpenDuration = 35 * time.Second })
	s := newSim(t, p)
	for range 5 {
		s.step("miss")
	}
	// Each failed probe doubles the open time: 10s, 20s, then 35s (capped).
	for _, want := range []time.Duration{10 * time.Second, 20 * time.Second, 35 * time.Second, 35 * time.Second} {
		if got := time.Duration(s.r.openUntil - s.now); got != want {
			t.Fatalf("open for %s, want %s", got, want)
		}
		s.step("+" + (want - time.Second).String())
		s.step("rej")
		s.step("+1s")
		s.step("req p")
		s.step("fail p")
	}
	// A close resets the backoff.
	s.step("+35s")
	s.step("req p")
	s.step("ok p")
	for range 5 {
		s.step("miss")
	}
	if got := time.Duration(s.r.openUntil - s.now); got != 10*time.Second {
		t.Fatalf("after closing, open for %s, want 10s", got)
	}
}

func TestOpenForNoOverflow(t *testing.T) {
	p := testPolicy(func(p *policy) { p.backoff = 100; p.maxOpenDuration = 24 * time.Hour })
	for _, n := range []uint32{1, 2, 10, 1000, 1 << 31} {
		if d := p.openFor(n); d <= 0 || d > 24*time.Hour {
			t.Errorf("openFor(%d) = %s, want within (0, 24h]", n, d)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	s := newSim(t, testPolicy(nil))
	for range 5 {
		s.step("miss")
	}
	s.step("+3500ms")
	v, _, retry, _, _ := admit(&s.r, s.p, s.now)
	if v != rejected || retry != 6500*time.Millisecond {
		t.Fatalf("admit = %d, retry %s; want rejected, 6.5s", v, retry)
	}
}

func TestWindow(t *testing.T) {
	p := testPolicy(func(p *policy) { p.rateThreshold, p.minimumRequests, p.window = 0.5, 1, 10*time.Second })
	w := int64(time.Second) // bucket width
	base := (t0 / w) * w
	cases := []struct {
		name       string
		at         []int64 // call times, relative to base, in bucket widths ×1000 (ms)
		failed     []bool
		read       int64 // ms
		calls, bad uint32
	}{
		{"one bucket", []int64{0, 100, 900}, []bool{true, false, false}, 900, 3, 1},
		{"spread over the window", []int64{0, 4000, 9999}, []bool{true, true, false}, 9999, 3, 2},
		{"the oldest bucket slides out", []int64{0, 5000, 9999}, []bool{true, false, false}, 10000, 2, 0},
		{"everything slid out", []int64{0, 1000}, []bool{true, true}, 25000, 0, 0},
		{"a long gap clears every bucket", []int64{0, 1000, 50000}, []bool{true, true, false}, 50000, 1, 0},
		{"a late call lands in the oldest bucket", []int64{20000, 5000}, []bool{false, true}, 20000, 2, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var r record
			for i, ms := range c.at {
				r.count(p, base+ms*int64(time.Millisecond), c.failed[i])
			}
			calls, bad := r.totals(p, base+c.read*int64(time.Millisecond))
			if calls != c.calls || bad != c.bad {
				t.Fatalf("totals = %d calls, %d failures; want %d, %d", calls, bad, c.calls, c.bad)
			}
		})
	}
}

func TestRecordRoundTrip(t *testing.T) {
	r := record{state: halfOpen, epoch: 7, consecutive: 3, trips: 2, openUntil: t0, probes: 1, okProbes: 1,
		probeAt: t0 + 5, inFlight: 9, head: t0 / int64(time.Second)}
	for i := range buckets {
		r.calls[i], r.fails[i] = uint32(i*100), uint32(i)
	}
	b := appendRecord(nil, &r)
	if len(b) > maxRecordBytes {
		t.Fatalf("encoded %d bytes, over maxRecordBytes %d", len(b), maxRecordBytes)
	}
	var got record
	if err := decodeRecord(b, &got); err != nil || got != r {
		t.Fatalf("decodeRecord(appendRecord(r)) = %+v, %v; want %+v", got, err, r)
	}
	if idle := appendRecord(nil, &record{}); len(idle) > 32 {
		t.Errorf("an idle record takes %d bytes, want at most 32", len(idle))
	}
	for _, bad := range [][]byte{nil, {}, {2}, b[:len(b)-1], append(append([]byte{}, b...), 0), {1, 9}} {
		if err := decodeRecord(bad, &got); err == nil {
			t.Errorf("decodeRecord(%v) accepted", bad)
		}
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(appendRecord(nil, &record{state: open, openUntil: t0}))
	f.Add([]byte{1, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		var r record
		if decodeRecord(b, &r) != nil {
			return
		}
		var again record
		if err := decodeRecord(appendRecord(nil, &r), &again); err != nil {
			t.Fatalf("re-encoded record refused: %v", err)
		}
	})
}
