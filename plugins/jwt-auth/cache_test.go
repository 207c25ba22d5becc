package main

import (
	"fmt"
	"testing"
	"time"
)

func cacheKey(i int) string { return fmt.Sprint("token-", i) }

func TestTokenCacheLRU(t *testing.T) {
	c := newTokenCache(3, 1<<20)
	exp := testNow.Add(time.Hour)
	for i := range 3 {
		c.put(cacheKey(i), cacheEntry{provider: i, expires: exp, size: 10})
	}
	// Touch 0, so 1 is the least recently used.
	if e := c.get(cacheKey(0), testNow); e == nil || e.provider != 0 {
		t.Fatalf("get(0) = %v, want entry 0", e)
	}
	c.put(cacheKey(3), cacheEntry{provider: 3, expires: exp, size: 10})
	for i, want := range []bool{true, false, true, true} {
		if got := c.get(cacheKey(i), testNow) != nil; got != want {
			t.Errorf("after evicting: get(%d) present = %v, want %v", i, got, want)
		}
	}
	if c.len() != 3 || c.bytes != 30 {
		t.Errorf("len, bytes = %d, %d; want 3, 30", c.len(), c.bytes)
	}
	// Replacing a key keeps one entry.
	c.put(cacheKey(3), cacheEntry{provider: 33, expires: exp, size: 10})
	if e := c.get(cacheKey(3), testNow); e == nil || e.provider != 33 || c.len() != 3 {
		t.Errorf("after replace: get(3) = %v, len %d", e, c.len())
	}
}

func TestTokenCacheExpiry(t *testing.T) {
	c := newTokenCache(10, 1<<20)
	c.put(cacheKey(1), cacheEntry{expires: testNow.Add(time.Second), size: 1})
	if c.get(cacheKey(1), testNow) == nil {
		t.Fatal("get before expiry = nil")
	}
	if c.get(cacheKey(1), testNow.Add(time.Second)) != nil {
		t.Fatal("get at expiry returned the entry")
	}
	if c.len() != 0 || c.bytes != 0 {
		t.Errorf("expired entry kept: len %d, bytes %d", c.len(), c.bytes)
	}
}

func TestTokenCacheByteBound(t *testing.T) {
	c := newTokenCache(100, 1000)
	exp := testNow.Add(time.Hour)
	for i := range 20 {
		c.put(cacheKey(i), cacheEntry{expires: exp, size: 100})
		if c.bytes > 1000 {
			t.Fatalf("after %d puts: %d bytes held, bound 1000", i+1, c.bytes)
		}
	}
	if c.len() != 10 {
		t.Errorf("len = %d, want 10", c.len())
	}
	c.put(cacheKey(99), cacheEntry{expires: exp, size: 126}) // > 1000/8: not cached
	if c.get(cacheKey(99), testNow) != nil {
		t.Errorf("an entry over an eighth of the budget was cached")
	}
}

// TestTokenCacheChurn fills the cache far past its bound with random
// expiries and checks the list and the index stay consistent.
func TestTokenCacheChurn(t *testing.T) {
	c := newTokenCache(64, 1<<20)
	now := testNow
	for i := range 5000 {
		c.put(cacheKey(i), cacheEntry{provider: i, expires: now.Add(time.Duration(i%7) * time.Second), size: i % 50})
		if i%3 == 0 {
			c.get(cacheKey(i/2), now)
		}
		if i%100 == 0 {
			now = now.Add(time.Second)
		}
		if c.len() > 64 {
			t.Fatalf("len %d > 64", c.len())
		}
	}
	n, bytes := 0, 0
	for i := c.head; i >= 0; i = c.slots[i].next {
		e := &c.slots[i]
		if j, ok := c.index[e.key]; !ok || j != i {
			t.Fatalf("slot %d not indexed", i)
		}
		n++
		bytes += e.size
	}
	if n != c.len() || bytes != c.bytes {
		t.Errorf("list has %d entries, %d bytes; index %d, counter %d", n, bytes, c.len(), c.bytes)
	}
}
