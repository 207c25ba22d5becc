package main

import (
	"strconv"
	"time"
)

// limiter is the per-request decision, without proxy-wasm: main.go
// gathers the request's key input and passes it in.
type limiter struct {
	cfg   *config
	store *store
	key   []byte // scratch
}

// result is one request's outcome.
type result struct {
	verdict
	set *limitSet
	// alt is the key alternative used, -1 when none was complete (those
	// requests share one bucket per limit set).
	alt int
	// storeFailed: the shared data could not be updated (a host error or
	// the CAS loop running out); the verdict is then a denial.
	storeFailed bool
}

// check takes a token for the request described by in, under policy p.
// idName is the verified identity's name for overrides ("" for none).
func (lm *limiter) check(p *policy, idName string, in *keyInput, now time.Time) result {
	set := p.forIdentity(idName)
	k := strconv.AppendInt(lm.key[:0], int64(set.id), 10)
	k = append(k, keySep)
	k, alt := buildKey(k, lm.cfg.key, lm.cfg.trusted, in)
	lm.key = k
	r := result{set: set, alt: alt}
	v, ok := lm.store.take(k, set.limits, now.UnixNano())
	if !ok {
		// Denied with the shortest wait: the slot is contended, not empty.
		v = verdict{tightest: 0, retry: time.Second, remaining: 0, reset: set.limits[0].untilFull(bucket{})}
		r.storeFailed = true
	}
	r.verdict = v
	return r
}

// descriptor lists the parts of the matched key alternative for the rate
// limit service.
func (lm *limiter) descriptor(alt int, in *keyInput) []descriptorEntry {
	if alt < 0 {
		return nil
	}
	parts := lm.cfg.key[alt]
	out := make([]descriptorEntry, 0, len(parts))
	for _, p := range parts {
		v, _ := partValue(p, lm.cfg.trusted, in)
		out = append(out, descriptorEntry{key: p.descriptorKey(), value: v})
	}
	return out
}

// retryAfter is the Retry-After value: whole seconds, at least 1.
func retryAfter(d time.Duration) int64 {
	return max(seconds(d), 1)
}
