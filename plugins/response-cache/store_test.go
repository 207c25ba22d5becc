package main

import (
	"fmt"
	"testing"
)

// mapShared is shared data with Envoy's rules (cas 0 unconditional, a new
// key ignores cas, one global counter), for native tests.
type mapShared struct {
	m   map[string]mapValue
	cas uint32
	// conflictEvery makes every n-th conditional set fail, as another
	// worker's write would.
	conflictEvery, sets int
}

type mapValue struct {
	v   []byte
	cas uint32
}

func newMapShared() *mapShared { return &mapShared{m: map[string]mapValue{}} }

func (s *mapShared) get(key string) ([]byte, uint32, bool) {
	v, ok := s.m[key]
	return append([]byte(nil), v.v...), v.cas, ok
}

func (s *mapShared) set(key string, value []byte, cas uint32) error {
	cur, ok := s.m[key]
	s.sets++
	if ok && cas != 0 && (cas != cur.cas || (s.conflictEvery > 0 && s.sets%s.conflictEvery == 0)) {
		return errCASMismatch
	}
	s.cas++
	s.m[key] = mapValue{append([]byte(nil), value...), s.cas}
	return nil
}

func (s *mapShared) bytes() int {
	n := 0
	for k, v := range s.m {
		n += len(k) + len(v.v)
	}
	return n
}

func testEntry(key string, body int) entry {
	return entry{kind: kindEntry, key: []byte(key), uri: []byte(key), status: 200, lifetime: 60, staleIfError: -1, staleWhileRevalidate: -1, body: make([]byte, body)}
}

func TestStorePutLookup(t *testing.T) {
	sd := newMapShared()
	s := newStore(sd, "ns", 16, 1<<20)
	e := testEntry("a", 10)
	if _, err := s.put(e.key, hash64(e.uri), &e, 100); err != nil {
		t.Fatal(err)
	}
	got, _, ok := s.lookup([]byte("a"))
	if !ok || string(got.key) != "a" || len(got.body) != 10 {
		t.Fatalf("lookup(a) = %+v, %v", got, ok)
	}
	if _, _, ok := s.lookup([]byte("b")); ok {
		t.Errorf("lookup(b) found an entry")
	}
	// Replacing keeps one slot.
	e.body = make([]byte, 20)
	if _, err := s.put(e.key, hash64(e.uri), &e, 100); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := s.lookup([]byte("a")); len(got.body) != 20 {
		t.Errorf("after replace, body %d bytes, want 20", len(got.body))
	}
	if n, _, _ := s.invalidate(hash64([]byte("a"))); n != 1 {
		t.Errorf("invalidate = %d, want 1", n)
	}
	if _, _, ok := s.lookup([]byte("a")); ok {
		t.Errorf("lookup after invalidate found the entry")
	}
	if s.usedBytes() != 0 {
		t.Errorf("usedBytes after invalidate = %d", s.usedBytes())
	}
}

// TestStoreBounded stores far more than fits and checks that shared data
// stays within max_total_bytes plus the fixed cost of the layout.
func TestStoreBounded(t *testing.T) {
	const slots, maxTotal = 64, 32 << 10
	sd := newMapShared()
	s := newStore(sd, "ns", slots, maxTotal)
	evicted := 0
	for i := 0; i < 2000; i++ {
		e := testEntry(fmt.Sprintf("http\nexample\n/item/%d", i), 100+i%900)
		r, err := s.put(e.key, hash64(e.uri), &e, uint32(1000+i%50))
		if err != nil {
			t.Fatal(err)
		}
		evicted += r.evicted
		if r.totalBytes > maxTotal {
			t.Fatalf("put %d: total %d > %d", i, r.totalBytes, maxTotal)
		}
	}
	fixed := 0
	for _, k := range s.slotKeys {
		fixed += len(k)
	}
	fixed += len(s.indexKey) + indexHeader + slots*indexRecord
	if got := sd.bytes(); got > maxTotal+fixed {
		t.Errorf("shared data = %d bytes, want <= %d + %d", got, maxTotal, fixed)
	}
	var values int64
	for _, k := range s.slotKeys {
		v, _, _ := sd.get(k)
		values += int64(len(v))
	}
	if values != s.usedBytes() {
		t.Errorf("slot values = %d bytes, index counts %d", values, s.usedBytes())
	}
	if evicted == 0 {
		t.Errorf("no evictions after 2000 puts into %d slots", slots)
	}
}

func TestStoreEvictsSoonestStale(t *testing.T) {
	sd := newMapShared()
	s := newStore(sd, "ns", 64, 3000)
	put := func(key string, staleAt uint32) {
		e := testEntry(key, 900)
		if _, err := s.put(e.key, hash64(e.uri), &e, staleAt); err != nil {
			t.Fatal(err)
		}
	}
	put("long", 5000)
	put("short", 100)
	put("mid", 1000)
	put("new", 2000) // over budget: "short" goes
	for key, want := range map[string]bool{"long": true, "short": false, "mid": true, "new": true} {
		if _, _, ok := s.lookup([]byte(key)); ok != want {
			t.Errorf("lookup(%s) = %v, want %v", key, ok, want)
		}
	}
}

func TestStoreConflicts(t *testing.T) {
	sd := newMapShared()
	s := newStore(sd, "ns", 16, 1<<20)
	e := testEntry("a", 10)
	if _, err := s.put(e.key, 1, &e, 1); err != nil {
		t.Fatal(err)
	}
	sd.conflictEvery = 2 // every other conditional write loses a race
	e2 := testEntry("b", 10)
	if _, err := s.put(e2.key, 2, &e2, 1); err != nil {
		t.Fatalf("put with some conflicts: %v", err)
	}
	sd.conflictEvery = 1 // always loses
	e3 := testEntry("c", 10)
	if _, err := s.put(e3.key, 3, &e3, 1); err != errConflict {
		t.Fatalf("put always conflicting = %v, want errConflict", err)
	}
}

func TestStoreIgnoresGarbage(t *testing.T) {
	sd := newMapShared()
	s := newStore(sd, "ns", 4, 1<<20)
	for _, k := range s.slotKeys {
		sd.set(k, []byte("garbage that is long enough"), 0)
	}
	sd.set(s.indexKey, []byte{1, 2, 3}, 0)
	if _, _, ok := s.lookup([]byte("a")); ok {
		t.Errorf("lookup found an entry in garbage")
	}
	e := testEntry("a", 1)
	if _, err := s.put(e.key, 1, &e, 1); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := s.lookup([]byte("a")); !ok {
		t.Errorf("lookup after put over garbage: not found")
	}
}
