package main

// The breaker of one scope key, as a plain value: what it remembers
// (record), how a request is admitted (admit), how an outcome moves it
// (observe) and how a request that ends without one gives back what it
// held (abandon). Nothing here calls the host: store.go keeps a record in
// shared data and applies these functions under compare-and-swap, so every
// worker VM moves the same breaker.

import (
	"math"
	"strconv"
	"time"
)

// state is a breaker's state. The numbers are the state gauge's values.
type state uint8

const (
	closed   state = 0
	open     state = 1
	halfOpen state = 2
)

func (s state) String() string {
	switch s {
	case open:
		return "open"
	case halfOpen:
		return "half-open"
	}
	return "closed"
}

// buckets is how many buckets the failure-rate window is cut into: the
// window slides by window/buckets.
const buckets = 10

// policy is one breaker's thresholds and timings (a parsed configuration,
// top level or a rule's).
type policy struct {
	consecutiveFailures uint32
	// rate is on when rateThreshold > 0.
	rateThreshold   float64
	minimumRequests uint32
	window          time.Duration
	failureStatuses []int
	slowCall        time.Duration // 0: calls are never too slow
	openDuration    time.Duration
	backoff         float64
	maxOpenDuration time.Duration
	halfOpenPermits uint32
	successes       uint32
	maxConcurrent   uint32 // 0: no bulkhead
}

func (p *policy) rateOn() bool { return p.rateThreshold > 0 }

// bucketWidth is the time one window bucket covers.
func (p *policy) bucketWidth() int64 { return int64(p.window) / buckets }

// openFor is how long the breaker stays open after its n-th trip in a row
// without closing in between: open_duration, times backoff_multiplier for
// each earlier trip, capped at max_open_duration.
func (p *policy) openFor(n uint32) time.Duration {
	d := float64(p.openDuration)
	if p.backoff > 1 && n > 1 {
		d *= math.Pow(p.backoff, float64(n-1))
	}
	if d >= float64(p.maxOpenDuration) {
		return p.maxOpenDuration
	}
	return time.Duration(d)
}

// record is the shared state of one breaker. Times are Unix nanoseconds on
// the host clock, which every worker shares.
type record struct {
	state state
	// epoch changes at every transition, so that an outcome or a permit
	// from an earlier state of the breaker is recognised and ignored.
	epoch uint32
	// consecutive failures while closed.
	consecutive uint32
	// trips counts openings since the breaker last closed; it drives the
	// backoff.
	trips uint32
	// openUntil is when an open breaker lets its first probe through.
	openUntil int64
	// probes is the number of half-open permits out; okProbes the probes
	// that succeeded in this half-open period.
	probes, okProbes uint32
	// probeAt is when the last permit was handed out: permits lapse after
	// open_duration without news (a VM that died mid-probe).
	probeAt int64
	// inFlight is the number of admitted requests not yet logged, kept
	// only with a bulkhead (max_concurrent).
	inFlight uint32
	// head is the index (time / bucket width) of the newest window bucket;
	// calls[head%buckets] is its count.
	head         int64
	calls, fails [buckets]uint32
}

// verdict is what admit decided for one request.
type verdict uint8

const (
	admitted verdict = iota // closed: through, outcome counted
	probing                 // half-open: through, on a permit
	rejected                // open, or half-open without a free permit
	overflow                // closed, but max_concurrent requests are in flight
)

// ticket is what a request admitted through a breaker carries until its
// outcome: which state of the breaker let it in.
type ticket struct {
	epoch uint32
	probe bool
	// slot: it holds a bulkhead slot, released in on_log.
	slot bool
}

// transition describes a state change, for the warn log line.
type transition struct {
	from, to state
	reason   string
}

// admit decides whether a request may go through, changing r as needed
// (a permit claimed, a bulkhead slot taken, open turned half-open). The
// caller writes r back when changed. retryAfter is set for a rejection.
func admit(r *record, p *policy, now int64) (v verdict, t ticket, retryAfter time.Duration, changed bool, tr *transition) {
	if r.state == open {
		if now < r.openUntil {
			return rejected, t, time.Duration(r.openUntil - now), false, nil
		}
		tr = r.move(halfOpen, "open_duration elapsed: probing with "+strconv.Itoa(int(p.halfOpenPermits))+" request(s)")
		r.probes, r.okProbes, r.probeAt = 0, 0, now
		changed = true
	}
	if r.state == halfOpen {
		if r.probes > 0 && now-r.probeAt >= int64(p.openDuration) {
			// The probes never reported (their VM died): hand the
			// permits out again. The new epoch voids late reports.
			r.epoch++
			r.probes = 0
			changed = true
		}
		if r.probes >= p.halfOpenPermits {
			// The probes decide soon; a second is as good a guess as any.
			return rejected, t, time.Second, changed, tr
		}
		r.probes++
		r.probeAt = now
		t = ticket{epoch: r.epoch, probe: true}
		if p.maxConcurrent > 0 {
			r.inFlight++
			t.slot = true
		}
		return probing, t, 0, true, tr
	}
	t = ticket{epoch: r.epoch}
	if p.maxConcurrent > 0 {
		if r.inFlight >= p.maxConcurrent {
			return overflow, ticket{}, time.Second, changed, tr
		}
		r.inFlight++
		t.slot = true
		changed = true
	}
	return admitted, t, 0, changed, tr
}

// outcome is what became of a request the breaker let through.
type outcome uint8

const (
	// noOutcome: no upstream answer to judge (the client left, another
	// filter answered).
	noOutcome outcome = iota
	success
	failure
)

// observe records the outcome of a request admitted with t. It reports
// whether r changed and the transition, if any. Outcomes from an earlier
// state of the breaker (another epoch) are ignored: a request let through
// before the breaker opened says nothing about the backend now.
func observe(r *record, p *policy, t ticket, o outcome, now int64, why string) (changed bool, tr *transition) {
	if o == noOutcome {
		return abandon(r, t), nil
	}
	if t.epoch != r.epoch {
		return false, nil
	}
	if t.probe {
		if r.state != halfOpen || r.probes == 0 {
			return false, nil
		}
		r.probes--
		if o == failure {
			return true, r.trip(p, now, "probe failed: "+why)
		}
		r.okProbes++
		if r.okProbes < p.successes {
			return true, nil
		}
		tr = r.move(closed, strconv.Itoa(int(r.okProbes))+" probe(s) succeeded")
		r.consecutive, r.trips, r.probes, r.okProbes = 0, 0, 0, 0
		r.head, r.calls, r.fails = 0, [buckets]uint32{}, [buckets]uint32{}
		return true, tr
	}
	if r.state != closed {
		return false, nil
	}
	if o == success {
		changed = r.consecutive != 0
		r.consecutive = 0
		if p.rateOn() {
			r.count(p, now, false)
			changed = true
		}
		return changed, nil
	}
	r.consecutive++
	if r.consecutive >= p.consecutiveFailures {
		return true, r.trip(p, now, strconv.Itoa(int(r.consecutive))+" consecutive failures, the last: "+why)
	}
	if p.rateOn() {
		r.count(p, now, true)
		calls, fails := r.totals(p, now)
		if calls >= p.minimumRequests && float64(fails) >= p.rateThreshold*float64(calls) {
			return true, r.trip(p, now, "failure rate "+strconv.Itoa(int(fails))+"/"+strconv.Itoa(int(calls))+
				" in "+p.window.String()+" reached "+strconv.FormatFloat(p.rateThreshold, 'g', -1, 64))
		}
	}
	return true, nil
}

// abandon gives back a probe permit whose request ended without an
// outcome, so that the breaker cannot stay half-open for good. It reports
// whether r changed.
func abandon(r *record, t ticket) bool {
	if t.probe && t.epoch == r.epoch && r.state == halfOpen && r.probes > 0 {
		r.probes--
		return true
	}
	return false
}

// release frees the bulkhead slot a request held.
func release(r *record, t ticket) bool {
	if t.slot && r.inFlight > 0 {
		r.inFlight--
		return true
	}
	return false
}

// trip opens the breaker.
func (r *record) trip(p *policy, now int64, reason string) *transition {
	r.trips++
	d := p.openFor(r.trips)
	tr := r.move(open, reason+"; open for "+d.String())
	r.openUntil = now + int64(d)
	r.consecutive, r.probes, r.okProbes = 0, 0, 0
	r.head, r.calls, r.fails = 0, [buckets]uint32{}, [buckets]uint32{}
	return tr
}

func (r *record) move(to state, reason string) *transition {
	tr := &transition{from: r.state, to: to, reason: reason}
	r.state = to
	r.epoch++
	return tr
}

// count adds a call to the window bucket of now, first clearing the
// buckets that slid out of the window.
func (r *record) count(p *policy, now int64, failed bool) {
	idx := now / p.bucketWidth()
	switch {
	case idx > r.head:
		if idx-r.head >= buckets {
			r.calls, r.fails = [buckets]uint32{}, [buckets]uint32{}
		} else {
			for i := r.head + 1; i <= idx; i++ {
				r.calls[i%buckets], r.fails[i%buckets] = 0, 0
			}
		}
		r.head = idx
	case idx <= r.head-buckets:
		// Older than the window (a worker's clock read before another's
		// write): count it in the oldest bucket still there.
		idx = r.head - buckets + 1
	}
	b := idx % buckets
	r.calls[b] = satAdd(r.calls[b])
	if failed {
		r.fails[b] = satAdd(r.fails[b])
	}
}

// totals sums the buckets still inside the window at now.
func (r *record) totals(p *policy, now int64) (calls, fails uint32) {
	idx := now / p.bucketWidth()
	for i := max(r.head-buckets+1, idx-buckets+1, 0); i <= r.head; i++ {
		calls += r.calls[i%buckets]
		fails += r.fails[i%buckets]
	}
	return calls, fails
}

func satAdd(n uint32) uint32 {
	if n == math.MaxUint32 {
		return n
	}
	return n + 1
}
