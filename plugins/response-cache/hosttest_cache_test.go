//go:build !wasm

package main

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/concierge-wasm/concierge/hosttest"
)

func TestHitMissAge(t *testing.T) {
	o := newOrigin(t)
	h := newCache(t, `{}`, o)
	r := h.Do(hosttest.GET("/a"))
	expect(t, "first", r, 200, "MISS", "body of /a #1")
	if got := r.HeaderValues("cache-status"); len(got) != 1 || got[0] != "concierge; fwd=uri-miss; fwd-status=200" {
		t.Errorf("miss Cache-Status = %q", got)
	}
	h.Clock().Advance(10 * time.Second)
	r = h.Do(hosttest.GET("/a"))
	expect(t, "second", r, 200, "HIT", "body of /a #1")
	if (r.Header("age") != "10" && r.Header("age") != "11") || r.Header("cache-status") != "concierge; hit" || r.Header("content-type") != "text/plain" {
		t.Errorf("hit headers: %s age=%q cache-status=%q content-type=%q", r, r.Header("age"), r.Header("cache-status"), r.Header("content-type"))
	}
	if r.LocalReplyBy != "response-cache" {
		t.Errorf("hit answered by %q, want the filter", r.LocalReplyBy)
	}
	if n := len(r.HeaderValues("content-length")); n != 1 {
		t.Errorf("hit has %d content-length headers, want 1", n)
	}
	// Expired: max-age=60, no validators: a miss that stores afresh.
	h.Clock().Advance(60 * time.Second)
	expect(t, "expired", h.Do(hosttest.GET("/a")), 200, "MISS", "body of /a #2")
	expect(t, "after refetch", h.Do(hosttest.GET("/a")), 200, "HIT", "body of /a #2")
	if o.hits("/a") != 2 {
		t.Errorf("origin saw %d requests, want 2", o.hits("/a"))
	}
	if metric(h, "hits_total") != 2 || metric(h, "misses_total") != 2 || metric(h, "stores_total") != 2 {
		t.Errorf("metrics hits=%d misses=%d stores=%d", metric(h, "hits_total"), metric(h, "misses_total"), metric(h, "stores_total"))
	}
	if metric(h, "bytes_stored") <= 0 {
		t.Errorf("bytes_stored = %d", metric(h, "bytes_stored"))
	}
}

// TestHitAcrossWorkers: an entry stored by one worker VM is served by the
// others (shared data).
func TestHitAcrossWorkers(t *testing.T) {
	o := newOrigin(t)
	h := newCache(t, `{}`, o, hosttest.Workers(4))
	workers := map[int]bool{}
	for i := 0; i < 20; i++ {
		r := h.Do(hosttest.GET("/shared"))
		workers[r.Worker] = true
	}
	if o.hits("/shared") != 1 || len(workers) < 2 {
		t.Errorf("origin saw %d requests over %d workers, want 1 over several", o.hits("/shared"), len(workers))
	}
}

func TestHeadFromGet(t *testing.T) {
	o := newOrigin(t)
	h := newCache(t, `{}`, o)
	expect(t, "HEAD before GET", h.Do(hosttest.NewRequest("HEAD", "/h")), 200, "MISS", "")
	h.Do(hosttest.GET("/h"))
	r := h.Do(hosttest.NewRequest("HEAD", "/h"))
	expect(t, "HEAD after GET", r, 200, "HIT", "")
	if len(r.Body) != 0 || r.Header("content-length") != "13" {
		t.Errorf("HEAD hit: body %q content-length %q, want none and 13", r.Body, r.Header("content-length"))
	}
}

func TestStorabilityThroughHost(t *testing.T) {
	cases := []struct {
		name   string
		cfg    string
		header []string // response headers
		status int
		req    func(*hosttest.Request) *hosttest.Request
		stored bool
		detail string
	}{
		{"max-age", `{}`, []string{"Cache-Control", "max-age=60"}, 200, nil, true, ""},
		{"no cache-control", `{}`, nil, 200, nil, false, "no_freshness"},
		{"default_ttl", `{"default_ttl": "5m"}`, nil, 200, nil, true, ""},
		{"no-store", `{"default_ttl": "5m"}`, []string{"Cache-Control", "no-store"}, 200, nil, false, "no_store"},
		{"private", `{"default_ttl": "5m"}`, []string{"Cache-Control", "private, max-age=60"}, 200, nil, false, "private"},
		{"set-cookie", `{}`, []string{"Cache-Control", "max-age=60", "Set-Cookie", "sid=1"}, 200, nil, false, "set_cookie"},
		{"vary star", `{}`, []string{"Cache-Control", "max-age=60", "Vary", "*"}, 200, nil, false, "vary_star"},
		{"500", `{}`, []string{"Cache-Control", "max-age=60"}, 500, nil, false, "status"},
		{"authorization", `{}`, []string{"Cache-Control", "max-age=60"}, 200,
			func(r *hosttest.Request) *hosttest.Request { return r.Header("authorization", "Bearer x") }, false, "authorization"},
		{"authorization public", `{}`, []string{"Cache-Control", "public, max-age=60"}, 200,
			func(r *hosttest.Request) *hosttest.Request { return r.Header("authorization", "Bearer x") }, true, ""},
		{"heuristic", `{}`, []string{"Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT"}, 200, nil, true, ""},
		{"404 with max-age", `{}`, []string{"Cache-Control", "max-age=60"}, 404, nil, true, ""},
		{"too large", `{"max_entry_bytes": 1}`, []string{"Cache-Control", "max-age=60"}, 200, nil, false, "too_large"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := newOrigin(t)
			o.answer = func(w http.ResponseWriter, r *http.Request, n int) {
				for i := 0; i+1 < len(c.header); i += 2 {
					w.Header().Add(c.header[i], c.header[i+1])
				}
				w.Header().Set("Content-Length", "2")
				w.WriteHeader(c.status)
				w.Write([]byte("xy"))
			}
			h := newCache(t, c.cfg, o)
			req := func() *hosttest.Request {
				r := hosttest.GET("/s")
				if c.req != nil {
					r = c.req(r)
				}
				return r
			}
			first := h.Do(req())
			if c.detail != "" && !strings.Contains(first.Header("cache-status"), "detail="+c.detail) {
				t.Errorf("first Cache-Status = %q, want detail=%s", first.Header("cache-status"), c.detail)
			}
			second := h.Do(req())
			if got := second.Header("x-cache") == "HIT"; got != c.stored {
				t.Errorf("second request: %s; stored = %v, want %v", second, got, c.stored)
			}
			if second.Header("set-cookie") != "" && c.stored {
				t.Errorf("a stored Set-Cookie was replayed")
			}
		})
	}
}

// TestLargeBodyStreamsThrough: a body over max_entry_bytes reaches the
// client whole, in the origin's frames, and is not stored.
func TestLargeBodyStreamsThrough(t *testing.T) {
	o := newOrigin(t)
	big := strings.Repeat("x", 48<<10)
	o.answer = func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Cache-Control", "max-age=60")
		for i := 0; i < 3; i++ {
			w.Write([]byte(big[i*16<<10 : (i+1)*16<<10]))
			w.(http.Flusher).Flush()
		}
	}
	h := newCache(t, `{"max_entry_bytes": 20000}`, o)
	r := h.Do(hosttest.GET("/big"))
	if string(r.Body) != big || r.Chunks < 2 {
		t.Errorf("big body: %d bytes in %d frames, want %d in several", len(r.Body), r.Chunks, len(big))
	}
	expect(t, "again", h.Do(hosttest.GET("/big")), 200, "MISS", "")
	if metric(h, "not_stored_too_large_total") != 2 {
		t.Errorf("not_stored_too_large_total = %d, want 2", metric(h, "not_stored_too_large_total"))
	}
}

func TestRequestDirectives(t *testing.T) {
	o := newOrigin(t)
	h := newCache(t, `{}`, o)
	h.Do(hosttest.GET("/d"))
	expect(t, "no-store request", h.Do(hosttest.GET("/d").Header("cache-control", "no-store")), 200, "BYPASS", "body of /d #2")
	expect(t, "still cached", h.Do(hosttest.GET("/d")), 200, "HIT", "body of /d #1")
	expect(t, "no-cache without validators refetches", h.Do(hosttest.GET("/d").Header("cache-control", "no-cache")), 200, "MISS", "body of /d #3")
	expect(t, "refreshed entry", h.Do(hosttest.GET("/d")), 200, "HIT", "body of /d #3")
	h.Clock().Advance(30 * time.Second)
	expect(t, "max-age=10 refetches", h.Do(hosttest.GET("/d").Header("cache-control", "max-age=10")), 200, "MISS", "body of /d #4")
	h.Clock().Advance(70 * time.Second)
	expect(t, "max-stale accepts stale", h.Do(hosttest.GET("/d").Header("cache-control", "max-stale=30")), 200, "STALE", "body of /d #4")
	r := h.Do(hosttest.GET("/nothing").Header("cache-control", "only-if-cached"))
	if r.Status != 504 || o.hits("/nothing") != 0 {
		t.Errorf("only-if-cached miss: %s, origin saw %d", r, o.hits("/nothing"))
	}
	expect(t, "only-if-cached hit", h.Do(hosttest.GET("/d").Header("cache-control", "only-if-cached, max-stale")), 200, "STALE", "body of /d #4")
	expect(t, "Pragma no-cache", h.Do(hosttest.GET("/d").Header("pragma", "no-cache")), 200, "MISS", "body of /d #5")
	expect(t, "range bypasses", h.Do(hosttest.GET("/d").Header("range", "bytes=0-1")), 200, "BYPASS", "")
}

func TestConditionalAndRevalidation(t *testing.T) {
	o := newOrigin(t)
	o.answer = func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Cache-Control", "max-age=10")
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("X-Served", "n"+string(rune('0'+n)))
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(304)
			return
		}
		w.Write([]byte("payload"))
	}
	h := newCache(t, `{}`, o)
	h.Do(hosttest.GET("/c"))
	r := h.Do(hosttest.GET("/c").Header("if-none-match", `W/"v1"`))
	if r.Status != 304 || r.Header("etag") != `"v1"` || len(r.Body) != 0 || r.Header("x-cache") != "HIT" {
		t.Errorf("conditional hit: %s", r)
	}
	expect(t, "non-matching conditional", h.Do(hosttest.GET("/c").Header("if-none-match", `"v0"`)), 200, "HIT", "payload")
	h.Clock().Advance(15 * time.Second)
	r = h.Do(hosttest.GET("/c"))
	expect(t, "revalidated", r, 200, "REVALIDATED", "payload")
	if got := o.lastRequest("/c").Header.Get("If-None-Match"); got != `"v1"` {
		t.Errorf("revalidation sent If-None-Match %q", got)
	}
	if r.Header("x-served") != "n2" || r.Header("cache-status") != "concierge; fwd=stale; fwd-status=304" {
		t.Errorf("revalidated response headers: %s", r)
	}
	expect(t, "fresh again", h.Do(hosttest.GET("/c")), 200, "HIT", "payload")
	if o.hits("/c") != 2 || metric(h, "revalidations_total") != 1 {
		t.Errorf("origin saw %d, revalidations %d", o.hits("/c"), metric(h, "revalidations_total"))
	}
	// A 200 to a revalidation replaces the entry.
	o.answer = func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Cache-Control", "max-age=10")
		w.Header().Set("ETag", `"v2"`)
		w.Write([]byte("new payload"))
	}
	h.Clock().Advance(15 * time.Second)
	expect(t, "replaced", h.Do(hosttest.GET("/c")), 200, "MISS", "new payload")
	expect(t, "new entry", h.Do(hosttest.GET("/c")), 200, "HIT", "new payload")
}

func TestVaryVariants(t *testing.T) {
	o := newOrigin(t)
	o.answer = func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Vary", "Accept-Language")
		w.Write([]byte("lang=" + r.Header.Get("Accept-Language")))
	}
	h := newCache(t, `{}`, o)
	get := func(lang string) *hosttest.Request { return hosttest.GET("/v").Header("accept-language", lang) }
	expect(t, "en miss", h.Do(get("en")), 200, "MISS", "lang=en")
	r := h.Do(get("fr"))
	expect(t, "fr miss", r, 200, "MISS", "lang=fr")
	if !strings.Contains(r.Header("cache-status"), "fwd=vary-miss") {
		t.Errorf("fr Cache-Status = %q, want fwd=vary-miss", r.Header("cache-status"))
	}
	expect(t, "en hit", h.Do(get("en")), 200, "HIT", "lang=en")
	expect(t, "fr hit", h.Do(get("fr")), 200, "HIT", "lang=fr")
	expect(t, "fr normalised", h.Do(get(" fr ")), 200, "HIT", "lang=fr")
	// Two field lines are one list: they must not share the variant of
	// their first line.
	r = h.Do(get("en").Header("accept-language", "fr"))
	if r.Header("x-cache") == "HIT" {
		t.Errorf("two Accept-Language lines served the variant of the first: %s", r)
	}
	expect(t, "the same two lines", h.Do(get("en").Header("accept-language", "fr")), 200, "HIT", "")
}

func TestInvalidation(t *testing.T) {
	o := newOrigin(t)
	h := newCache(t, `{}`, o)
	h.Do(hosttest.GET("/items/1"))
	h.Do(hosttest.GET("/items/1?page=2"))
	h.Do(hosttest.GET("/items/2"))
	h.Do(hosttest.GET("/list"))
	post := hosttest.POST("/items/1", "x").Upstream(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Location", "/list")
		w.WriteHeader(204)
	}))
	h.Do(post)
	expect(t, "invalidated", h.Do(hosttest.GET("/items/1")), 200, "MISS", "")
	expect(t, "other query invalidated", h.Do(hosttest.GET("/items/1?page=2")), 200, "MISS", "")
	expect(t, "Content-Location invalidated", h.Do(hosttest.GET("/list")), 200, "MISS", "")
	expect(t, "untouched", h.Do(hosttest.GET("/items/2")), 200, "HIT", "")
	// A failed write invalidates nothing; another origin's Location neither.
	h.Do(hosttest.NewRequest("DELETE", "/items/2").Upstream(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "http://other.example/items/1")
		w.WriteHeader(500)
	})))
	expect(t, "after failed DELETE", h.Do(hosttest.GET("/items/2")), 200, "HIT", "")
	if metric(h, "invalidations_total") != 3 {
		t.Errorf("invalidations_total = %d, want 3", metric(h, "invalidations_total"))
	}
}

func TestPurge(t *testing.T) {
	// token "test", SHA-256 below.
	cfg := `{"purge": {"token_sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}}`
	o := newOrigin(t)
	h := newCache(t, cfg, o)
	h.Do(hosttest.GET("/p"))
	if r := h.Do(hosttest.NewRequest("PURGE", "/p")); r.Status != 401 {
		t.Errorf("PURGE without token: %s", r)
	}
	if r := h.Do(hosttest.NewRequest("PURGE", "/p").Header("x-purge-token", "tes")); r.Status != 403 {
		t.Errorf("PURGE with a wrong token: %s", r)
	}
	expect(t, "still cached", h.Do(hosttest.GET("/p")), 200, "HIT", "")
	if r := h.Do(hosttest.NewRequest("PURGE", "/p").Header("x-purge-token", "test")); r.Status != 200 || string(r.Body) != `{"purged":1}` {
		t.Errorf("PURGE: %s", r)
	}
	if o.hits("/p") != 1 {
		t.Errorf("PURGE reached the origin")
	}
	expect(t, "purged", h.Do(hosttest.GET("/p")), 200, "MISS", "")
	if r := h.Do(hosttest.NewRequest("PURGE", "/none").Header("x-purge-token", "test")); r.Status != 404 {
		t.Errorf("PURGE of nothing: %s", r)
	}
}

func TestRulesAndShadow(t *testing.T) {
	cfg := `{"rules": [
	  {"match": {"prefix": "/api/accounts"}, "enabled": false},
	  {"match": {"prefix": "/api/products"}, "default_ttl": "5m"},
	  {"match": {"prefix": "/shadow"}, "shadow": true}
	]}`
	o := newOrigin(t)
	o.answer = func(w http.ResponseWriter, r *http.Request, n int) {
		if !strings.HasPrefix(r.URL.Path, "/api/products") {
			w.Header().Set("Cache-Control", "max-age=60")
		}
		w.Write([]byte("ok"))
	}
	h := newCache(t, cfg, o)
	for i := 0; i < 2; i++ {
		r := h.Do(hosttest.GET("/api/accounts/1"))
		if r.Header("x-cache") != "" || r.Header("cache-status") != "" {
			t.Errorf("disabled route: %s", r)
		}
		h.Do(hosttest.GET("/api/products/1"))
		if r := h.Do(hosttest.GET("/shadow/1")); r.Header("x-cache") != "" {
			t.Errorf("shadow route marked: %s", r)
		}
	}
	if o.hits("/api/accounts/1") != 2 || o.hits("/api/products/1") != 1 || o.hits("/shadow/1") != 2 {
		t.Errorf("origin hits accounts=%d products=%d shadow=%d, want 2 1 2",
			o.hits("/api/accounts/1"), o.hits("/api/products/1"), o.hits("/shadow/1"))
	}
	if metric(h, "shadow_hits_total") != 1 {
		t.Errorf("shadow_hits_total = %d, want 1", metric(h, "shadow_hits_total"))
	}
}

func TestBadConfigRefused(t *testing.T) {
	h, err := hosttest.Start(hosttest.Plugin("."), hosttest.Config(`{"max_ttl": "0s"}`))
	if err == nil {
		h.Close()
		t.Fatal("a bad configuration was accepted")
	}
	if !strings.Contains(err.Error(), `max_ttl: must be > 0, got "0s"`) {
		t.Errorf("refusal = %v, want the field path", err)
	}
}

// TestStaleIfError: an origin error within the stale-if-error window of a
// stale entry is answered with the entry; past the window, or with
// must-revalidate, the error goes through.
func TestStaleIfError(t *testing.T) {
	cases := []struct {
		name   string
		cc     string // the stored response's Cache-Control
		req    string // the failing request's Cache-Control
		after  time.Duration
		status int
		stale  bool
	}{
		{"within the window", "max-age=10, stale-if-error=60", "", 30 * time.Second, 503, true},
		{"past the window", "max-age=10, stale-if-error=60", "", 90 * time.Second, 503, false},
		{"request directive", "max-age=10", "stale-if-error=60", 30 * time.Second, 502, true},
		{"no directive", "max-age=10", "", 30 * time.Second, 503, false},
		{"must-revalidate", "max-age=10, stale-if-error=60, must-revalidate", "", 30 * time.Second, 503, false},
		{"not an error", "max-age=10, stale-if-error=60", "", 30 * time.Second, 404, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := newOrigin(t)
			o.answer = func(w http.ResponseWriter, r *http.Request, n int) {
				if n > 1 {
					w.WriteHeader(c.status)
					w.Write([]byte("origin error"))
					return
				}
				w.Header().Set("Cache-Control", c.cc)
				w.Header().Set("ETag", `"v1"`)
				w.Write([]byte("good"))
			}
			h := newCache(t, `{}`, o)
			h.Do(hosttest.GET("/e"))
			h.Clock().Advance(c.after)
			req := hosttest.GET("/e")
			if c.req != "" {
				req = req.Header("cache-control", c.req)
			}
			r := h.Do(req)
			if got := r.Status == 200 && string(r.Body) == "good" && r.Header("x-cache") == "STALE"; got != c.stale {
				t.Errorf("%s; served stale = %v, want %v", r, got, c.stale)
			}
			if c.stale && !strings.Contains(r.Header("cache-status"), "fwd-status="+strconv.Itoa(c.status)) {
				t.Errorf("Cache-Status = %q, want fwd-status=%d", r.Header("cache-status"), c.status)
			}
		})
	}
}

func TestPurgePrefixAndTag(t *testing.T) {
	cfg := `{"purge": {"token_sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}}`
	o := newOrigin(t)
	o.answer = func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Cache-Control", "max-age=600")
		switch {
		case strings.HasPrefix(r.URL.Path, "/products/1"):
			w.Header().Set("Surrogate-Key", "product-1 catalogue")
		case strings.HasPrefix(r.URL.Path, "/products/2"):
			w.Header().Set("Cache-Tag", "product-2, catalogue")
		}
		w.Write([]byte("x"))
	}
	h := newCache(t, cfg, o)
	paths := []string{"/products/1", "/products/1/reviews", "/products/2", "/productsX", "/other"}
	fill := func() {
		for _, p := range paths {
			h.Do(hosttest.GET(p))
		}
	}
	cached := func() string {
		var out []string
		for _, p := range paths {
			if h.Do(hosttest.GET(p)).Header("x-cache") == "HIT" {
				out = append(out, p)
			}
		}
		return strings.Join(out, " ")
	}
	purge := func(path string, kv ...string) string {
		r := hosttest.NewRequest("PURGE", path).Header("x-purge-token", "test")
		for i := 0; i+1 < len(kv); i += 2 {
			r = r.Header(kv[i], kv[i+1])
		}
		return string(h.Do(r).Body)
	}
	fill()
	if got := purge("/products", "x-purge-match", "prefix"); got != `{"purged":3}` {
		t.Errorf("prefix purge of /products = %s, want 3", got)
	}
	if got, want := cached(), "/productsX /other"; got != want {
		t.Errorf("after prefix purge, cached %q, want %q", got, want)
	}
	fill()
	if got := purge("/", "x-purge-tag", "product-1"); got != `{"purged":2}` {
		t.Errorf("tag purge of product-1 = %s, want 2", got)
	}
	if got, want := cached(), "/products/2 /productsX /other"; got != want {
		t.Errorf("after tag purge, cached %q, want %q", got, want)
	}
	fill()
	if got := purge("/", "x-purge-tag", "catalogue"); got != `{"purged":3}` {
		t.Errorf("tag purge of catalogue = %s, want 3", got)
	}
	if got := purge("/", "x-purge-match", "prefix"); got != `{"purged":2}` {
		t.Errorf("prefix purge of / = %s, want the 2 left", got)
	}
}

func TestKeyOptionsThroughHost(t *testing.T) {
	o := newOrigin(t)
	h := newCache(t, `{"key": {"query": ["id"], "headers": ["x-tenant"]}}`, o)
	h.Do(hosttest.GET("/k?id=1&utm=a").Header("x-tenant", "t1"))
	expect(t, "other unkept param", h.Do(hosttest.GET("/k?utm=b&id=1").Header("x-tenant", "t1")), 200, "HIT", "body of /k #1")
	expect(t, "other id", h.Do(hosttest.GET("/k?id=2").Header("x-tenant", "t1")), 200, "MISS", "body of /k #2")
	expect(t, "other tenant", h.Do(hosttest.GET("/k?id=1").Header("x-tenant", "t2")), 200, "MISS", "body of /k #3")
	// A keyed poisoning header is no longer refused: it is in the key.
	o2 := newOrigin(t)
	h2 := newCache(t, `{"key": {"query": "none", "headers": ["x-forwarded-host"]}}`, o2)
	h2.Do(hosttest.GET("/f?a=1").Header("x-forwarded-host", "a.example"))
	expect(t, "same forwarded host, query ignored", h2.Do(hosttest.GET("/f?a=2").Header("x-forwarded-host", "a.example")), 200, "HIT", "body of /f #1")
	expect(t, "other forwarded host", h2.Do(hosttest.GET("/f").Header("x-forwarded-host", "b.example")), 200, "MISS", "body of /f #2")
}

func TestIfModifiedSinceHit(t *testing.T) {
	o := newOrigin(t)
	lm := "Mon, 01 Jan 2024 00:00:00 GMT"
	o.answer = func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Last-Modified", lm)
		w.Write([]byte("doc"))
	}
	h := newCache(t, `{}`, o)
	h.Do(hosttest.GET("/ims"))
	if r := h.Do(hosttest.GET("/ims").Header("if-modified-since", "Tue, 02 Jan 2024 00:00:00 GMT")); r.Status != 304 || r.Header("last-modified") != lm {
		t.Errorf("If-Modified-Since after Last-Modified: %s, want 304", r)
	}
	expect(t, "If-Modified-Since before Last-Modified", h.Do(hosttest.GET("/ims").Header("if-modified-since", "Sun, 31 Dec 2023 00:00:00 GMT")), 200, "HIT", "doc")
	expect(t, "unparsable If-Modified-Since", h.Do(hosttest.GET("/ims").Header("if-modified-since", "yesterday")), 200, "HIT", "doc")
}

func TestOnlyIfCachedProblemJSON(t *testing.T) {
	h := newCache(t, `{"error_format": "problem+json"}`, newOrigin(t), hosttest.GenerateRequestID())
	r := h.Do(hosttest.GET("/x").Header("cache-control", "only-if-cached"))
	if r.Status != 504 || r.Header("content-type") != "application/problem+json" || !strings.Contains(string(r.Body), `"status":504`) {
		t.Errorf("only-if-cached miss: %s content-type %q", r, r.Header("content-type"))
	}
	if id := r.Header("x-request-id"); id == "" || !strings.Contains(string(r.Body), id) {
		t.Errorf("504 body %s does not carry the request ID %q", r.Body, id)
	}
}

// eventually polls cond for up to 10 s of real time: background
// revalidations run on the host's own goroutines.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestStaleWhileRevalidate: within the window the client gets the stale
// entry at once and the root context revalidates it through the route's
// cluster; the next request gets the fresh copy.
func TestStaleWhileRevalidate(t *testing.T) {
	o := newOrigin(t)
	o.answer = func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Cache-Control", "max-age=10, stale-while-revalidate=60")
		w.Write([]byte("version " + strconv.Itoa(n)))
	}
	h := newCache(t, `{}`, o, hosttest.Cluster("products", o), hosttest.Workers(1))
	get := func() *hosttest.Request {
		return hosttest.GET("/swr").Attribute("xds.cluster_name", []byte("products"))
	}
	h.Do(get())
	h.Clock().Advance(20 * time.Second)
	r := h.Do(get())
	expect(t, "stale, revalidating", r, 200, "STALE", "version 1")
	if r.Header("cache-status") != "concierge; hit; detail=stale-while-revalidate" {
		t.Errorf("Cache-Status = %q", r.Header("cache-status"))
	}
	eventually(t, "the background revalidation", func() bool { return metric(h, "stores_total") == 2 })
	expect(t, "refreshed", h.Do(get()), 200, "HIT", "version 2")
	// Past the window: an ordinary miss.
	h.Clock().Advance(200 * time.Second)
	expect(t, "past the window", h.Do(get()), 200, "MISS", "version 3")
	// Without a known cluster: an ordinary miss too.
	h.Clock().Advance(20 * time.Second)
	expect(t, "no cluster", h.Do(hosttest.GET("/swr")), 200, "MISS", "version 4")
	if metric(h, "stale_while_revalidate_total") != 1 {
		t.Errorf("stale_while_revalidate_total = %d, want 1", metric(h, "stale_while_revalidate_total"))
	}
}

// TestStaleWhileRevalidate304: a background 304 refreshes the entry.
func TestStaleWhileRevalidate304(t *testing.T) {
	o := newOrigin(t)
	o.answer = func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Cache-Control", "max-age=10, stale-while-revalidate=60")
		w.Header().Set("ETag", `"e1"`)
		if r.Header.Get("If-None-Match") == `"e1"` {
			w.WriteHeader(304)
			return
		}
		w.Write([]byte("body " + strconv.Itoa(n)))
	}
	h := newCache(t, `{}`, o, hosttest.Cluster("products", o), hosttest.Workers(1))
	get := func() *hosttest.Request {
		return hosttest.GET("/swr304").Attribute("xds.cluster_name", []byte("products"))
	}
	h.Do(get())
	h.Clock().Advance(20 * time.Second)
	expect(t, "stale", h.Do(get()), 200, "STALE", "body 1")
	eventually(t, "the background revalidation", func() bool { return metric(h, "stores_total") == 2 })
	r := h.Do(get())
	expect(t, "refreshed by 304", r, 200, "HIT", "body 1")
	if a := r.Header("age"); a != "0" && a != "1" {
		t.Errorf("Age after the 304 refresh = %q, want 0", r.Header("age"))
	}
	if o.hits("/swr304") != 2 {
		t.Errorf("origin saw %d requests, want 2", o.hits("/swr304"))
	}
}

// TestCoalescing: while one miss for a key is at the origin, others for
// the same key on any worker wait for it and are answered from the entry
// it stores; the origin sees one request.
func TestCoalescing(t *testing.T) {
	o := newOrigin(t)
	release := make(chan struct{})
	o.answer = func(w http.ResponseWriter, r *http.Request, n int) {
		if r.URL.Path == "/slow" {
			<-release
		}
		w.Header().Set("Cache-Control", "max-age=60")
		w.Write([]byte("answer " + strconv.Itoa(n)))
	}
	h := newCache(t, `{"coalesce_timeout": "5s"}`, o, hosttest.Workers(2))
	first := h.Stream(hosttest.GET("/slow")).SendHeaders()
	eventually(t, "the first request at the origin", func() bool { return o.hits("/slow") == 1 })
	var waiters []*hosttest.Stream
	for i := 0; i < 4; i++ {
		waiters = append(waiters, h.Stream(hosttest.GET("/slow")).SendHeaders())
	}
	eventually(t, "the others to wait", func() bool { return metric(h, "coalesced_total") == 4 })
	close(release)
	if r, ok := first.Wait(5 * time.Second); !ok || string(r.Body) != "answer 1" {
		t.Fatalf("first: %v %v", r, ok)
	}
	for i, s := range waiters {
		r, ok := s.Wait(5 * time.Second)
		if !ok || string(r.Body) != "answer 1" || r.Header("cache-status") != "concierge; hit; detail=coalesced" {
			t.Errorf("waiter %d: %v (ok %v)", i, r, ok)
		}
	}
	if o.hits("/slow") != 1 {
		t.Errorf("origin saw %d requests, want 1", o.hits("/slow"))
	}
}

// TestCoalescingNotCacheable: when the answer in flight is not stored, the
// waiters go upstream themselves; and past coalesce_timeout they do not
// wait any longer.
func TestCoalescingNotCacheable(t *testing.T) {
	o := newOrigin(t)
	release := make(chan struct{})
	o.answer = func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			<-release
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Write([]byte("answer " + strconv.Itoa(n)))
	}
	h := newCache(t, `{"coalesce_timeout": "5s"}`, o, hosttest.Workers(2))
	first := h.Stream(hosttest.GET("/ns")).SendHeaders()
	eventually(t, "the first request at the origin", func() bool { return o.hits("/ns") == 1 })
	second := h.Stream(hosttest.GET("/ns")).SendHeaders()
	eventually(t, "the second to wait", func() bool { return metric(h, "coalesced_total") == 1 })
	close(release)
	first.Wait(5 * time.Second)
	if r, ok := second.Wait(5 * time.Second); !ok || string(r.Body) != "answer 2" {
		t.Errorf("second after a no-store answer: %v %v, want its own answer", r, ok)
	}

	o2 := newOrigin(t)
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	o2.answer = func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			<-block
		}
		w.Header().Set("Cache-Control", "max-age=60")
		w.Write([]byte("answer " + strconv.Itoa(n)))
	}
	h2 := newCache(t, `{"coalesce_timeout": "2s"}`, o2, hosttest.Workers(2))
	h2.Stream(hosttest.GET("/hang")).SendHeaders()
	eventually(t, "the first request at the origin", func() bool { return o2.hits("/hang") == 1 })
	waiter := h2.Stream(hosttest.GET("/hang")).SendHeaders()
	eventually(t, "the second to wait", func() bool { return metric(h2, "coalesced_total") == 1 })
	h2.Clock().Advance(3 * time.Second)
	if r, ok := waiter.Wait(5 * time.Second); !ok || string(r.Body) != "answer 2" {
		t.Errorf("waiter past coalesce_timeout: %v %v, want its own answer", r, ok)
	}
}

// TestStaleIfErrorRouterTimeout: the router's own 504 (route timeout)
// passes through the filter like an origin error, so stale-if-error
// covers an origin that does not answer at all.
func TestStaleIfErrorRouterTimeout(t *testing.T) {
	o := newOrigin(t)
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	o.answer = func(w http.ResponseWriter, r *http.Request, n int) {
		if n > 1 {
			<-block
			return
		}
		w.Header().Set("Cache-Control", "max-age=10, stale-if-error=600")
		w.Write([]byte("good"))
	}
	h := newCache(t, `{}`, o)
	h.Do(hosttest.GET("/t"))
	h.Clock().Advance(20 * time.Second)
	s := h.Stream(hosttest.GET("/t").Timeout(time.Second)).SendHeaders()
	eventually(t, "the request at the origin", func() bool { return o.hits("/t") == 2 })
	h.Clock().Advance(2 * time.Second)
	r, ok := s.Wait(5 * time.Second)
	if !ok || r.Status != 200 || string(r.Body) != "good" || r.Header("x-cache") != "STALE" ||
		r.Header("cache-status") != "concierge; hit; fwd=stale; fwd-status=504" {
		t.Errorf("route timeout with stale-if-error: %v (ok %v) cache-status %q", r, ok, r.Header("cache-status"))
	}
}

// TestPurgeAcrossShards: entries of one prefix, one tag and one URI's
// variants land in many index shards; purges and invalidation find them
// all, and the bytes gauge comes back to exactly zero.
func TestPurgeAcrossShards(t *testing.T) {
	cfg := `{"purge": {"token_sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}}`
	o := newOrigin(t)
	o.answer = func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("Cache-Tag", "many")
		w.Write([]byte("x"))
	}
	h := newCache(t, cfg, o)
	const n = 64
	fill := func() {
		for i := 0; i < n; i++ {
			h.Do(hosttest.GET("/many/" + strconv.Itoa(i)))
		}
	}
	purge := func(path string, kv ...string) string {
		r := hosttest.NewRequest("PURGE", path).Header("x-purge-token", "test")
		for i := 0; i+1 < len(kv); i += 2 {
			r = r.Header(kv[i], kv[i+1])
		}
		return string(h.Do(r).Body)
	}
	layout := newLayout("response-cache", defaultMaxEntries, defaultMaxTotalBytes, defaultMaxEntryBytes)
	shardsUsed := func() (used int) {
		for _, k := range layout.indexKeys {
			if v, _, _ := h.SharedData("").Get(k); index(v).total() > 0 {
				used++
			}
		}
		return used
	}
	for _, c := range []struct{ name, path, header, value string }{
		{"prefix", "/many", "x-purge-match", "prefix"},
		{"tag", "/", "x-purge-tag", "many"},
	} {
		fill()
		if got := metric(h, "stores_total"); got%n != 0 {
			t.Fatalf("%s: stores_total = %d, want every one of %d URLs stored", c.name, got, n)
		}
		if used := shardsUsed(); used < layout.shards()/2 {
			t.Fatalf("%s: %d URLs in %d of %d shards", c.name, n, used, layout.shards())
		}
		if got := purge(c.path, c.header, c.value); got != `{"purged":64}` {
			t.Errorf("%s purge = %s, want 64", c.name, got)
		}
		if used, gauge := shardsUsed(), metric(h, "bytes_stored"); used != 0 || gauge != 0 {
			t.Errorf("%s purge: %d shards still count bytes, bytes_stored = %d", c.name, used, gauge)
		}
	}
	// Variants of one URI (Vary) hash to different shards; a POST drops all.
	o.answer = func(w http.ResponseWriter, r *http.Request, n int) {
		if r.Method == "POST" {
			w.WriteHeader(204)
			return
		}
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("Vary", "x-variant")
		w.Write([]byte("v"))
	}
	for i := 0; i < 16; i++ {
		h.Do(hosttest.GET("/varied").Header("x-variant", strconv.Itoa(i)))
	}
	if used := shardsUsed(); used < 4 {
		t.Fatalf("16 variants in %d shards", used)
	}
	h.Do(hosttest.POST("/varied", "x"))
	if used, gauge := shardsUsed(), metric(h, "bytes_stored"); used != 0 || gauge != 0 {
		t.Errorf("after POST: %d shards still count bytes, bytes_stored = %d", used, gauge)
	}
	for i := 0; i < 16; i++ {
		if r := h.Do(hosttest.GET("/varied").Header("x-variant", strconv.Itoa(i))); r.Header("x-cache") == "HIT" {
			t.Errorf("variant %d still served after the POST", i)
		}
	}
}
