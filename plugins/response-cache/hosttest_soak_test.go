//go:build !wasm

package main

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/concierge-wasm/concierge/hosttest"
)

// layoutBytes is what the slot layout costs in shared data beyond the
// entries themselves: every slot key, the index shards' keys and values.
func layoutBytes(ns string, slots int, maxTotal, maxEntry int64) int {
	l := newLayout(ns, slots, maxTotal, maxEntry)
	n := slots * indexRecord
	for _, k := range l.indexKeys {
		n += len(k) + indexHeader
	}
	for _, k := range l.slotKeys {
		n += len(k)
	}
	return n
}

// TestBoundedMemory: thousands of distinct URLs (a client walking the key
// space) leave shared data under max_total_bytes plus the fixed layout.
func TestBoundedMemory(t *testing.T) {
	const maxTotal, slots = 64 << 10, 128
	o := newOrigin(t)
	o.answer = func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Cache-Control", "max-age=600")
		w.Write([]byte(strings.Repeat("b", 200+len(r.URL.RawQuery)*10)))
	}
	h := newCache(t, fmt.Sprintf(`{"max_total_bytes": %d, "max_entry_bytes": 4096, "max_entries": %d}`, maxTotal, slots), o)
	for i := 0; i < 3000; i++ {
		h.Do(hosttest.GET("/item/" + strconv.Itoa(i) + "?q=" + strings.Repeat("x", i%40)))
	}
	sd := h.SharedData("")
	limit := maxTotal + layoutBytes("response-cache", slots, maxTotal, 4096)
	if got := sd.Bytes(); got > limit {
		t.Errorf("shared data = %d bytes after 3000 URLs, want <= %d", got, limit)
	}
	if n, want := len(sd.Keys()), slots+len(newLayout("response-cache", slots, maxTotal, 4096).indexKeys); n > want {
		t.Errorf("%d shared-data keys, want <= %d", n, want)
	}
	stored := metric(h, "bytes_stored")
	if stored <= 0 || stored > maxTotal {
		t.Errorf("bytes_stored = %d, want in (0, %d]", stored, maxTotal)
	}
	if metric(h, "evictions_total") == 0 {
		t.Errorf("no evictions")
	}
	t.Logf("shared data %d bytes (limit %d), bytes_stored %d, evictions %d", sd.Bytes(), limit, stored, metric(h, "evictions_total"))
}

// soakBound is the linear memory one VM may reach over the soak: the Go
// runtime starts at about 3 MiB; entries are copied in and out of shared
// data per request (at most max_entry_bytes each) and one index shard (32
// bytes a slot of the shard) per store. Measured: 8.6 MiB, flat after the first 1,000 requests
// (the Go heap's 4 MiB minimum goal plus the runtime).
const soakBound = 10 << 20

// TestSoak: 20,000 requests on one VM mixing hits, misses with stores and
// evictions, HEAD, revalidation-free expiry and invalidating POSTs.
func TestSoak(t *testing.T) {
	o := newOrigin(t)
	o.answer = func(w http.ResponseWriter, r *http.Request, n int) {
		if r.Method == "POST" {
			w.WriteHeader(204)
			return
		}
		w.Header().Set("Cache-Control", "max-age=5")
		w.Write([]byte(strings.Repeat("s", 1024)))
	}
	h := newCache(t, `{"max_total_bytes": 1048576, "max_entry_bytes": 65536, "max_entries": 512}`, o, hosttest.Workers(1))
	rep := hosttest.RunSoak(t, h, hosttest.Soak{
		Requests: 20000,
		Request: func(i int) *hosttest.Request {
			path := "/soak/" + strconv.Itoa(i%2000)
			switch {
			case i%97 == 0:
				return hosttest.POST(path, "x")
			case i%13 == 0:
				return hosttest.NewRequest("HEAD", path)
			}
			return hosttest.GET(path)
		},
		Check: func(i int, r *hosttest.Response) error {
			if r.Status != 200 && r.Status != 204 {
				return fmt.Errorf("status %d", r.Status)
			}
			return nil
		},
		MaxMemoryBytes: soakBound,
	})
	t.Log(rep)
	if metric(h, "hits_total") == 0 || metric(h, "stores_total") == 0 || metric(h, "evictions_total") == 0 {
		t.Errorf("soak did not exercise hits, stores and evictions: hits %d stores %d evictions %d",
			metric(h, "hits_total"), metric(h, "stores_total"), metric(h, "evictions_total"))
	}
}

// TestSharedBytesPerKiB measures what one cached 1 KiB and 64 KiB response
// costs in shared data, beyond the fixed layout (slot keys, index): the
// entry's key, its headers and its framing.
func TestSharedBytesPerKiB(t *testing.T) {
	for _, size := range []int{1 << 10, 64 << 10} {
		o := newOrigin(t)
		o.answer = func(w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("Cache-Control", "max-age=600")
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("ETag", `"0123456789abcdef"`)
			w.Write([]byte(strings.Repeat("j", size)))
		}
		h := newCache(t, `{"max_entries": 64}`, o)
		h.Do(hosttest.GET("/api/products/1"))
		empty := h.SharedData("").Bytes()
		slot := 0
		for _, k := range h.SharedData("").Keys() {
			if v, _, _ := h.SharedData("").Get(k); strings.Contains(k, "/slot/") {
				slot += len(v)
			}
		}
		perKiB := float64(slot) / float64(size) * 1024
		t.Logf("%d-byte response: slot value %d bytes (%.0f bytes per cached KiB); all shared data %d bytes with a 64-slot layout", size, slot, perKiB, empty)
		if slot < size || slot > size+512 {
			t.Errorf("%d-byte response stored in %d bytes, want the body plus at most 512", size, slot)
		}
	}
}

// TestConcurrentStoresStayBounded: four worker VMs storing distinct URLs
// at once (their compare-and-swaps on the index really race) still leave
// shared data under the bound, and the index agrees with the slots.
func TestConcurrentStoresStayBounded(t *testing.T) {
	const maxTotal, slots, clients, each = 32 << 10, 64, 8, 100
	o := newOrigin(t)
	o.answer = func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Cache-Control", "max-age=600")
		w.Write([]byte(strings.Repeat("c", 300)))
	}
	h := newCache(t, fmt.Sprintf(`{"max_total_bytes": %d, "max_entry_bytes": 4096, "max_entries": %d}`, maxTotal, slots), o, hosttest.Workers(4))
	done := make(chan struct{})
	for c := 0; c < clients; c++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := 0; i < each; i++ {
				h.Do(hosttest.GET("/c/" + strconv.Itoa(c) + "/" + strconv.Itoa(i%40)))
			}
		}()
	}
	for c := 0; c < clients; c++ {
		<-done
	}
	sd := h.SharedData("")
	if limit := maxTotal + layoutBytes("response-cache", slots, maxTotal, 4096); sd.Bytes() > limit {
		t.Errorf("shared data = %d bytes, want <= %d", sd.Bytes(), limit)
	}
	l := newLayout("response-cache", slots, maxTotal, 4096)
	if l.shards() < 2 {
		t.Fatalf("%d index shards: the test wants stores racing on several", l.shards())
	}
	var counted, held int64
	for _, k := range l.indexKeys {
		idx, _, ok := sd.Get(k)
		if !ok {
			t.Fatalf("no index shard %s", k)
		}
		counted += index(idx).total()
	}
	for _, k := range l.slotKeys {
		v, _, _ := sd.Get(k)
		held += int64(len(v))
	}
	t.Logf("index counts %d bytes, slots hold %d; conflicts %d, evictions %d", counted, held, metric(h, "conflicts_total"), metric(h, "evictions_total"))
	if counted > maxTotal {
		t.Errorf("index counts %d bytes > %d", counted, maxTotal)
	}
	if held > maxTotal+4*(4096+512) {
		t.Errorf("slots hold %d bytes, more than the budget plus one entry per worker", held)
	}
	if got := metric(h, "bytes_stored"); got != counted {
		t.Errorf("bytes_stored gauge = %d, index counts %d", got, counted)
	}
}

// TestEntryOverShardBudget: with max_total_bytes 32 KiB and
// max_entry_bytes 1 KiB the index has 16 shards of 2 KiB; a 1000-byte
// body within max_entry_bytes but carrying 1.5 KiB of headers is over its
// shard's budget: it is served, not stored, and logged; a plain one is
// stored.
func TestEntryOverShardBudget(t *testing.T) {
	o := newOrigin(t)
	o.answer = func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Cache-Control", "max-age=600")
		if r.URL.Path == "/heavy" {
			w.Header().Set("X-Padding", strings.Repeat("p", 1500))
		}
		w.Write([]byte(strings.Repeat("b", 1000)))
	}
	h := newCache(t, `{"max_total_bytes": 32768, "max_entry_bytes": 1024, "max_entries": 64}`, o)
	for _, c := range []struct {
		path, second string
	}{{"/heavy", "MISS"}, {"/plain", "HIT"}} {
		expect(t, c.path+" first", h.Do(hosttest.GET(c.path)), 200, "MISS", strings.Repeat("b", 1000))
		expect(t, c.path+" second", h.Do(hosttest.GET(c.path)), 200, c.second, strings.Repeat("b", 1000))
	}
	if len(h.LogsContaining("entry larger than its index shard's budget")) != 2 {
		t.Errorf("no log line for the refused entry: %v", h.LogsContaining("not stored"))
	}
	if got := metric(h, "stores_total"); got != 1 {
		t.Errorf("stores_total = %d, want 1", got)
	}
}
