package main

import (
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"
)

// fakeShared is shared data with Envoy's rules: one global CAS counter, cas
// 0 or an absent key writes unconditionally. conflicts makes the next n
// conditional writes fail as if another worker had written first.
type fakeShared struct {
	mu        sync.Mutex
	data      map[string][]byte
	cas       map[string]uint32
	next      uint32
	conflicts int
	writes    int
}

func newFakeShared() *fakeShared {
	return &fakeShared{data: map[string][]byte{}, cas: map[string]uint32{}}
}

func (f *fakeShared) sharedGet(key string) ([]byte, uint32, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.data[key]
	return append([]byte(nil), v...), f.cas[key], ok
}

func (f *fakeShared) sharedSet(key string, value []byte, cas uint32) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, exists := f.data[key]
	if exists && cas != 0 {
		if f.conflicts > 0 {
			f.conflicts--
			return true, nil
		}
		if f.cas[key] != cas {
			return true, nil
		}
	}
	f.next++
	f.data[key] = append([]byte(nil), value...)
	f.cas[key] = f.next
	f.writes++
	return false, nil
}

func TestStoreSharesOneBreaker(t *testing.T) {
	host := newFakeShared()
	p := testPolicy(nil)
	// Two VMs, each with its own store over one shared data.
	vms := []*store{newStore(host, "ns", 1), newStore(host, "ns", 1)}
	scope := []byte("backend")
	for i := range 5 {
		st := vms[i%2]
		b, err := st.breaker(0, "0", scope, true)
		if err != nil {
			t.Fatal(err)
		}
		var r record
		if err := st.update(b, &r, func(r *record) bool {
			changed, _ := observe(r, p, ticket{epoch: r.epoch}, failure, t0, "test")
			return changed
		}); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := vms[1].breaker(0, "0", scope, false)
	var r record
	vms[1].read(b, &r)
	if r.state != open {
		t.Fatalf("after 5 failures over two VMs: state %s, want open", r.state)
	}
	if _, _, ok := host.sharedGet("circuit-breaker/ns/b/0/backend"); !ok {
		t.Fatalf("no record under circuit-breaker/ns/b/0/backend: %v", host.data)
	}
}

func TestStoreCASRetriesThenGivesUp(t *testing.T) {
	host := newFakeShared()
	st := newStore(host, "ns", 1)
	b, _ := st.breaker(0, "0", []byte("x"), true)
	inc := func(r *record) bool { r.consecutive++; return true }
	var r record
	if err := st.update(b, &r, inc); err != nil { // creates the key
		t.Fatal(err)
	}
	host.conflicts = casAttempts - 1
	if err := st.update(b, &r, inc); err != nil {
		t.Fatalf("update with %d conflicts: %v", casAttempts-1, err)
	}
	st.read(b, &r)
	if r.consecutive != 2 {
		t.Fatalf("consecutive = %d, want 2 (each attempt starts again from the stored record)", r.consecutive)
	}
	host.conflicts = casAttempts
	if err := st.update(b, &r, inc); !errors.Is(err, errCASExhausted) {
		t.Fatalf("update with %d conflicts: %v, want errCASExhausted", casAttempts, err)
	}
	st.read(b, &r)
	if r.consecutive != 2 {
		t.Fatalf("after giving up, consecutive = %d, want 2 (nothing written)", r.consecutive)
	}
}

func TestStoreNoWriteWhenUnchanged(t *testing.T) {
	host := newFakeShared()
	st := newStore(host, "ns", 1)
	p := testPolicy(nil)
	b, _ := st.breaker(0, "0", []byte("x"), true)
	var r record
	ok := func(r *record) bool { c, _ := observe(r, p, ticket{}, success, t0, ""); return c }
	st.update(b, &r, ok)
	before := host.writes
	for range 10 {
		st.update(b, &r, ok)
	}
	if host.writes != before {
		t.Fatalf("10 successes on a clean closed breaker wrote %d times, want 0", host.writes-before)
	}
}

func TestStoreKeyBound(t *testing.T) {
	host := newFakeShared()
	a, other := newStore(host, "ns", 1), newStore(host, "ns", 1)
	for i := range maxKeys {
		b, err := a.breaker(0, "0", []byte("h"+strconv.Itoa(i)), true)
		if err != nil || b.untracked {
			t.Fatalf("breaker %d: %+v, %v", i, b, err)
		}
		var r record
		a.update(b, &r, func(r *record) bool { r.consecutive = 1; return true })
	}
	// Past the bound, new scope keys get no breaker, on any VM.
	for _, st := range []*store{a, other} {
		b, err := st.breaker(0, "0", []byte("one-too-many"), true)
		if err != nil || !b.untracked {
			t.Fatalf("breaker past the bound: %+v, %v; want untracked", b, err)
		}
	}
	// Existing ones still work on the other VM.
	if b, _ := other.breaker(0, "0", []byte("h7"), true); b == nil || b.untracked {
		t.Fatalf("existing breaker on another VM: %+v", b)
	}
	if n := len(host.data); n != maxKeys+2 {
		t.Fatalf("%d shared-data keys, want %d breakers + the counter + the lock", n, maxKeys)
	}
}

func TestBreakerLookupDoesNotAllocate(t *testing.T) {
	st := newStore(newFakeShared(), "ns", 1)
	scope := []byte("backend")
	st.breaker(0, "0", scope, true)
	if n := testing.AllocsPerRun(100, func() { st.breaker(0, "0", scope, false) }); n != 0 {
		t.Fatalf("looking up a known breaker: %v allocs, want 0", n)
	}
}

// TestStoreCreatesEachRecordOnce: workers that find a breaker missing at
// the same moment must not each write their first change (Envoy writes an
// absent key whatever its CAS): of 8 workers admitting at once into a
// bulkhead of 3 on a new breaker, exactly 3 get in, every time.
func TestStoreCreatesEachRecordOnce(t *testing.T) {
	host := newFakeShared()
	const workers, limit, rounds = 8, 3, 200
	stores := make([]*store, workers)
	for i := range stores {
		stores[i] = newStore(host, "ns", 1)
	}
	for round := range rounds {
		scope := []byte("backend-" + strconv.Itoa(round))
		var admitted sync.WaitGroup
		var mu sync.Mutex
		in := 0
		start := make(chan struct{})
		for _, st := range stores {
			admitted.Add(1)
			go func() {
				defer admitted.Done()
				<-start
				b, err := st.breaker(0, "0", scope, true)
				if err != nil {
					t.Error(err)
					return
				}
				got := false
				var r record
				if err := st.update(b, &r, func(r *record) bool {
					got = r.inFlight < limit
					if got {
						r.inFlight++
					}
					return got
				}); err != nil {
					t.Error(err)
					return
				}
				if got {
					mu.Lock()
					in++
					mu.Unlock()
				}
			}()
		}
		close(start)
		admitted.Wait()
		if in != limit {
			t.Fatalf("round %d: %d of %d workers admitted into a bulkhead of %d", round, in, workers, limit)
		}
	}
}

// TestStoreWaitsForCreationLockInTime: a creation lock held by another
// worker is waited for by host time (lockPatience), not by a count of
// re-reads, which a merely preempted holder outlasts.
func TestStoreWaitsForCreationLockInTime(t *testing.T) {
	for _, tc := range []struct {
		name      string
		releaseAt time.Duration // host time at which the holder frees the lock; 0: never
		want      error
	}{
		{"holder finishes within the patience", lockPatience - time.Millisecond, nil},
		{"holder stalls past the patience", 0, errLockBusy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host := newFakeShared()
			st := newStore(host, "ns", 1)
			var clock time.Duration
			reads := 0
			st.now = func() int64 {
				reads++
				clock += 100 * time.Microsecond // each re-read takes host time
				if tc.releaseAt > 0 && clock >= tc.releaseAt {
					host.sharedSet(st.lockKey(), lockValue(0), 0) //nolint:errcheck
				}
				return int64(clock)
			}
			host.sharedSet(st.lockKey(), lockValue(int64(time.Hour)), 0) //nolint:errcheck // held by a stalled worker
			b, err := st.breaker(0, "0", []byte("backend"), true)
			if err != nil {
				t.Fatal(err)
			}
			var r record
			err = st.update(b, &r, func(r *record) bool { r.inFlight++; return true })
			if err != tc.want {
				t.Fatalf("update = %v, want %v", err, tc.want)
			}
			if reads < 256 {
				t.Fatalf("gave up after %d re-reads (%v of host time); want it to wait by time", reads, clock)
			}
			if clock > lockPatience+time.Millisecond {
				t.Fatalf("waited %v of host time, want at most %v", clock, lockPatience)
			}
		})
	}
}
