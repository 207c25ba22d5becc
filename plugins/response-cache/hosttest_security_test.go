//go:build !wasm

package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/concierge-wasm/concierge/hosttest"
)

// TestPoisoning is the cache-poisoning set: an attacker's request must
// never leave behind an entry that another client is then served.
func TestPoisoning(t *testing.T) {
	// The origin reflects what frameworks commonly read into its body and
	// marks everything cacheable for a minute, the worst case.
	reflecting := func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Cache-Control", "max-age=60")
		user := r.Header.Get("Authorization") + r.Header.Get("Cookie")
		w.Write([]byte("host=" + r.Header.Get("X-Forwarded-Host") + r.Header.Get("X-Original-Url") +
			" method=" + r.Header.Get("X-Http-Method-Override") + " user=" + user))
	}
	cases := []struct {
		name     string
		cfg      string
		answer   func(w http.ResponseWriter, r *http.Request, n int)
		attacker *hosttest.Request
		victim   *hosttest.Request
		clean    string // what the victim must get
	}{
		{"x-forwarded-host", `{}`, reflecting,
			hosttest.GET("/home").Header("x-forwarded-host", "evil.example"), hosttest.GET("/home"), "host= method= user="},
		{"x-original-url", `{}`, reflecting,
			hosttest.GET("/home").Header("x-original-url", "/admin"), hosttest.GET("/home"), "host= method= user="},
		{"method override", `{}`, reflecting,
			hosttest.GET("/home").Header("x-http-method-override", "DELETE"), hosttest.GET("/home"), "host= method= user="},
		{"authorization response", `{}`, reflecting,
			hosttest.GET("/me").Header("authorization", "Bearer alice"), hosttest.GET("/me").Header("authorization", "Bearer bob"), "host= method= user=Bearer bob"},
		// Web cache deception: a route with default_ttl, an origin that
		// answers /api/users/me.css with the user's page and no
		// Cache-Control. The cookie keeps default_ttl off.
		{"path confusion with default_ttl", `{"rules": [{"match": {"prefix": "/api/users"}, "default_ttl": "5m"}]}`,
			func(w http.ResponseWriter, r *http.Request, n int) {
				w.Write([]byte("user=" + r.Header.Get("Cookie")))
			},
			hosttest.GET("/api/users/me.css").Header("cookie", "sid=alice"),
			hosttest.GET("/api/users/me.css").Header("cookie", "sid=bob"), "user=sid=bob"},
		{"set-cookie response", `{}`, func(w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("Cache-Control", "max-age=60")
			w.Header().Set("Set-Cookie", "sid=attacker-fixed")
			w.Write([]byte("welcome"))
		}, hosttest.GET("/login"), hosttest.GET("/login"), "welcome"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := newOrigin(t)
			o.answer = c.answer
			h := newCache(t, c.cfg, o)
			h.Do(c.attacker)
			v := h.Do(c.victim)
			if string(v.Body) != c.clean || v.Header("x-cache") == "HIT" {
				t.Errorf("victim got %s, want a fresh %q", v, c.clean)
			}
			if strings.Contains(v.Header("set-cookie"), "attacker") && v.Header("x-cache") == "HIT" {
				t.Errorf("victim got the attacker's cookie from the cache")
			}
		})
	}
	// Set-Cookie with store_set_cookie: stored, but the cookie itself is
	// never replayed.
	o := newOrigin(t)
	o.answer = cases[len(cases)-1].answer
	h := newCache(t, `{"store_set_cookie": true}`, o)
	h.Do(hosttest.GET("/login"))
	v := h.Do(hosttest.GET("/login"))
	if v.Header("x-cache") != "HIT" || v.Header("set-cookie") != "" {
		t.Errorf("store_set_cookie hit: %s set-cookie=%q, want a hit without the cookie", v, v.Header("set-cookie"))
	}
	// Path confusion without credentials: distinct paths, distinct entries.
	o2 := newOrigin(t)
	h2 := newCache(t, `{}`, o2)
	h2.Do(hosttest.GET("/api/users/me"))
	expect(t, "me.css", h2.Do(hosttest.GET("/api/users/me.css")), 200, "MISS", "body of /api/users/me.css #1")
	expect(t, "me%2Ecss", h2.Do(hosttest.GET("/api/users/me%2Ecss")), 200, "MISS", "")
}

// TestPrivatePerUser: with key.identity, private responses are cached per
// verified user and never served to another user or to anonymous callers.
func TestPrivatePerUser(t *testing.T) {
	o := newOrigin(t)
	o.answer = func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Cache-Control", "private, max-age=60")
		w.Write([]byte("profile of " + r.Header.Get("X-Test-User")))
	}
	h := newCacheWithIdentity(t, `{"key": {"identity": true}}`, o)
	get := func(user string) *hosttest.Request {
		r := hosttest.GET("/api/users/me").Header("x-test-user", user)
		if user != "" {
			r = as(r, user)
		}
		return r
	}
	expect(t, "alice first", h.Do(get("alice")), 200, "MISS", "profile of alice")
	expect(t, "bob first", h.Do(get("bob")), 200, "MISS", "profile of bob")
	expect(t, "alice again", h.Do(get("alice")), 200, "HIT", "profile of alice")
	expect(t, "bob again", h.Do(get("bob")), 200, "HIT", "profile of bob")
	r := h.Do(get(""))
	expect(t, "anonymous", r, 200, "MISS", "profile of ")
	expect(t, "anonymous again (private, no identity: not stored)", h.Do(get("")), 200, "MISS", "profile of ")
	// A forged identity header is not an identity: only the property is.
	r = h.Do(hosttest.GET("/api/users/me").Header("x-user-id", "alice"))
	if strings.Contains(string(r.Body), "alice") {
		t.Errorf("x-user-id header got alice's entry: %s", r)
	}
	// Without key.identity, private is never stored, identity or not.
	o2 := newOrigin(t)
	o2.answer = o.answer
	h2 := newCacheWithIdentity(t, `{}`, o2)
	h2.Do(get("alice"))
	expect(t, "no key.identity", h2.Do(get("bob")), 200, "MISS", "profile of bob")
}
