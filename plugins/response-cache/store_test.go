package main

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
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
	s := newStore(sd, "ns", 16, 1<<20, 1<<10)
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
	s := newStore(sd, "ns", slots, maxTotal, 1<<10)
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
	for _, k := range s.indexKeys {
		fixed += len(k) + indexHeader
	}
	fixed += slots * indexRecord
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
	s := newStore(sd, "ns", 64, 3000, 1500)
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
	s := newStore(sd, "ns", 16, 1<<20, 1<<10)
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
	s := newStore(sd, "ns", 4, 1<<20, 1<<10)
	for _, k := range s.slotKeys {
		sd.set(k, []byte("garbage that is long enough"), 0)
	}
	for _, k := range s.indexKeys {
		sd.set(k, []byte{1, 2, 3}, 0)
	}
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

func TestStoreShardCount(t *testing.T) {
	for _, c := range []struct {
		slots              int
		maxTotal, maxEntry int64
		want               int
	}{
		{4096, 64 << 20, 1 << 20, 16}, // the defaults: 256 slots and 4 MiB a shard
		{65536, 1 << 30, 1 << 20, 16},
		{4096, 16 << 20, 1 << 20, 8}, // 2 MiB a shard holds two largest bodies
		{4096, 1 << 20, 1 << 20, 1},  // max_total_bytes = max_entry_bytes: one index, as before sharding
		{4096, 3 << 20, 1 << 20, 1},
		{4096, 4 << 20, 1 << 20, 2},
		{4, 64 << 20, 1 << 20, 2}, // every shard keeps two candidate slots
		{3, 64 << 20, 1 << 20, 1},
		{2, 64 << 20, 1 << 20, 1},
		{512, 1 << 20, 64 << 10, 8},
	} {
		l := newLayout("ns", c.slots, c.maxTotal, c.maxEntry)
		if l.shards() != c.want {
			t.Errorf("slots %d, max_total %d, max_entry %d: %d shards, want %d", c.slots, c.maxTotal, c.maxEntry, l.shards(), c.want)
		}
		if l.budget*int64(l.shards()) > c.maxTotal || l.budget < 2*c.maxEntry && l.shards() > 1 {
			t.Errorf("slots %d, max_total %d, max_entry %d: budget %d a shard", c.slots, c.maxTotal, c.maxEntry, l.budget)
		}
		// Every slot is in exactly one shard, every shard has two or more.
		seen := make([]bool, c.slots)
		for j := 0; j < l.shards(); j++ {
			if l.shardSlots(j) < 2 {
				t.Errorf("slots %d: shard %d has %d slots", c.slots, j, l.shardSlots(j))
			}
			for k := 0; k < l.shardSlots(j); k++ {
				i := l.slot(j, k)
				if i >= c.slots || seen[i] {
					t.Fatalf("slots %d: shard %d local %d = slot %d, out of range or seen", c.slots, j, k, i)
				}
				seen[i] = true
			}
		}
		for i, ok := range seen {
			if !ok {
				t.Errorf("slots %d: slot %d in no shard", c.slots, i)
			}
		}
	}
}

// recordingShared counts the bytes each key moves through get and set.
type recordingShared struct {
	*mapShared
	moved map[string]int
}

func (r *recordingShared) get(key string) ([]byte, uint32, bool) {
	v, cas, ok := r.mapShared.get(key)
	r.moved[key] += len(v)
	return v, cas, ok
}

func (r *recordingShared) set(key string, value []byte, cas uint32) error {
	r.moved[key] += len(value)
	return r.mapShared.set(key, value, cas)
}

// TestStorePutTouchesOneShard: a store reads and writes one index shard
// (8 KiB with the default 4096 slots), not the whole index.
func TestStorePutTouchesOneShard(t *testing.T) {
	sd := &recordingShared{newMapShared(), map[string]int{}}
	s := newStore(sd, "ns", 4096, 64<<20, 1<<20)
	for i := 0; i < 100; i++ {
		clear(sd.moved)
		e := testEntry(fmt.Sprintf("k%d", i), 1024)
		if _, err := s.put(e.key, hash64(e.uri), &e, 100); err != nil {
			t.Fatal(err)
		}
		indexBytes, indexKeys := 0, 0
		for k, n := range sd.moved {
			if strings.Contains(k, "/index/") {
				indexBytes += n
				indexKeys++
			}
		}
		shard := indexHeader + 256*indexRecord
		if indexKeys != 1 || indexBytes != 2*shard {
			t.Fatalf("put %d moved %d bytes of %d index keys, want one shard (%d bytes) read and written", i, indexBytes, indexKeys, shard)
		}
	}
}

// TestStoreTooLargeForShard: an entry over its shard's budget is refused
// and changes nothing; one within it is stored.
func TestStoreTooLargeForShard(t *testing.T) {
	sd := newMapShared()
	s := newStore(sd, "ns", 64, 32<<10, 1<<10) // 16 shards of 2 KiB
	if s.shards() != 16 || s.budget != 2<<10 {
		t.Fatalf("%d shards of %d bytes, want 16 of 2048", s.shards(), s.budget)
	}
	small := testEntry("small", 1000)
	if _, err := s.put(small.key, 1, &small, 100); err != nil {
		t.Fatal(err)
	}
	big := testEntry("big", 2100)
	if _, err := s.put(big.key, 2, &big, 100); !errors.Is(err, errTooLarge) {
		t.Fatalf("put of a %d-byte body into a %d-byte shard = %v, want errTooLarge", len(big.body), s.budget, err)
	}
	if _, _, ok := s.lookup(big.key); ok {
		t.Errorf("the refused entry is found")
	}
	if _, _, ok := s.lookup(small.key); !ok {
		t.Errorf("the refused entry evicted another")
	}
	if used := s.usedBytes(); used <= 0 || used > s.budget {
		t.Errorf("usedBytes = %d", used)
	}
}

// TestStoreInvalidateAcrossShards: the variants of one URI hash to every
// shard; invalidation and purges find them all.
func TestStoreInvalidateAcrossShards(t *testing.T) {
	sd := newMapShared()
	s := newStore(sd, "ns", 4096, 64<<20, 1<<20)
	shards := map[int]bool{}
	for i := 0; i < 200; i++ {
		e := testEntry(fmt.Sprintf("http\nexample\n/a\nvariant=%d", i), 100)
		if _, err := s.put(e.key, 7, &e, 100); err != nil {
			t.Fatal(err)
		}
		j, _, _ := s.candidates(hash64(e.key))
		shards[j] = true
		e = testEntry(fmt.Sprintf("http\nexample\n/b/%d", i), 100)
		if _, err := s.put(e.key, 8, &e, 100); err != nil {
			t.Fatal(err)
		}
	}
	if len(shards) != s.shards() {
		t.Fatalf("200 variants in %d of %d shards", len(shards), s.shards())
	}
	// Two candidates a key: a few stores displace another entry.
	held := func(format string, want func(i int) bool) (n int) {
		for i := 0; i < 200; i++ {
			if _, _, ok := s.lookup([]byte(fmt.Sprintf(format, i))); ok && want(i) {
				n++
			}
		}
		return n
	}
	all := func(int) bool { return true }
	underB1 := func(i int) bool { return strings.HasPrefix(strconv.Itoa(i), "1") }
	variants, b1, b := held("http\nexample\n/a\nvariant=%d", all), held("http\nexample\n/b/%d", underB1), held("http\nexample\n/b/%d", all)
	if variants < 190 || b1 < 100 {
		t.Fatalf("%d of 200 variants and %d of 111 /b/1… held", variants, b1)
	}
	used := s.usedBytes()
	n, freed, err := s.invalidate(7)
	if n != variants || err != nil || freed <= 0 || s.usedBytes() != used-freed {
		t.Fatalf("invalidate = %d, %d, %v (used %d → %d), want %d entries", n, freed, err, used, s.usedBytes(), variants)
	}
	if left := held("http\nexample\n/a\nvariant=%d", all); left != 0 {
		t.Errorf("%d variants left after invalidate", left)
	}
	used = s.usedBytes()
	n, freed, err = s.dropEntries(0, func(e *entry) bool { return strings.HasPrefix(string(e.key), "http\nexample\n/b/1") })
	if n != b1 || err != nil || s.usedBytes() != used-freed {
		t.Fatalf("dropEntries = %d, %d, %v (used %d → %d), want %d", n, freed, err, used, s.usedBytes(), b1)
	}
	if left := held("http\nexample\n/b/%d", underB1); left != 0 {
		t.Errorf("%d entries under /b/1 left after dropEntries", left)
	}
	if left := held("http\nexample\n/b/%d", all); left != b-b1 {
		t.Errorf("%d other /b/ entries left, want %d", left, b-b1)
	}
}

// TestStoreFreesLayoutV1: the first layout's index and slots, left by an
// older build in the same process, are emptied at start (and what the old
// index counted is reported, for the gauge); without them only the index
// shards are written.
func TestStoreFreesLayoutV1(t *testing.T) {
	sd := newMapShared()
	old := make([]byte, indexHeader+3*indexRecord)
	old[0], old[1], old[4] = indexMagic, 1, 3
	old[indexHeader+16] = 12 // slot 0 counts 12 bytes
	sd.set("response-cache/ns/index", old, 0)
	for i := 0; i < 3; i++ {
		sd.set("response-cache/ns/slot/"+strconv.Itoa(i), []byte("an old entry"), 0)
	}
	if s := newStore(sd, "ns", 16, 1<<20, 1<<10); s.startFreed != 12 {
		t.Errorf("startFreed = %d, the old index counted 12", s.startFreed)
	}
	for k, v := range sd.m {
		if !strings.Contains(k, "/v2/") && len(v.v) > 0 {
			t.Errorf("%s still holds %d bytes", k, len(v.v))
		}
	}
	fresh := newMapShared()
	s := newStore(fresh, "ns", 16, 1<<20, 1<<10)
	for k := range fresh.m {
		if !strings.Contains(k, "/v2/index/") {
			t.Errorf("start wrote %s", k)
		}
	}
	if len(fresh.m) != s.shards() {
		t.Errorf("start made %d keys, want the %d index shards", len(fresh.m), s.shards())
	}
}

// TestStoreLayoutChange: a VM started with another layout (a shard count
// changed by max_total_bytes, or another max_entries) empties the slots
// and shards the old one left, so no entry sits where a lookup finds it
// but no shard counts it (a purge would miss it, the bound would not hold);
// it reports what the old shards counted, for the gauge. The same layout
// keeps its entries.
func TestStoreLayoutChange(t *testing.T) {
	for _, c := range []struct {
		name               string
		slots              int
		maxTotal, maxEntry int64
		keeps              bool
	}{
		{"same layout", 4096, 64 << 20, 1 << 20, true},
		{"fewer shards", 4096, 16 << 20, 1 << 20, false},
		{"one shard", 4096, 1 << 20, 1 << 20, false},
		{"other max_entries", 1024, 64 << 20, 1 << 20, false},
		{"more max_entries", 8192, 64 << 20, 1 << 20, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			sd := newMapShared()
			old := newStore(sd, "ns", 4096, 64<<20, 1<<20)
			for i := 0; i < 300; i++ {
				e := testEntry(fmt.Sprintf("k%d", i), 100)
				if _, err := old.put(e.key, uint64(i), &e, 100); err != nil {
					t.Fatal(err)
				}
			}
			counted := old.usedBytes()
			s := newStore(sd, "ns", c.slots, c.maxTotal, c.maxEntry)
			found := 0
			for i := 0; i < 300; i++ {
				if _, _, ok := s.lookup([]byte(fmt.Sprintf("k%d", i))); ok {
					found++
				}
			}
			var held int64
			for k, v := range sd.m {
				if strings.Contains(k, "/slot/") {
					held += int64(len(v.v))
				}
			}
			if c.keeps {
				if found < 290 || s.startFreed != 0 || s.usedBytes() != counted {
					t.Errorf("found %d of 300, startFreed %d, used %d of %d", found, s.startFreed, s.usedBytes(), counted)
				}
				return
			}
			if found != 0 || held != 0 || s.usedBytes() != 0 {
				t.Errorf("after the change: %d entries found, slots hold %d bytes, shards count %d", found, held, s.usedBytes())
			}
			if s.startFreed != counted {
				t.Errorf("startFreed = %d, the old shards counted %d", s.startFreed, counted)
			}
			for k, v := range sd.m {
				if strings.Contains(k, "/index/") && len(v.v) > 0 && !slices.Contains(s.indexKeys, k) {
					t.Errorf("old shard %s still holds %d bytes", k, len(v.v))
				}
			}
			// A VM of the new layout started later finds nothing to do.
			if again := newStore(sd, "ns", c.slots, c.maxTotal, c.maxEntry); again.startFreed != 0 {
				t.Errorf("second start freed %d", again.startFreed)
			}
		})
	}
}
