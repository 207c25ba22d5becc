package main

// Request coalescing: while one request for a key is at the origin, others
// for the same key, on any worker, wait for its answer instead of all
// going upstream. The request in flight holds a lease in a small fixed
// table in shared data; waiters are paused and look again on each tick:
// a stored entry answers them, a lease released without one (the answer
// was not cacheable) or the coalesce_timeout sends them upstream.

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

const (
	leaseSlots  = 64
	leaseRecord = 24 // key hash u64, owner u64, expires (Unix ms) i64
)

// leases is the in-flight table.
type leases struct {
	sd  shared
	key string
	buf []byte
}

func newLeases(sd shared, namespace string) *leases {
	return &leases{sd: sd, key: "response-cache/" + namespace + "/inflight"}
}

func (l *leases) load() ([]byte, uint32) {
	v, cas, ok := l.sd.get(l.key)
	if cap(l.buf) < leaseSlots*leaseRecord {
		l.buf = make([]byte, leaseSlots*leaseRecord)
	}
	t := l.buf[:leaseSlots*leaseRecord]
	if ok && len(v) == len(t) {
		copy(t, v)
	} else {
		clear(t)
		if !ok {
			cas = 0
		}
	}
	return t, cas
}

// acquire takes the lease of key hash h until now+ttl. held reports that
// another request holds it; both false means the table is full or kept
// changing, and the request goes upstream on its own.
func (l *leases) acquire(h uint64, now time.Time, ttl time.Duration) (owner uint64, held bool) {
	ms := now.UnixMilli()
	for attempt := 0; attempt < casRetries; attempt++ {
		t, cas := l.load()
		free := -1
		for i := 0; i < leaseSlots; i++ {
			r := t[i*leaseRecord:]
			live := int64(binary.LittleEndian.Uint64(r[16:])) > ms
			if binary.LittleEndian.Uint64(r) == h && live {
				return 0, true
			}
			if free < 0 && !live {
				free = i
			}
		}
		if free < 0 {
			return 0, false
		}
		owner = rand.Uint64() | 1
		r := t[free*leaseRecord:]
		binary.LittleEndian.PutUint64(r, h)
		binary.LittleEndian.PutUint64(r[8:], owner)
		binary.LittleEndian.PutUint64(r[16:], uint64(ms+ttl.Milliseconds()))
		err := l.sd.set(l.key, t, cas)
		if err == nil {
			return owner, false
		}
		if !errors.Is(err, errCASMismatch) {
			return 0, false
		}
	}
	return 0, false
}

// held reports whether a live lease for h exists.
func (l *leases) held(h uint64, now time.Time) bool {
	t, _ := l.load()
	ms := now.UnixMilli()
	for i := 0; i < leaseSlots; i++ {
		r := t[i*leaseRecord:]
		if binary.LittleEndian.Uint64(r) == h && int64(binary.LittleEndian.Uint64(r[16:])) > ms {
			return true
		}
	}
	return false
}

// release drops the lease owner holds, if it still does.
func (l *leases) release(h, owner uint64) {
	for attempt := 0; attempt < casRetries; attempt++ {
		t, cas := l.load()
		found := false
		for i := 0; i < leaseSlots; i++ {
			r := t[i*leaseRecord:]
			if binary.LittleEndian.Uint64(r) == h && binary.LittleEndian.Uint64(r[8:]) == owner {
				clear(r[:leaseRecord])
				found = true
			}
		}
		if !found || !errors.Is(l.sd.set(l.key, t, cas), errCASMismatch) {
			return
		}
	}
}

// missOrWait sends a miss upstream, unless coalescing is on and another
// request for the key is already at the origin: then it waits.
func (s *stream) missOrWait() types.Action {
	timeout := s.p.cfg.coalesceTimeout
	if timeout <= 0 || s.shadow || s.head {
		s.p.m.misses.Increment(1)
		return types.ActionContinue
	}
	now := time.Now()
	h := hash64(s.primary)
	owner, held := s.p.leases.acquire(h, now, timeout)
	if held {
		s.leaseHash, s.deadline = h, now.Add(timeout)
		s.p.waiting = append(s.p.waiting, s)
		s.p.m.coalesced.Increment(1)
		s.p.schedule()
		return types.ActionPause
	}
	if owner != 0 {
		s.leaseHash, s.leaseOwner = h, owner
	}
	s.p.m.misses.Increment(1)
	return types.ActionContinue
}

// releaseLease lets the requests waiting on this one look again.
func (s *stream) releaseLease() {
	if s.leaseOwner != 0 {
		s.p.leases.release(s.leaseHash, s.leaseOwner)
		s.leaseOwner = 0
	}
}

func (s *stream) OnHttpStreamDone() {
	s.releaseLease()
}

// wake looks at every waiting request: a fresh stored answer is served,
// a released lease or a passed deadline sends it upstream.
func (p *plugin) wake(now time.Time) {
	if len(p.waiting) == 0 {
		return
	}
	keep := p.waiting[:0]
	for _, s := range p.waiting {
		if err := proxywasm.SetEffectiveContext(s.id); err != nil {
			continue // the client went away
		}
		if e, found := s.lookup(); found {
			st := e.state(now)
			if reuse(&s.reqCC, s.pragma, &st) == useFresh {
				s.serve(&e, st.age, false, "detail=coalesced")
				continue
			}
		}
		if !now.Before(s.deadline) || !p.leases.held(s.leaseHash, now) {
			s.p.m.misses.Increment(1)
			if err := proxywasm.ResumeHttpRequest(); err != nil {
				proxywasm.LogWarnf("resuming a coalesced request: %v", err)
			}
			continue
		}
		keep = append(keep, s)
	}
	clear(p.waiting[len(keep):])
	p.waiting = keep
	proxywasm.SetEffectiveContext(p.id) //nolint:errcheck // back to the root context; it exists
}

// schedule sets the tick period: 1 ms while background revalidations wait
// to be sent, 10 ms while requests wait on others, off otherwise.
func (p *plugin) schedule() {
	var ms uint32
	switch {
	case len(p.queued) > 0:
		ms = 1
	case len(p.waiting) > 0:
		ms = 10
	}
	if ms == p.tickMs {
		return
	}
	if err := proxywasm.SetTickPeriodMilliSeconds(ms); err == nil {
		p.tickMs = ms
	}
}
