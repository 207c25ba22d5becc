package main

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeShared is shared data with Envoy's CAS rules (cpp-host
// shared_data.cc): one global CAS counter, cas 0 writes unconditionally,
// a new key ignores the CAS.
type fakeShared struct {
	mu   sync.Mutex
	data map[string]fakeEntry
	next uint32
	// beforeSet, when set, runs before each set (to interleave writers).
	beforeSet func(key string)
}

type fakeEntry struct {
	val []byte
	cas uint32
}

func newFakeShared() *fakeShared { return &fakeShared{data: map[string]fakeEntry{}} }

func (f *fakeShared) get(key string) ([]byte, uint32, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.data[key]
	return append([]byte(nil), e.val...), e.cas, ok
}

func (f *fakeShared) set(key string, val []byte, cas uint32) (bool, error) {
	if f.beforeSet != nil {
		f.beforeSet(key)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if e, ok := f.data[key]; ok && cas != 0 && cas != e.cas {
		return true, nil
	}
	f.next++
	if f.next == 0 {
		f.next = 1
	}
	// A host copies the key out of guest memory; so must the fake (the
	// store reuses its key buffers).
	f.data[strings.Clone(key)] = fakeEntry{append([]byte(nil), val...), f.next}
	return false, nil
}

func (f *fakeShared) bytes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for k, e := range f.data {
		n += len(k) + len(e.val)
	}
	return n
}

func TestStoreTakesPerKey(t *testing.T) {
	sh := newFakeShared()
	st := newStore(sh, "ns", 1000, nil)
	ls := []limit{mustLimit(t, 2, 1, time.Second)}
	now := int64(time.Hour)
	for _, key := range []string{"a", "b"} {
		for i := 0; i < 2; i++ {
			if v, ok := st.take([]byte(key), ls, now); !ok || !v.allowed {
				t.Fatalf("take(%s) #%d = %+v, %v; want allowed", key, i, v, ok)
			}
		}
		if v, ok := st.take([]byte(key), ls, now); !ok || v.allowed {
			t.Fatalf("take(%s) #3 = %+v, %v; want denied", key, v, ok)
		}
	}
	// A long key is stored as a hash prefix, and still its own.
	long := []byte(fmt.Sprintf("%0100d", 7))
	if v, _ := st.take(long, ls, now); !v.allowed {
		t.Fatal("long key denied on its first request")
	}
}

// TestStoreCollisionsNeverShare: with one slot pair for many keys, keys
// evict each other but never draw from another key's bucket.
func TestStoreCollisionsNeverShare(t *testing.T) {
	sh := newFakeShared()
	evicted := 0
	st := newStore(sh, "ns", 2, func(e storeEvent, _ error) {
		if e == evEvicted {
			evicted++
		}
	})
	ls := []limit{mustLimit(t, 1, 1, time.Hour)}
	for i := 0; i < 10; i++ {
		if v, ok := st.take([]byte("k"+strconv.Itoa(i)), ls, 0); !ok || !v.allowed {
			t.Fatalf("k%d's first request = %+v, %v; want allowed (a fresh key never shares a drained bucket)", i, v, ok)
		}
	}
	if evicted != 8 {
		t.Errorf("evictions = %d, want 8 (two slots, ten drained keys)", evicted)
	}
	if n := len(sh.data); n > 2+lockStripes {
		t.Errorf("shared data holds %d entries, want at most 2 slots + locks", n)
	}
}

// TestStorePrefersIdleSlots: a new key takes the slot whose bucket has
// refilled, not the one still draining.
func TestStorePrefersIdleSlots(t *testing.T) {
	sh := newFakeShared()
	evicted := 0
	st := newStore(sh, "ns", 2, func(e storeEvent, _ error) {
		if e == evEvicted {
			evicted++
		}
	})
	slow := []limit{mustLimit(t, 5, 1, time.Hour)}
	fast := []limit{mustLimit(t, 5, 5, time.Second)}
	st.take([]byte("slow"), slow, 0)
	st.take([]byte("fast"), fast, 0)
	// Two seconds on, "fast" is full again and "slow" is not.
	if v, _ := st.take([]byte("new"), fast, int64(2*time.Second)); !v.allowed {
		t.Fatal("new key denied")
	}
	if evicted != 0 {
		t.Errorf("evictions = %d, want 0: the idle slot should have been taken", evicted)
	}
	if v, _ := st.take([]byte("slow"), slow, int64(2*time.Second)); v.remaining != 3 {
		t.Errorf("slow key after the newcomer: remaining %d, want 3 (its state kept)", v.remaining)
	}
}

func TestStoreConfigChangeResetsBuckets(t *testing.T) {
	sh := newFakeShared()
	st := newStore(sh, "ns", 10, nil)
	one := []limit{mustLimit(t, 1, 1, time.Hour)}
	two := []limit{mustLimit(t, 1, 1, time.Hour), mustLimit(t, 3, 1, time.Hour)}
	st.take([]byte("k"), one, 0)
	if v, _ := st.take([]byte("k"), two, 0); !v.allowed {
		t.Fatalf("after the limits changed shape: %+v, want a fresh bucket", v)
	}
}

// TestStoreParallelBound: goroutines on one key through Envoy-like shared
// data never admit more than max_tokens + rate × elapsed.
func TestStoreParallelBound(t *testing.T) {
	sh := newFakeShared()
	ls := []limit{mustLimit(t, 10, 100, time.Second)} // 10 burst, 100/s
	var mu sync.Mutex
	var admitted []int64
	var wg sync.WaitGroup
	clock := func(i int) int64 { return int64(i) * int64(time.Millisecond) / 4 }
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := newStore(sh, "ns", 100, nil)
			for i := 0; i < 4000; i++ {
				now := clock(i)
				if v, ok := st.take([]byte("hot"), ls, now); ok && v.allowed {
					mu.Lock()
					admitted = append(admitted, now)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	checkBound(t, admitted, 10, 100, time.Second)
}

// checkBound checks that for every window [t0, t1] spanned by admissions
// the count is at most max + rate × (t1 − t0).
func checkBound(t testing.TB, times []int64, max, perFill int64, every time.Duration) {
	t.Helper()
	sortInt64(times)
	for i := range times {
		for j := i; j < len(times); j++ {
			allowed := max + (times[j]-times[i])*perFill/int64(every)
			if int64(j-i+1) > allowed {
				t.Fatalf("%d admissions in [%v, %v], bound %d", j-i+1, time.Duration(times[i]), time.Duration(times[j]), allowed)
			}
		}
	}
	if len(times) == 0 {
		t.Fatal("nothing admitted")
	}
}

func sortInt64(a []int64) {
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && a[j] < a[j-1]; j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
}

// TestStoreCreateRace: two workers creating the same slot at once both
// see the other; no take is lost to Envoy ignoring the CAS on new keys.
func TestStoreCreateRace(t *testing.T) {
	sh := newFakeShared()
	ls := []limit{mustLimit(t, 1, 1, time.Hour)}
	a := newStore(sh, "ns", 10, nil)
	b := newStore(sh, "ns", 10, nil)
	// b's whole take runs after a found the slot missing and just before
	// a takes the creation lock.
	fired := false
	sh.beforeSet = func(key string) {
		if fired || key[len("rate-limit/ns/")] != 'l' {
			return
		}
		if _, _, exists := sh.get(key); !exists {
			return // the lock's own creation
		}
		fired = true
		if v, ok := b.take([]byte("k"), ls, 0); !ok || !v.allowed {
			t.Errorf("b's take = %+v, %v; want allowed (first)", v, ok)
		}
	}
	v, ok := a.take([]byte("k"), ls, 0)
	if !ok || v.allowed {
		t.Fatalf("a's take after b took the only token = %+v, %v; want denied", v, ok)
	}
}

// TestStoreMemoryBound: a million distinct keys fill at most max_keys
// slots; the bytes per slot are the figure README.md quotes.
func TestStoreMemoryBound(t *testing.T) {
	const maxKeys, n = 100000, 1000000
	sh := &mapShared{data: map[string]*fakeEntry{}} // one writer: no lock needed
	st := newStore(sh, "rl", maxKeys, nil)
	ls := []limit{mustLimit(t, 10, 1, time.Second)}
	key := make([]byte, 0, 32)
	for i := 0; i < n; i++ {
		key = append(key[:0], "0\x1f2\x1f10."...)
		key = strconv.AppendInt(key, int64(i>>16&255), 10)
		key = append(key, '.')
		key = strconv.AppendInt(key, int64(i>>8&255), 10)
		key = append(key, '.')
		key = strconv.AppendInt(key, int64(i&255), 10)
		st.take(key, ls, int64(i)*int64(time.Microsecond))
	}
	slots := 0
	for k := range sh.data {
		if k[len("rate-limit/rl/")] == 's' {
			slots++
		}
	}
	b := 0
	for k, e := range sh.data {
		b += len(k) + len(e.val)
	}
	t.Logf("%d keys, max_keys %d: %d slots, %d shared-data bytes (%.1f per slot)", n, maxKeys, slots, b, float64(b)/float64(slots))
	if slots > maxKeys {
		t.Fatalf("%d slots, want at most max_keys %d", slots, maxKeys)
	}
	// An IPv4 key with one limit: name ≤ 21 bytes, value 11 + key + 16.
	if limit := maxKeys*(21+11+16+16) + lockStripes*32; b > limit {
		t.Fatalf("%d bytes after %d keys, want at most %d", b, n, limit)
	}
}

// TestStoreWaitsForStripeLockInTime: a stripe lock held by another worker
// is waited for by host time (lockPatience), not by a count of re-reads,
// which a merely preempted holder outlasts; past it the request is denied,
// never admitted unchecked.
func TestStoreWaitsForStripeLockInTime(t *testing.T) {
	for _, tc := range []struct {
		name      string
		releaseAt time.Duration // host time at which the holder frees the lock; 0: never
		wantOK    bool
	}{
		{"holder finishes within the patience", lockPatience - time.Millisecond, true},
		{"holder stalls past the patience", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sh := newFakeShared()
			exhausted := 0
			st := newStore(sh, "ns", 10, func(e storeEvent, _ error) {
				if e == evExhausted {
					exhausted++
				}
			})
			ls := []limit{mustLimit(t, 1, 1, time.Hour)}
			for i := uint64(0); i < lockStripes && i < st.maxKeys; i++ { // every stripe held by a stalled worker
				sh.set(st.lockKey(i), lockValue(int64(time.Hour)), 0) //nolint:errcheck
			}
			var clock time.Duration
			reads := 0
			st.clock = func() int64 {
				reads++
				clock += 100 * time.Microsecond // each re-read takes host time
				if tc.releaseAt > 0 && clock >= tc.releaseAt {
					for i := uint64(0); i < lockStripes && i < st.maxKeys; i++ {
						sh.set(st.lockKey(i), lockValue(0), 0) //nolint:errcheck
					}
				}
				return int64(clock)
			}
			v, ok := st.take([]byte("k"), ls, 0)
			if ok != tc.wantOK || (ok && !v.allowed) || (!ok && exhausted != 1) {
				t.Fatalf("take = %+v, %v (exhausted %d); want ok %v and allowed when ok", v, ok, exhausted, tc.wantOK)
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
