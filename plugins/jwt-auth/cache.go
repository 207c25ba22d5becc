package main

// A bounded cache of verified tokens, so that a client sending the same
// token again is not re-verified (an RS256 check costs tens of microseconds
// natively, milliseconds in a wasm VM) and its claims are not read again
// (JSON work is slow in a wasm VM too: the entry keeps the headers and the
// identity ready). One per VM and plugin context; no goroutines, no timers:
// expiry is checked on lookup against the time the caller passes.
//
// The key is the token itself, compared exactly (Go's map hashing is
// seeded per process): no hash collision can hand one token another's
// claims, and a token found here costs no cryptographic hash (SHA-256 of
// a typical token costs about 20-30µs in a Go wasm VM; only tokens this
// cache misses are hashed, for failedCache below).

import (
	"crypto/sha256"
	"strings"
	"time"
)

// cacheEntry is one verified token.
type cacheEntry struct {
	key      string // the token
	provider int
	// keys is the asymmetric key set the signature was checked with (nil
	// for HMAC): a cached entry only counts while it is still in use.
	keys    *keySet
	claims  claims
	payload string
	ident   identityView
	// expires is when the entry stops being served: the token's exp, or
	// the cache's max TTL for a token without one, whichever is first.
	expires time.Time
	size    int // bytes held, for the byte bound

	prev, next int32 // LRU list links (slot indexes, -1 for none)
}

// tokenCache is an LRU map from token hash to verification, bounded in
// entries and in bytes. Slots live in one slice and link by index, so the
// steady state allocates nothing per request.
type tokenCache struct {
	maxEntries int
	maxBytes   int
	bytes      int
	index      map[string]int32
	slots      []cacheEntry
	free       []int32
	head, tail int32 // most and least recently used; -1 when empty
}

func newTokenCache(maxEntries, maxBytes int) *tokenCache {
	return &tokenCache{
		maxEntries: maxEntries,
		maxBytes:   maxBytes,
		index:      make(map[string]int32, maxEntries),
		head:       -1,
		tail:       -1,
	}
}

// len returns the number of entries.
func (c *tokenCache) len() int { return len(c.index) }

// get returns the live entry for key, nil if there is none. An entry past
// its expiry is dropped, never served.
func (c *tokenCache) get(key string, now time.Time) *cacheEntry {
	i, ok := c.index[key]
	if !ok {
		return nil
	}
	e := &c.slots[i]
	if !now.Before(e.expires) {
		c.remove(i)
		return nil
	}
	c.unlink(i)
	c.pushFront(i)
	return e
}

// put stores e under key, evicting least recently used entries to stay
// within bounds. An entry larger than an eighth of the byte budget is not
// stored.
func (c *tokenCache) put(key string, e cacheEntry) {
	if c.maxEntries <= 0 || e.size > c.maxBytes/8 {
		return
	}
	if i, ok := c.index[key]; ok {
		c.remove(i)
	}
	for len(c.index) >= c.maxEntries || c.bytes+e.size > c.maxBytes {
		c.remove(c.tail)
	}
	e.key = strings.Clone(key) // not a view into the request's header buffer
	var i int32
	if n := len(c.free); n > 0 {
		i = c.free[n-1]
		c.free = c.free[:n-1]
		c.slots[i] = e
	} else {
		i = int32(len(c.slots))
		c.slots = append(c.slots, e)
	}
	c.index[key] = i
	c.bytes += e.size
	c.pushFront(i)
}

func (c *tokenCache) remove(i int32) {
	e := &c.slots[i]
	delete(c.index, e.key)
	c.bytes -= e.size
	c.unlink(i)
	*e = cacheEntry{} // let the claims and key set go
	c.free = append(c.free, i)
}

func (c *tokenCache) unlink(i int32) {
	e := &c.slots[i]
	if e.prev >= 0 {
		c.slots[e.prev].next = e.next
	} else {
		c.head = e.next
	}
	if e.next >= 0 {
		c.slots[e.next].prev = e.prev
	} else {
		c.tail = e.prev
	}
	e.prev, e.next = -1, -1
}

func (c *tokenCache) pushFront(i int32) {
	e := &c.slots[i]
	e.prev, e.next = -1, c.head
	if c.head >= 0 {
		c.slots[c.head].prev = i
	}
	c.head = i
	if c.tail < 0 {
		c.tail = i
	}
}

// failedCache remembers tokens whose signature did not verify, so that a
// forged token sent again costs a SHA-256 and a map lookup instead of
// another signature check (milliseconds of ECDSA in a Go wasm VM): the
// replay half of the CPU amplification a forged token buys.
//
// It is kept apart from tokenCache on purpose. A flood of forged tokens
// must never evict the verified tokens of legitimate clients, and a
// failure needs no claims: the key is the token's SHA-256 digest (32 bytes
// whatever the token's size), so the bound holds in little memory. A
// digest collision could only make a genuine token fail, never make a
// forged one pass, and SHA-256 has none to find.
//
// An entry counts only while the key set it failed against is still in
// use (keys, nil for HMAC), so a token signed with a key published after
// its first try is verified again once the new set arrives. Entries live
// at most failedMaxTTL; when the cache is full the oldest insertion goes
// (a ring in insertion order: no per-request allocation, no LRU upkeep).
type failedCache struct {
	index map[[sha256.Size]byte]failedEntry
	ring  [][sha256.Size]byte // insertion order; ring[next] is the oldest once full
	next  int
}

type failedEntry struct {
	provider int
	keys     *keySet
	expires  time.Time
	slot     int // its index in ring: an older ring slot with the same digest does not evict it
}

func newFailedCache(maxEntries int) *failedCache {
	return &failedCache{index: make(map[[sha256.Size]byte]failedEntry, maxEntries), ring: make([][sha256.Size]byte, 0, maxEntries)}
}

// lookup returns the remembered failure of digest, if there is one still
// live at now.
func (c *failedCache) lookup(digest *[sha256.Size]byte, now time.Time) (failedEntry, bool) {
	e, ok := c.index[*digest]
	if ok && !now.Before(e.expires) {
		delete(c.index, *digest)
		return failedEntry{}, false
	}
	return e, ok
}

// add remembers that digest failed verification with provider's keys,
// until expires.
func (c *failedCache) add(digest *[sha256.Size]byte, provider int, keys *keySet, expires time.Time) {
	if cap(c.ring) == 0 {
		return
	}
	slot := len(c.ring)
	if slot < cap(c.ring) {
		c.ring = append(c.ring, *digest)
	} else {
		slot = c.next
		if old, ok := c.index[c.ring[slot]]; ok && old.slot == slot {
			delete(c.index, c.ring[slot])
		}
		c.ring[slot] = *digest
		c.next = (c.next + 1) % len(c.ring)
	}
	c.index[*digest] = failedEntry{provider: provider, keys: keys, expires: expires, slot: slot}
}

// len returns the number of digests remembered (expired ones included
// until they are looked up or evicted).
func (c *failedCache) len() int { return len(c.index) }
