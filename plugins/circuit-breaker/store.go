package main

// Breakers live in shared data so that every worker VM of one Envoy sees
// and moves the same breaker (convention 5 in README.md, "Writing a
// filter"). One key per breaker:
//
//	circuit-breaker/<ns>/b/<policy>/<scope key>   the record (record.go)
//	circuit-breaker/<ns>/keys                     how many breaker keys exist
//	circuit-breaker/<ns>/lock                     serialises creating records
//
// Envoy's shared data has no create-if-absent: a write to an absent key
// succeeds whatever CAS it carries, so two workers that both found a
// breaker missing would both write their first change, and one would be
// lost (a bulkhead admitting twice its limit on a burst). A record is
// therefore created, empty, under a lock (itself a CAS on a key made when
// the plugin starts, before traffic), and every change after that is a CAS
// on an existing key.
//
// <ns> is the plugin's root_id (or plugin_name); <policy> is 0 for the
// top-level settings and r<i> for rule i when it has settings of its own.
// Every change is a compare-and-swap with a bounded number of attempts.
//
// The number of breaker keys is bounded (maxKeys) because the scope key
// may come from the client (`"scope": "authority"`): a breaker key is
// created only for a request that reached an upstream, and past the bound
// a new scope key gets no breaker — its requests pass untouched and are
// counted (concierge_circuit_breaker_untracked_total). Keys are never
// removed: Envoy's shared data has no delete, and a breaker that went
// away would forget that its backend is down.
//
// This file has no proxywasm import: the host calls go through storeHost,
// which main.go implements and the tests fake.

import (
	"encoding/binary"
	"strconv"
	"time"
)

// storeHost is what the store needs from the proxy.
type storeHost interface {
	// sharedGet reads a key; ok is false when it is absent.
	sharedGet(key string) (value []byte, cas uint32, ok bool)
	// sharedSet writes a key with Envoy's rules (cas 0, or any cas on an
	// absent key, writes unconditionally). mismatch reports a CAS failure.
	sharedSet(key string, value []byte, cas uint32) (mismatch bool, err error)
}

const (
	// casAttempts bounds a compare-and-swap loop. Envoy serialises
	// shared-data calls under one lock, so a conflict means another worker
	// wrote the same breaker in between; with a handful of workers a few
	// attempts always suffice. When they do not, the change is given up,
	// counted (concierge_circuit_breaker_cas_exhausted_total) and logged.
	casAttempts = 16
	// maxKeys bounds the number of breakers per filter configuration.
	maxKeys = 1024
	// lockLease frees the creation lock of a worker that died holding it.
	// lockPatience bounds how long (host clock) one request waits while
	// another worker holds it. A holder keeps it for a few host calls,
	// unless its thread is descheduled mid-creation (more workers than
	// cores, a noisy neighbour): then it runs again within a scheduler time
	// slice or a few, which a count of re-reads cannot wait out (256 of
	// them pass in well under a millisecond). Past it, the change is given
	// up like a CAS loop that ran out.
	lockLease    = time.Second
	lockPatience = 50 * time.Millisecond
)

// store reads and changes breaker records of one filter configuration.
type store struct {
	host   storeHost
	prefix string // circuit-breaker/<ns>/
	// known caches, per VM and policy, the breakers this VM has seen in
	// shared data, so that the key bound is checked once per key and VM.
	// It holds at most maxKeys entries in all.
	known  []map[string]*breakerKey
	nKnown int
	buf    []byte
	// probe is the closed, empty record a change is tried on when the
	// breaker has none in shared data (a VM runs one callback at a time).
	probe record
	// now is the host clock in Unix nanoseconds, for the lock's lease.
	now func() int64
}

// breakerKey is one breaker as a VM knows it.
type breakerKey struct {
	scope string // the scope key, for logs
	key   string // its shared-data key
	// gauge is the state this VM last reported for it; -1 for none.
	gauge int64
	// untracked: the key bound was reached before this breaker existed;
	// requests pass without one.
	untracked bool
	// stateMetric is the wiring's state gauge for this breaker (0: none).
	stateMetric uint32
}

// newStore makes the store of one filter configuration, and its creation
// lock unless another VM has made it already. Call it when the plugin
// starts: VMs start before the proxy takes traffic, so two VMs making the
// lock at once both write it free, which is harmless.
func newStore(host storeHost, ns string, policies int) *store {
	s := &store{host: host, prefix: "circuit-breaker/" + ns + "/", known: make([]map[string]*breakerKey, policies),
		buf: make([]byte, 0, maxRecordBytes), now: func() int64 { return time.Now().UnixNano() }}
	for i := range s.known {
		s.known[i] = map[string]*breakerKey{}
	}
	if _, _, ok := host.sharedGet(s.lockKey()); !ok {
		host.sharedSet(s.lockKey(), lockValue(0), 0) //nolint:errcheck // create retries making it
	}
	return s
}

func (s *store) lockKey() string { return s.prefix + "lock" }

// lockValue is the lock's content: until when it is held (0: free).
func lockValue(until int64) []byte {
	return binary.LittleEndian.AppendUint64(make([]byte, 0, 8), uint64(until))
}

// create makes b's record, empty, if it is still absent, holding the
// creation lock so that no other worker writes it at the same time.
// busy reports that the lock was held (or taken under our feet): read
// again.
func (s *store) create(key string) (busy bool, err error) {
	lock := s.lockKey()
	now := s.now()
	lv, lcas, ok := s.host.sharedGet(lock)
	if !ok {
		// Made at start; gone only if the VM that made it never finished.
		_, err := s.host.sharedSet(lock, lockValue(0), 0)
		return true, err
	}
	if len(lv) == 8 && int64(binary.LittleEndian.Uint64(lv)) > now {
		return true, nil
	}
	held := lockValue(now + int64(lockLease))
	if mismatch, err := s.host.sharedSet(lock, held, lcas); mismatch || err != nil {
		return true, err
	}
	if _, _, exists := s.host.sharedGet(key); !exists {
		s.buf = appendRecord(s.buf[:0], &record{})
		if _, err = s.host.sharedSet(key, s.buf, 0); err != nil {
			err = s.release(lock, held)
			return false, err
		}
	}
	return false, s.release(lock, held)
}

// release frees the lock if it is still ours: a lease that lapsed may have
// passed it to another worker since.
func (s *store) release(lock string, held []byte) error {
	lv, lcas, ok := s.host.sharedGet(lock)
	if !ok || string(lv) != string(held) {
		return nil
	}
	_, err := s.host.sharedSet(lock, lockValue(0), lcas)
	return err
}

// breaker returns the breaker of scope under policy pol, or nil when it
// does not exist yet and create is false. With create, a breaker past the
// key bound comes back with untracked set. scope is a byte slice so that
// the usual lookup of a known breaker does not allocate.
func (s *store) breaker(pol int, polName string, scope []byte, create bool) (*breakerKey, error) {
	if b := s.known[pol][string(scope)]; b != nil {
		return b, nil
	}
	sc := string(scope)
	key := s.prefix + "b/" + polName + "/" + sc
	if _, _, ok := s.host.sharedGet(key); ok {
		return s.remember(pol, sc, key, false), nil
	}
	if !create {
		return nil, nil
	}
	if s.nKnown >= maxKeys {
		return &breakerKey{scope: sc, key: key, gauge: -1, untracked: true}, nil
	}
	full, err := s.claimKey()
	if err != nil {
		return nil, err
	}
	return s.remember(pol, sc, key, full), nil
}

func (s *store) remember(pol int, scope, key string, untracked bool) *breakerKey {
	b := &breakerKey{scope: scope, key: key, gauge: -1, untracked: untracked}
	if s.nKnown < maxKeys {
		s.known[pol][scope] = b
		s.nKnown++
	}
	return b
}

// claimKey counts one more breaker key in shared data; full reports that
// the bound was reached.
func (s *store) claimKey() (full bool, err error) {
	key := s.prefix + "keys"
	for range casAttempts {
		v, cas, ok := s.host.sharedGet(key)
		n := 0
		if ok {
			n, _ = strconv.Atoi(string(v))
		}
		if n >= maxKeys {
			return true, nil
		}
		mismatch, err := s.host.sharedSet(key, strconv.AppendInt(nil, int64(n+1), 10), cas)
		if err != nil {
			return false, err
		}
		if !mismatch {
			return false, nil
		}
	}
	return false, errCASExhausted
}

// errCASExhausted is returned when every attempt of a compare-and-swap
// loop met another writer.
var errCASExhausted = casError("gave up after " + strconv.Itoa(casAttempts) + " compare-and-swap conflicts")

// errLockBusy is returned when another worker held the creation lock for
// longer than lockPatience.
var errLockBusy = casError("gave up after the creation lock was held for " + lockPatience.String())

type casError string

func (e casError) Error() string { return string(e) }

// update reads b's record, lets change modify it, and writes it back if
// change reports a modification, retrying on a CAS conflict. It returns
// the record as written (or as read, when nothing changed). An unreadable
// record is replaced by a closed breaker.
func (s *store) update(b *breakerKey, r *record, change func(r *record) bool) error {
	var waitUntil int64
	for attempt := 0; attempt < casAttempts; {
		v, cas, ok := s.host.sharedGet(b.key)
		if !ok {
			// Absent: create it (empty) first, so that the change below is
			// a CAS on an existing key. Doing nothing creates nothing: a
			// healthy breaker never has a record, so this is the common
			// path, and the probe lives in the store rather than escaping
			// to the heap on every request.
			s.probe = record{}
			if !change(&s.probe) {
				*r = s.probe
				return nil
			}
			busy, err := s.create(b.key)
			if err != nil {
				return err
			}
			if busy {
				now := s.now()
				if waitUntil == 0 {
					waitUntil = now + int64(lockPatience)
				} else if now > waitUntil {
					return errLockBusy
				}
			}
			continue
		}
		if decodeRecord(v, r) != nil {
			*r = record{} // unreadable: replaced by a closed breaker, by CAS
		}
		if !change(r) {
			return nil
		}
		s.buf = appendRecord(s.buf[:0], r)
		mismatch, err := s.host.sharedSet(b.key, s.buf, cas)
		if err != nil {
			return err
		}
		if !mismatch {
			return nil
		}
		attempt++
	}
	return errCASExhausted
}

// read returns b's record without changing it.
func (s *store) read(b *breakerKey, r *record) {
	v, _, ok := s.host.sharedGet(b.key)
	if !ok || decodeRecord(v, r) != nil {
		*r = record{}
	}
}
