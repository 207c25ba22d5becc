package main

import (
	"crypto/sha256"
	"encoding/binary"
	"strconv"
	"time"
	"unsafe"
)

// Buckets live in proxy-wasm shared data, so that every worker VM of one
// Envoy draws from the same bucket for a key.
//
// Memory is bounded by slots: a key hashes to two of max_keys slots, each
// one shared-data entry `rate-limit/<ns>/s/<n>` holding one key's buckets
// and the key itself (verbatim when short, as a SHA-256 prefix otherwise),
// so that a collision is seen, never silently shared. A key not found in
// either slot takes the emptier one: an empty slot first, then one whose
// buckets have refilled completely (its owner, back, would start from a
// full bucket anyway, so nothing is lost), and only then the one holding
// the most tokens; that last case evicts a key whose bucket was partly
// drained (metric keys_evicted), which hands that key a full bucket when it
// returns. With max_keys above the number of keys active within one refill
// window evictions stay rare; see README.md, "Memory and fairness".
//
// ABI 0.2 has no way to delete shared data, so the entries, once written,
// stay; their number never exceeds max_keys (plus a few lock entries).

// sharedStore is the host's shared data, behind an interface so the slot
// logic runs natively in tests.
type sharedStore interface {
	get(key string) (value []byte, cas uint32, ok bool)
	// set writes with Envoy's rules: cas 0 writes unconditionally, an
	// existing key with another cas reports mismatch.
	set(key string, value []byte, cas uint32) (mismatch bool, err error)
}

const (
	// casRetries caps the compare-and-swap loop of one request. Running out
	// means at least this many other updates of the same slots landed
	// while this one tried: the key is flooded, and the request is denied
	// (metric cas_exhausted) rather than admitted unchecked, so the bound
	// on admissions holds.
	casRetries = 64
	// maxStoredKey is the longest key stored verbatim; longer ones are
	// stored as longKeyTag + the first 16 bytes of their SHA-256.
	maxStoredKey = 48
	longKeyTag   = 0xff
	slotVersion  = 1
	// lockStripes are the locks that make creating a slot atomic (shared
	// data has no create-if-absent); lockLease frees a lock whose holder
	// died mid-creation. lockPatience caps how long (host clock) one
	// request re-reads while its stripe's lock is held: a holder runs for
	// microseconds unless its thread is descheduled (more workers than
	// cores, a noisy neighbour), and then it runs again within a scheduler
	// time slice or a few, which a count of re-reads cannot wait out (a few
	// hundred pass in well under a millisecond). Past it the request is
	// denied like a flooded one, so that no request is ever admitted
	// unchecked.
	lockStripes  = 256
	lockLease    = time.Second
	lockPatience = 50 * time.Millisecond
)

// storeEvent is what the store reports for metrics and logs.
type storeEvent uint8

const (
	evCASRetry storeEvent = iota
	evEvicted
	evExhausted
	evError
)

// store takes tokens for keys.
type store struct {
	host    sharedStore
	prefix  string // "rate-limit/<ns>/"
	maxKeys uint64
	note    func(storeEvent, error)
	// clock is the host clock in Unix nanoseconds, read while a lock is
	// held by another worker (a request's own time stands still).
	clock func() int64

	// scratch buffers reused across requests (a VM runs one callback at a
	// time).
	slotName [2][]byte
	val      []byte
	stored   []byte
	buckets  []bucket
}

func newStore(host sharedStore, namespace string, maxKeys int, note func(storeEvent, error)) *store {
	if note == nil {
		note = func(storeEvent, error) {}
	}
	s := &store{host: host, prefix: "rate-limit/" + namespace + "/", maxKeys: uint64(maxKeys), note: note,
		clock: func() int64 { return time.Now().UnixNano() }}
	// Make the stripe locks now, when the plugin starts, before the proxy
	// takes traffic: made lazily, a worker that found a lock absent could
	// write it free just after another worker took it, and two creators
	// would hold one stripe. VMs starting together all write them free,
	// which is harmless; a VM started later finds them and writes nothing.
	for i := uint64(0); i < min(uint64(lockStripes), s.maxKeys); i++ {
		lock := s.lockKey(i)
		if _, _, ok := host.get(lock); !ok {
			host.set(lock, lockValue(0), 0) //nolint:errcheck // create makes it on first use if this failed
		}
	}
	return s
}

func (s *store) lockKey(slot uint64) string {
	return s.prefix + "l/" + strconv.FormatUint(slot%lockStripes, 10)
}

// slots are the two candidate slots of a key.
func (s *store) slots(key []byte) (uint64, uint64) {
	h := fnv64a(key)
	a := h % s.maxKeys
	b := (h >> 32) * 0x9E3779B97F4A7C15 % s.maxKeys
	if b == a && s.maxKeys > 1 {
		b = (a + 1) % s.maxKeys
	}
	return a, b
}

func fnv64a(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

// storedKey is the form of key kept in a slot.
func storedKey(dst, key []byte) []byte {
	if len(key) <= maxStoredKey {
		return append(dst, key...)
	}
	sum := sha256.Sum256(key)
	dst = append(dst, longKeyTag)
	return append(dst, sum[:16]...)
}

// take takes a token from each of key's buckets if each has one, and says
// what happened. ok is false when the store could not be used (a host
// error, or the CAS loop running out); v is then meaningless.
func (s *store) take(key []byte, ls []limit, now int64) (v verdict, ok bool) {
	s.stored = storedKey(s.stored[:0], key)
	a, b := s.slots(key)
	names := [2]string{s.name(0, a), s.name(1, b)}
	defer clear(names[:]) // they alias s.slotName
	conflicts := 0
	var waitUntil int64
	for conflicts < casRetries {
		var vals [2][]byte
		var cass [2]uint32
		var found [2]bool
		hit := -1
		for i := 0; i < 2 && hit < 0; i++ {
			vals[i], cass[i], found[i] = s.host.get(names[i])
			if found[i] && s.owns(vals[i]) {
				hit = i
			}
		}
		fresh := false
		evicted := false
		slot := hit
		if hit >= 0 {
			if !s.decode(vals[hit], ls) {
				fresh = true // written by a different configuration
			}
		} else {
			slot, evicted = s.victim(vals, found, now)
			fresh = true
		}
		if fresh {
			s.buckets = s.buckets[:0]
			for i := range ls {
				s.buckets = append(s.buckets, ls[i].full(now))
			}
		}
		v = take(ls, s.buckets, now)
		if !v.allowed && !fresh {
			return v, true // nothing to write: a refill is recomputed next time
		}
		s.val = s.encode(s.val[:0], ls)
		var res setResult
		var err error
		if found[slot] {
			var mismatch bool
			if mismatch, err = s.host.set(names[slot], s.val, cass[slot]); mismatch {
				res = setConflict
			}
		} else {
			res, err = s.create(names[slot], s.val, [2]uint64{a, b}[slot], now)
		}
		if err != nil {
			s.note(evError, err)
			return verdict{}, false
		}
		switch res {
		case setConflict:
			conflicts++
			s.note(evCASRetry, nil)
			continue
		case setBusy:
			t := s.clock()
			if waitUntil == 0 {
				waitUntil = t + int64(lockPatience)
			} else if t > waitUntil {
				s.note(evExhausted, nil)
				return verdict{}, false
			}
			continue
		}
		if evicted {
			s.note(evEvicted, nil)
		}
		return v, true
	}
	s.note(evExhausted, nil)
	return verdict{}, false
}

// name is a slot's shared-data key. It aliases s.slotName[i] rather than
// allocating a string per request: the host copies a key in the call, and
// the buffer is not written again before the next take.
func (s *store) name(i int, slot uint64) string {
	s.slotName[i] = append(s.slotName[i][:0], s.prefix...)
	s.slotName[i] = append(s.slotName[i], 's', '/')
	s.slotName[i] = strconv.AppendUint(s.slotName[i], slot, 10)
	return unsafe.String(unsafe.SliceData(s.slotName[i]), len(s.slotName[i]))
}

// owns reports whether a slot value belongs to this request's key.
func (s *store) owns(val []byte) bool {
	if len(val) < 2 || val[0] != slotVersion {
		return false
	}
	n := int(val[1])
	return len(val) >= 2+n && string(val[2:2+n]) == string(s.stored)
}

// A slot value: version, key length, stored key, bucket count, the time
// (Unix ns) by which every bucket will be full again, then per bucket its
// credit and last refill time, little-endian.
const slotFixed = 1 + 1 + 1 + 8

// decode reads the buckets of an owned slot into s.buckets; false when
// their number does not match ls (the configuration changed).
func (s *store) decode(val []byte, ls []limit) bool {
	off := 2 + int(val[1])
	if len(val) < off+9 || int(val[off]) != len(ls) || len(val) != off+9+16*len(ls) {
		return false
	}
	off += 9
	s.buckets = s.buckets[:0]
	for i := range ls {
		b := bucket{
			credit: int64(binary.LittleEndian.Uint64(val[off:])),
			last:   int64(binary.LittleEndian.Uint64(val[off+8:])),
		}
		// A credit above capacity (a limit that shrank) is cut back.
		b.credit = min(b.credit, ls[i].capacity)
		s.buckets = append(s.buckets, b)
		off += 16
	}
	return true
}

func (s *store) encode(dst []byte, ls []limit) []byte {
	var fullAt int64
	for i, b := range s.buckets {
		fullAt = max(fullAt, b.last+int64(ls[i].untilFull(b)))
	}
	dst = append(dst, slotVersion, byte(len(s.stored)))
	dst = append(dst, s.stored...)
	dst = append(dst, byte(len(s.buckets)))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(fullAt))
	for _, b := range s.buckets {
		dst = binary.LittleEndian.AppendUint64(dst, uint64(b.credit))
		dst = binary.LittleEndian.AppendUint64(dst, uint64(b.last))
	}
	return dst
}

// fullAt reads when a slot's buckets will all be full again; a value that
// cannot be read counts as full long ago (nothing in it worth keeping).
func fullAt(val []byte) int64 {
	if len(val) < 2 || val[0] != slotVersion {
		return 0
	}
	off := 2 + int(val[1])
	if len(val) < off+9 {
		return 0
	}
	return int64(binary.LittleEndian.Uint64(val[off+1:]))
}

// victim picks the slot a new key takes, and whether that evicts a key
// whose buckets were still refilling.
func (s *store) victim(vals [2][]byte, found [2]bool, now int64) (int, bool) {
	for i := 0; i < 2; i++ {
		if !found[i] {
			return i, false
		}
	}
	f0, f1 := fullAt(vals[0]), fullAt(vals[1])
	switch {
	case f0 <= now:
		return 0, false
	case f1 <= now:
		return 1, false
	case f1 < f0:
		return 1, true
	}
	return 0, true
}

// setResult is how a write went.
type setResult uint8

const (
	setDone     setResult = iota
	setConflict           // another worker wrote first: read again
	setBusy               // another worker is creating a slot of the stripe: read again
)

// create writes a slot that did not exist. Envoy ignores the CAS when it
// creates a key, so two workers creating the same slot at once would each
// think they won and one take would be lost; a lock per stripe of slots
// (itself a CAS on an existing key) lets one creator at a time check and
// write.
func (s *store) create(name string, val []byte, slot uint64, now int64) (setResult, error) {
	lock := s.lockKey(slot)
	lv, lcas, ok := s.host.get(lock)
	if !ok {
		// Made at start; absent only if that write failed: make it (free),
		// then retry.
		if _, err := s.host.set(lock, lockValue(0), 0); err != nil {
			return setDone, err
		}
		return setBusy, nil
	}
	if len(lv) == 8 && int64(binary.LittleEndian.Uint64(lv)) > now {
		return setBusy, nil // held by another worker, creating right now
	}
	if m, err := s.host.set(lock, lockValue(now+int64(lockLease)), lcas); m || err != nil {
		return setConflict, err
	}
	defer s.host.set(lock, lockValue(0), 0) //nolint:errcheck // a lock left held lapses after lockLease
	if _, _, exists := s.host.get(name); exists {
		return setConflict, nil // created by another worker since we looked
	}
	if _, err := s.host.set(name, val, 0); err != nil {
		return setDone, err
	}
	return setDone, nil
}

func lockValue(until int64) []byte {
	return binary.LittleEndian.AppendUint64(make([]byte, 0, 8), uint64(until))
}
