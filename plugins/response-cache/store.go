package main

// Storage in proxy-wasm shared data, so that every worker VM serves the
// same entries.
//
// Shared data in ABI 0.2 cannot delete a key: setting an empty value is the
// only way to free its memory, and the key itself stays. A key per cached
// URL would therefore grow without bound under a client that asks for many
// distinct URLs. The layout is fixed instead:
//
//	response-cache/<ns>/slot/<i>   i in [0, max_entries): one entry each,
//	                               8-byte key hash + encoded entry, or empty
//	response-cache/<ns>/index      per slot: key hash, URI hash, size, stale-at,
//	                               a Bloom filter of tags and path prefixes
//
// A key hashes to two candidate slots; a lookup reads both and compares the
// full key stored in the entry. A store takes the slot already holding its
// key, else a free candidate, else the candidate that goes stale first. The
// index holds every slot's size, so a store also evicts, soonest-stale first
// (expired entries before fresh ones), until the total fits max_total_bytes.
// The index is updated by compare-and-swap with a bounded number of retries;
// the slots are written after it.
//
// Memory bound: max_total_bytes of values, plus max_entries slot keys and a
// 32-byte index record per slot, whatever clients ask for.

import (
	"encoding/binary"
	"errors"
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
	indexHeader = 8  // magic, version, 2 spare, slot count u32
	indexRecord = 32 // key hash u64, uri hash u64, size u32, stale-at u32, purge bloom u64
	indexMagic  = 0xC6
	slotPrefix  = 8 // key hash before the entry
	// casRetries bounds the index update loop; past it the store (or the
	// invalidation) gives up, counted by the conflicts metric.
	casRetries = 8
)

type store struct {
	sd       shared
	indexKey string
	slotKeys []string
	maxTotal int64
	indexBuf []byte
}

var errConflict = errors.New("shared data kept changing")

func newStore(sd shared, namespace string, slots int, maxTotal int64) *store {
	s := &store{sd: sd, indexKey: "response-cache/" + namespace + "/index", maxTotal: maxTotal}
	s.slotKeys = make([]string, slots)
	for i := range s.slotKeys {
		s.slotKeys[i] = "response-cache/" + namespace + "/slot/" + strconv.Itoa(i)
	}
	// Make the index now, when the plugin starts, before the proxy takes
	// traffic. Envoy writes an absent key whatever CAS it carries, so two
	// workers making the index with their first stores would both succeed,
	// one entry would vanish from it and the bytes gauge would count it
	// still. VMs starting together all write the same empty index, which
	// is harmless; a VM started later finds it and writes nothing.
	if _, _, ok := sd.get(s.indexKey); !ok {
		x, _ := s.loadIndex()
		sd.set(s.indexKey, x, 0) //nolint:errcheck // a store then makes it, unconditionally, as before
	}
	return s
}

func (s *store) candidates(h uint64) (int, int) {
	n := uint64(len(s.slotKeys))
	a := h % n
	b := (h >> 32) % n
	if a == b {
		b = (a + 1) % n
	}
	return int(a), int(b)
}

// lookup returns the entry stored under key, if any, with the slot it is in.
func (s *store) lookup(key []byte) (entry, int, bool) {
	h := hash64(key)
	a, b := s.candidates(h)
	for _, i := range [2]int{a, b} {
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

// index is a decoded view over the index value.
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

// loadIndex reads the index into the store's buffer; a missing or foreign
// one (another slot count after a configuration change) starts empty.
func (s *store) loadIndex() (index, uint32) {
	n := indexHeader + indexRecord*len(s.slotKeys)
	v, cas, ok := s.sd.get(s.indexKey)
	if cap(s.indexBuf) < n {
		s.indexBuf = make([]byte, n)
	}
	x := index(s.indexBuf[:n])
	if ok && len(v) == n && v[0] == indexMagic && int(binary.LittleEndian.Uint32(v[4:])) == len(s.slotKeys) {
		copy(x, v)
		return x, cas
	}
	clear(x)
	x[0], x[1] = indexMagic, 1
	binary.LittleEndian.PutUint32(x[4:], uint32(len(s.slotKeys)))
	if !ok {
		cas = 0
	}
	return x, cas
}

// storeResult reports what a put did, for metrics.
type storeResult struct {
	evicted    int
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
	if int64(size) > s.maxTotal {
		return storeResult{}, errors.New("entry larger than max_total_bytes")
	}
	a, b := s.candidates(h)
	var victims []victim
	var res storeResult
	slot := -1
	committed := false
	for attempt := 0; attempt < casRetries && !committed; attempt++ {
		x, cas := s.loadIndex()
		before := x.total()
		victims = victims[:0]
		switch {
		case x.keyHash(a) == h:
			slot = a
		case x.keyHash(b) == h:
			slot = b
		case x.keyHash(a) == 0:
			slot = a
		case x.keyHash(b) == 0:
			slot = b
		case x.staleAt(a) <= x.staleAt(b):
			slot = a
			victims = append(victims, victim{a, x.keyHash(a)})
		default:
			slot = b
			victims = append(victims, victim{b, x.keyHash(b)})
		}
		x.put(slot, h, uriHash, size, staleAt, purgeBloom(e))
		total := x.total()
		for total > s.maxTotal {
			v := -1
			for i := 0; i < x.slots(); i++ {
				if i != slot && x.keyHash(i) != 0 && (v < 0 || x.staleAt(i) < x.staleAt(v)) {
					v = i
				}
			}
			if v < 0 {
				break
			}
			total -= x.size(v)
			victims = append(victims, victim{v, x.keyHash(v)})
			x.free(v)
		}
		err := s.sd.set(s.indexKey, x, cas)
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
// all identities, all queries of one URI) and reports how many it dropped.
func (s *store) invalidate(uriHash uint64) (n int, freed int64, err error) {
	return s.drop(func(x index, i int) bool { return x.uriHash(i) == uriHash })
}

// drop frees the slots the predicate selects, in the index first.
func (s *store) drop(match func(x index, i int) bool) (int, int64, error) {
	var victims []victim
	for attempt := 0; attempt < casRetries; attempt++ {
		x, cas := s.loadIndex()
		victims = victims[:0]
		var freed int64
		for i := 0; i < x.slots(); i++ {
			if x.keyHash(i) != 0 && match(x, i) {
				victims = append(victims, victim{i, x.keyHash(i)})
				freed += x.size(i)
				x.free(i)
			}
		}
		if len(victims) == 0 {
			return 0, 0, nil
		}
		err := s.sd.set(s.indexKey, x, cas)
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
// purge bloom has every bit of want: only those are read from shared data.
func (s *store) dropEntries(want uint64, match func(e *entry) bool) (int, int64, error) {
	x, _ := s.loadIndex()
	chosen := map[int]uint64{}
	for i := 0; i < x.slots(); i++ {
		if x.keyHash(i) == 0 || x.bloom(i)&want != want {
			continue
		}
		v, _, ok := s.sd.get(s.slotKeys[i])
		if !ok || len(v) < slotPrefix || binary.LittleEndian.Uint64(v) != x.keyHash(i) {
			continue
		}
		if e, err := decodeEntry(v[slotPrefix:]); err == nil && match(&e) {
			chosen[i] = x.keyHash(i)
		}
	}
	if len(chosen) == 0 {
		return 0, 0, nil
	}
	return s.drop(func(x index, i int) bool {
		h, ok := chosen[i]
		return ok && x.keyHash(i) == h
	})
}

// usedBytes is the total the index counts.
func (s *store) usedBytes() int64 {
	x, _ := s.loadIndex()
	return x.total()
}
