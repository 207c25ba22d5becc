package main

// Storage in proxy-wasm shared data, so that every worker VM serves the
// same entries.
//
// Shared data in ABI 0.2 cannot delete a key: setting an empty value is the
// only way to free its memory, and the key itself stays. A key per cached
// URL would therefore grow without bound under a client that asks for many
// distinct URLs. The layout is fixed instead (v2 names the layout version):
//
//	response-cache/<ns>/v2/slot/<i>    i in [0, max_entries): one entry each,
//	                                   8-byte key hash + encoded entry, or empty
//	response-cache/<ns>/v2/index/<j>   j in [0, shards): per slot of shard j
//	                                   (the slots i with i mod shards = j):
//	                                   key hash, URI hash, size, stale-at, a
//	                                   Bloom filter of tags and path prefixes
//
// The index is split into shards (a power of two, at most 16) so that a
// store copies one shard's records in and out of shared data (8 KiB with
// the default 4096 slots) instead of every slot's, and stores of keys in
// different shards do not contend on one compare-and-swap. A key's hash
// picks its shard and two candidate slots in it; a lookup reads both slots
// and compares the full key stored in the entry, so a hit reads no index.
// A store takes the slot already holding its key, else a free candidate,
// else the candidate that goes stale first, then evicts within the shard,
// soonest-stale first (expired entries before fresh ones), until the
// shard's total fits its budget, max_total_bytes / shards. The budgets add
// up to at most max_total_bytes, which stays a hard bound. Each shard is
// updated by compare-and-swap with a bounded number of retries; the slots
// are written after it. Invalidations and purges scan every shard.
//
// The shard count is the largest power of two up to 16 that leaves each
// shard at least 2 slots and a budget of at least 2 × max_entry_bytes, so
// a largest body fits its shard with room for another; with a small
// max_total_bytes the cache falls back to fewer shards, down to one. An
// encoded entry (key, headers, body) larger than its shard's budget is not
// stored (errTooLarge), as one larger than max_total_bytes was not before.
//
// Memory bound: max_total_bytes of values, plus max_entries slot keys,
// one key per shard and a 32-byte index record per slot, whatever clients
// ask for.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"strconv"
)

// shared is the part of the proxy-wasm shared-data API the store uses; the
// wiring passes the host's, tests a map.
type shared interface {
	get(key string) (value []byte, cas uint32, found bool)
	// set returns errCASMismatch when cas != 0 and the key changed.
	set(key string, value []byte, cas uint32) error
}

var errCASMismatch = errors.New("cas mismatch")

const (
	indexHeader = 8  // magic, version, log2 shards, spare, slot count u32
	indexRecord = 32 // key hash u64, uri hash u64, size u32, stale-at u32, purge bloom u64
	indexMagic  = 0xC6
	// layoutVersion is in every key name and index header: a VM running
	// another layout (during an upgrade) writes other keys.
	layoutVersion = 2
	maxShards     = 16
	slotPrefix    = 8 // key hash before the entry
	// casRetries bounds the index update loop; past it the store (or the
	// invalidation) gives up, counted by the conflicts metric.
	casRetries = 8
)

// layout is the fixed set of keys a configuration uses.
type layout struct {
	indexKeys []string // one per shard
	slotKeys  []string
	shardBits uint
	budget    int64 // per shard
}

func newLayout(namespace string, slots int, maxTotal, maxEntry int64) layout {
	shards := maxShards
	for shards > 1 && (slots/shards < 2 || maxTotal/int64(shards) < 2*maxEntry) {
		shards /= 2
	}
	prefix := "response-cache/" + namespace + "/v" + strconv.Itoa(layoutVersion) + "/"
	l := layout{shardBits: uint(bits.TrailingZeros(uint(shards))), budget: maxTotal / int64(shards)}
	l.indexKeys = make([]string, shards)
	for j := range l.indexKeys {
		l.indexKeys[j] = prefix + "index/" + strconv.Itoa(j)
	}
	l.slotKeys = make([]string, slots)
	for i := range l.slotKeys {
		l.slotKeys[i] = prefix + "slot/" + strconv.Itoa(i)
	}
	return l
}

func (l *layout) shards() int { return len(l.indexKeys) }

// shardSlots is how many slots shard j covers: i = local<<shardBits | j.
func (l *layout) shardSlots(j int) int {
	return (len(l.slotKeys) - j + l.shards() - 1) >> l.shardBits
}

func (l *layout) slot(j, local int) int { return local<<l.shardBits | j }

// candidates returns a key hash's shard and its two candidate slots there
// (local numbers). The hash is FNV, whose low bits are weak: mix first.
func (l *layout) candidates(h uint64) (shard, a, b int) {
	m := h
	m ^= m >> 33
	m *= 0xff51afd7ed558ccd
	m ^= m >> 33
	m *= 0xc4ceb9fe1a85ec53
	m ^= m >> 33
	shard = int(m & uint64(l.shards()-1))
	n := uint64(l.shardSlots(shard))
	a = int((m >> 8) % n)
	b = int((m >> 36) % n)
	if a == b {
		b = (a + 1) % int(n)
	}
	return shard, a, b
}

type store struct {
	layout
	sd       shared
	maxTotal int64
	indexBuf []byte
	// startFreed is what the index of another layout counted when this VM
	// replaced it at start, for the bytes gauge.
	startFreed int64
}

var (
	errConflict = errors.New("shared data kept changing")
	errTooLarge = errors.New("entry larger than its index shard's budget")
)

func newStore(sd shared, namespace string, slots int, maxTotal, maxEntry int64) *store {
	s := &store{layout: newLayout(namespace, slots, maxTotal, maxEntry), sd: sd, maxTotal: maxTotal}
	// Make the index shards now, when the plugin starts, before the proxy
	// takes traffic. Envoy writes an absent key whatever CAS it carries, so
	// two workers making a shard with their first stores would both
	// succeed, one entry would vanish from it and the bytes gauge would
	// count it still. VMs starting together all write the same empty
	// shards, which is harmless; a VM started later finds them and writes
	// nothing.
	//
	// Shards written with another layout (max_entries, or a shard count
	// changed by max_total_bytes / max_entry_bytes) are replaced, and every
	// slot is emptied first: an entry placed by the old layout may sit in a
	// slot a key still looks up, where no shard of this layout counts it, so
	// a purge would not find it and max_total_bytes would not bound it.
	oldSlots := 0
	for j, k := range s.indexKeys {
		v, _, ok := sd.get(k)
		switch {
		case !ok:
			x, _ := s.loadShard(j)
			sd.set(k, x, 0) //nolint:errcheck // a store then makes it, unconditionally, as before
		case !s.ours(j, v):
			oldSlots = max(oldSlots, foreignSlots(v))
		}
	}
	prefix := "response-cache/" + namespace + "/v" + strconv.Itoa(layoutVersion) + "/"
	for j := s.shards(); j < maxShards; j++ {
		if v, _, ok := sd.get(prefix + "index/" + strconv.Itoa(j)); ok && len(v) > 0 {
			oldSlots = max(oldSlots, foreignSlots(v))
			s.startFreed += index(v).total()
			sd.set(prefix+"index/"+strconv.Itoa(j), nil, 0) //nolint:errcheck // best effort: only memory
		}
	}
	if oldSlots > 0 {
		s.replaceForeign(prefix, oldSlots)
	}
	s.freeLayoutV1(namespace)
	return s
}

// ours reports whether v is shard j of this layout.
func (s *store) ours(j int, v []byte) bool {
	return len(v) == indexHeader+indexRecord*s.shardSlots(j) && v[0] == indexMagic && v[1] == layoutVersion &&
		uint(v[2]) == s.shardBits && int(binary.LittleEndian.Uint32(v[4:])) == len(s.slotKeys)
}

// foreignSlots is how many slots an index value of this version but
// another layout covered; anything unreadable counts as the most
// max_entries allows, so that every slot key that may exist is emptied.
func foreignSlots(v []byte) int {
	if len(v) >= indexHeader && v[0] == indexMagic && v[1] == layoutVersion {
		return int(binary.LittleEndian.Uint32(v[4:]))
	}
	return maxMaxEntries
}

// replaceForeign empties the slots [0, oldSlots) (and those of this
// layout), then writes empty shards over the foreign ones. VMs of the same
// configuration starting together do the same work; the one whose write of
// a shard lands counts what the old shard held as freed.
func (s *store) replaceForeign(prefix string, oldSlots int) {
	for i := 0; i < max(oldSlots, len(s.slotKeys)); i++ {
		k := prefix + "slot/" + strconv.Itoa(i)
		if v, _, ok := s.sd.get(k); ok && len(v) > 0 {
			s.sd.set(k, nil, 0) //nolint:errcheck // best effort: only memory
		}
	}
	for j, k := range s.indexKeys {
		v, cas, ok := s.sd.get(k)
		if !ok || s.ours(j, v) {
			continue
		}
		x, _ := s.loadShard(j) // empty: v is foreign
		if s.sd.set(k, x, cas) == nil && len(v) >= indexHeader && v[0] == indexMagic && v[1] == layoutVersion {
			s.startFreed += index(v).total()
		}
	}
}

// freeLayoutV1 empties the keys of the first layout (one index, unversioned
// slot keys) left by a VM of an older build in this process: nothing reads
// them any more, and shared data only gives memory back when a value is
// emptied. A VM of the older build still draining then misses and stores
// again; what it stores stays until the next start of a VM of this build.
func (s *store) freeLayoutV1(namespace string) {
	prefix := "response-cache/" + namespace + "/"
	v, cas, ok := s.sd.get(prefix + "index")
	if !ok || len(v) < indexHeader || v[0] != indexMagic || v[1] != 1 {
		return
	}
	if s.sd.set(prefix+"index", nil, cas) == nil {
		s.startFreed += index(v).total()
	}
	slots := int(binary.LittleEndian.Uint32(v[4:]))
	for i := 0; i < slots; i++ {
		if v, _, ok := s.sd.get(prefix + "slot/" + strconv.Itoa(i)); ok && len(v) > 0 {
			s.sd.set(prefix+"slot/"+strconv.Itoa(i), nil, 0) //nolint:errcheck // best effort
		}
	}
}

// lookup returns the entry stored under key, if any, with the slot it is in.
func (s *store) lookup(key []byte) (entry, int, bool) {
	h := hash64(key)
	j, a, b := s.candidates(h)
	for _, local := range [2]int{a, b} {
		i := s.slot(j, local)
		v, _, ok := s.sd.get(s.slotKeys[i])
		if !ok || len(v) < slotPrefix || binary.LittleEndian.Uint64(v) != h {
			continue
		}
		e, err := decodeEntry(v[slotPrefix:])
		if err != nil || string(e.key) != string(key) {
			continue
		}
		return e, i, true
	}
	return entry{}, -1, false
}

// index is a decoded view over one index shard; records are numbered by
// local slot.
type index []byte

func (x index) slots() int { return (len(x) - indexHeader) / indexRecord }
func (x index) rec(i int) []byte {
	o := indexHeader + i*indexRecord
	return x[o : o+indexRecord]
}
func (x index) keyHash(i int) uint64 { return binary.LittleEndian.Uint64(x.rec(i)) }
func (x index) uriHash(i int) uint64 { return binary.LittleEndian.Uint64(x.rec(i)[8:]) }
func (x index) size(i int) int64     { return int64(binary.LittleEndian.Uint32(x.rec(i)[16:])) }
func (x index) staleAt(i int) uint32 { return binary.LittleEndian.Uint32(x.rec(i)[20:]) }
func (x index) bloom(i int) uint64   { return binary.LittleEndian.Uint64(x.rec(i)[24:]) }
func (x index) put(i int, key, uri uint64, size int, staleAt uint32, bloom uint64) {
	r := x.rec(i)
	binary.LittleEndian.PutUint64(r, key)
	binary.LittleEndian.PutUint64(r[8:], uri)
	binary.LittleEndian.PutUint32(r[16:], uint32(size))
	binary.LittleEndian.PutUint32(r[20:], staleAt)
	binary.LittleEndian.PutUint64(r[24:], bloom)
}
func (x index) free(i int) { clear(x.rec(i)) }

func (x index) total() int64 {
	var t int64
	for i := 0; i < x.slots(); i++ {
		t += x.size(i)
	}
	return t
}

// loadShard reads index shard j into the store's buffer; a missing or
// foreign one (another layout, written by a VM of another configuration
// still running) starts empty.
func (s *store) loadShard(j int) (index, uint32) {
	n := indexHeader + indexRecord*s.shardSlots(j)
	v, cas, ok := s.sd.get(s.indexKeys[j])
	if cap(s.indexBuf) < n {
		s.indexBuf = make([]byte, n)
	}
	x := index(s.indexBuf[:n])
	if ok && s.ours(j, v) {
		copy(x, v)
		return x, cas
	}
	clear(x)
	x[0], x[1], x[2] = indexMagic, layoutVersion, byte(s.shardBits)
	binary.LittleEndian.PutUint32(x[4:], uint32(len(s.slotKeys)))
	if !ok {
		cas = 0
	}
	return x, cas
}

// storeResult reports what a put did, for metrics.
type storeResult struct {
	evicted int
	// totalBytes is the shard's total after the put.
	totalBytes int64
	// delta is how much the index's total changed, for the bytes gauge:
	// every VM adds its own changes, so the gauge is right in Envoy (one
	// process-wide gauge) and in hosts that sum per-VM gauges alike.
	delta int64
}

// put stores value (an encoded entry) under key. staleAt (Unix seconds)
// orders evictions.
func (s *store) put(key []byte, uriHash uint64, e *entry, staleAt uint32) (storeResult, error) {
	h := hash64(key)
	val := binary.LittleEndian.AppendUint64(make([]byte, 0, slotPrefix+64+len(e.body)), h)
	val = e.appendBinary(val)
	size := len(val)
	if int64(size) > s.budget {
		return storeResult{}, fmt.Errorf("%w: %d bytes > %d (max_total_bytes / %d shards)", errTooLarge, size, s.budget, s.shards())
	}
	j, a, b := s.candidates(h)
	var victims []victim
	var res storeResult
	local := -1
	committed := false
	for attempt := 0; attempt < casRetries && !committed; attempt++ {
		x, cas := s.loadShard(j)
		before := x.total()
		victims = victims[:0]
		switch {
		case x.keyHash(a) == h:
			local = a
		case x.keyHash(b) == h:
			local = b
		case x.keyHash(a) == 0:
			local = a
		case x.keyHash(b) == 0:
			local = b
		case x.staleAt(a) <= x.staleAt(b):
			local = a
			victims = append(victims, victim{s.slot(j, a), x.keyHash(a)})
		default:
			local = b
			victims = append(victims, victim{s.slot(j, b), x.keyHash(b)})
		}
		x.put(local, h, uriHash, size, staleAt, purgeBloom(e))
		total := x.total()
		for total > s.budget {
			v := -1
			for i := 0; i < x.slots(); i++ {
				if i != local && x.keyHash(i) != 0 && (v < 0 || x.staleAt(i) < x.staleAt(v)) {
					v = i
				}
			}
			if v < 0 {
				break
			}
			total -= x.size(v)
			victims = append(victims, victim{s.slot(j, v), x.keyHash(v)})
			x.free(v)
		}
		err := s.sd.set(s.indexKeys[j], x, cas)
		switch {
		case err == nil:
			committed = true
			res.totalBytes, res.delta = total, total-before
		case !errors.Is(err, errCASMismatch):
			return storeResult{}, err
		}
	}
	if !committed {
		return storeResult{}, errConflict
	}
	slot := s.slot(j, local)
	if err := s.sd.set(s.slotKeys[slot], val, 0); err != nil {
		return res, err
	}
	for _, v := range victims {
		if v.slot != slot {
			s.clearSlot(v)
		}
	}
	res.evicted = len(victims)
	return res, nil
}

// victim is a slot the index no longer counts, with the key hash it held.
type victim struct {
	slot int
	hash uint64
}

// clearSlot frees a slot's memory, unless another store has written a
// different entry into it since the index was updated.
func (s *store) clearSlot(v victim) {
	for attempt := 0; attempt < casRetries; attempt++ {
		cur, cas, ok := s.sd.get(s.slotKeys[v.slot])
		if !ok || len(cur) < slotPrefix || binary.LittleEndian.Uint64(cur) != v.hash {
			return
		}
		if err := s.sd.set(s.slotKeys[v.slot], nil, cas); !errors.Is(err, errCASMismatch) {
			return
		}
	}
}

// invalidate drops every entry whose URI hash is uriHash (all variants,
// all identities, all queries of one URI: they hash to any shard) and
// reports how many it dropped.
func (s *store) invalidate(uriHash uint64) (n int, freed int64, err error) {
	for j := range s.indexKeys {
		k, f, e := s.dropInShard(j, func(x index, i int) bool { return x.uriHash(i) == uriHash })
		n, freed = n+k, freed+f
		if e != nil {
			err = e
		}
	}
	return n, freed, err
}

// dropInShard frees the slots of shard j the predicate selects (given
// local slot numbers), in the index first.
func (s *store) dropInShard(j int, match func(x index, i int) bool) (int, int64, error) {
	var victims []victim
	for attempt := 0; attempt < casRetries; attempt++ {
		x, cas := s.loadShard(j)
		victims = victims[:0]
		var freed int64
		for i := 0; i < x.slots(); i++ {
			if x.keyHash(i) != 0 && match(x, i) {
				victims = append(victims, victim{s.slot(j, i), x.keyHash(i)})
				freed += x.size(i)
				x.free(i)
			}
		}
		if len(victims) == 0 {
			return 0, 0, nil
		}
		err := s.sd.set(s.indexKeys[j], x, cas)
		if err == nil {
			for _, v := range victims {
				s.clearSlot(v)
			}
			return len(victims), freed, nil
		}
		if !errors.Is(err, errCASMismatch) {
			return 0, 0, err
		}
	}
	return 0, 0, errConflict
}

// dropEntries drops the entries the predicate selects among the slots whose
// purge bloom has every bit of want, in every shard: only those are read
// from shared data. A shard that keeps conflicting is skipped and reported
// by the error; the others are still purged.
func (s *store) dropEntries(want uint64, match func(e *entry) bool) (n int, freed int64, err error) {
	chosen := map[int]uint64{} // local slot → key hash, per shard
	for j := range s.indexKeys {
		clear(chosen)
		x, _ := s.loadShard(j)
		for i := 0; i < x.slots(); i++ {
			if x.keyHash(i) == 0 || x.bloom(i)&want != want {
				continue
			}
			v, _, ok := s.sd.get(s.slotKeys[s.slot(j, i)])
			if !ok || len(v) < slotPrefix || binary.LittleEndian.Uint64(v) != x.keyHash(i) {
				continue
			}
			if e, err := decodeEntry(v[slotPrefix:]); err == nil && match(&e) {
				chosen[i] = x.keyHash(i)
			}
		}
		if len(chosen) == 0 {
			continue
		}
		k, f, e := s.dropInShard(j, func(x index, i int) bool {
			h, ok := chosen[i]
			return ok && x.keyHash(i) == h
		})
		n, freed = n+k, freed+f
		if e != nil {
			err = e
		}
	}
	return n, freed, err
}

// usedBytes is the total the index shards count.
func (s *store) usedBytes() int64 {
	var t int64
	for j := range s.indexKeys {
		x, _ := s.loadShard(j)
		t += x.total()
	}
	return t
}
