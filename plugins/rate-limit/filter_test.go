//go:build !wasm

package main

import (
	"strings"
	"testing"
	"time"

	"github.com/concierge-wasm/concierge/hosttest"
)

// TestBurstThenRefill: a burst of max_tokens passes, the next is a 429
// with Retry-After and the JSON body, and refill lets requests through
// again at the configured rate.
func TestBurstThenRefill(t *testing.T) {
	h := newHost(t, `{"limits":[{"max_tokens":3,"tokens_per_fill":1,"fill_interval":"2s"}],"key":["ip"]}`)
	for i := 0; i < 3; i++ {
		r := h.Do(from("203.0.113.1", "/a"))
		wantStatus(t, r, 200)
		wantHeader(t, r, "x-ratelimit-limit", "3")
		wantHeader(t, r, "x-ratelimit-remaining", []string{"2", "1", "0"}[i])
	}
	r := h.Do(from("203.0.113.1", "/a"))
	wantStatus(t, r, 429)
	if r.Upstream != nil {
		t.Errorf("denied request reached the upstream")
	}
	wantHeader(t, r, "retry-after", "2")
	wantHeader(t, r, "content-type", "application/json")
	wantHeader(t, r, "x-request-id", "req-1")
	wantHeader(t, r, "x-ratelimit-remaining", "0")
	wantHeader(t, r, "x-ratelimit-reset", "6")
	if got := string(r.Body); got != `{"error":"rate limit exceeded","retryAfter":2,"requestId":"req-1"}` {
		t.Errorf("429 body = %s", got)
	}
	// Another client is not affected.
	wantStatus(t, h.Do(from("203.0.113.2", "/a")), 200)
	h.Clock().Advance(2 * time.Second)
	wantStatus(t, h.Do(from("203.0.113.1", "/a")), 200)
	wantStatus(t, h.Do(from("203.0.113.1", "/a")), 429)
	if a, d := metric(t, h, metricAllowed), metric(t, h, metricDenied); a != 5 || d != 2 {
		t.Errorf("allowed %d denied %d, want 5 and 2", a, d)
	}
	if len(h.LogsContaining(`denied status=429 by=local limit="default" retry_after=2 request_id="req-1" rule=-1`)) != 2 {
		t.Errorf("denial log lines missing: %v", h.LogsContaining("denied"))
	}
}

// TestRetryAfterValues: whole seconds until a token, rounded up, at least 1.
func TestRetryAfterValues(t *testing.T) {
	h := newHost(t, `{"limits":[{"requests":1,"per":"1m"}],"key":["ip"]}`)
	wantStatus(t, h.Do(from("192.0.2.1", "/")), 200)
	for _, c := range []struct {
		advance time.Duration
		want    string
	}{{0, "60"}, {30 * time.Second, "30"}, {29*time.Second + 500*time.Millisecond, "1"}} {
		h.Clock().Advance(c.advance)
		r := h.Do(from("192.0.2.1", "/"))
		wantStatus(t, r, 429)
		wantHeader(t, r, "retry-after", c.want)
		if got := denialBody(t, r)["retryAfter"]; got != float64(mustAtoi(t, c.want)) {
			t.Errorf("retryAfter = %v, want %s", got, c.want)
		}
	}
}

func mustAtoi(t testing.TB, s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// TestMultipleLimits: the request passes only when every bucket has a
// token; the headers describe the tightest.
func TestMultipleLimits(t *testing.T) {
	h := newHost(t, `{"limits":[{"name":"second","requests":2,"per":"1s"},{"name":"minute","requests":3,"per":"1m"}],"key":["ip"],"headers":"both"}`)
	r := h.Do(from("192.0.2.9", "/"))
	wantStatus(t, r, 200)
	wantHeader(t, r, "ratelimit-policy", `"second";q=2;w=1, "minute";q=3;w=60`)
	wantHeader(t, r, "ratelimit", `"second";r=1;t=1`)
	wantStatus(t, h.Do(from("192.0.2.9", "/")), 200)
	r = h.Do(from("192.0.2.9", "/"))
	wantStatus(t, r, 429) // the second limit
	wantHeader(t, r, "retry-after", "1")
	h.Clock().Advance(time.Second)
	r = h.Do(from("192.0.2.9", "/"))
	wantStatus(t, r, 200) // the minute bucket had 1 left: the denial took nothing
	wantHeader(t, r, "x-ratelimit-limit", "3")
	wantHeader(t, r, "x-ratelimit-remaining", "0")
	h.Clock().Advance(time.Second)
	r = h.Do(from("192.0.2.9", "/"))
	wantStatus(t, r, 429)
	wantHeader(t, r, "ratelimit", `"minute";r=0;t=58`)
	wantHeader(t, r, "retry-after", "18") // 0.9 token at 3/min
}

// TestHeaderFormats: each `headers` value on an allowed and a denied
// response.
func TestHeaderFormats(t *testing.T) {
	all := []string{"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "ratelimit-policy", "ratelimit"}
	cases := []struct {
		format string
		want   map[string]string
	}{
		{"x-ratelimit", map[string]string{"x-ratelimit-limit": "2", "x-ratelimit-remaining": "1", "x-ratelimit-reset": "5"}},
		{"ietf", map[string]string{"ratelimit-policy": `"default";q=2;w=10`, "ratelimit": `"default";r=1;t=5`}},
		{"both", map[string]string{"x-ratelimit-limit": "2", "x-ratelimit-remaining": "1", "x-ratelimit-reset": "5",
			"ratelimit-policy": `"default";q=2;w=10`, "ratelimit": `"default";r=1;t=5`}},
		{"none", map[string]string{}},
	}
	for _, c := range cases {
		t.Run(c.format, func(t *testing.T) {
			h := newHost(t, `{"limits":[{"max_tokens":2,"fill_interval":"5s"}],"key":["ip"],"headers":"`+c.format+`"}`)
			r := h.Do(from("192.0.2.3", "/"))
			wantStatus(t, r, 200)
			for _, k := range all {
				wantHeader(t, r, k, c.want[k])
			}
			h.Do(from("192.0.2.3", "/"))
			r = h.Do(from("192.0.2.3", "/"))
			wantStatus(t, r, 429)
			wantHeader(t, r, "retry-after", "5")
			if c.format != "none" && r.Header("x-ratelimit-remaining")+r.Header("ratelimit") == "" {
				t.Errorf("429 carries no rate limit headers: %v", r)
			}
		})
	}
}

// TestOverridesByIdentity: limits follow the verified identity property,
// never a header the client sends.
func TestOverridesByIdentity(t *testing.T) {
	h := newIdentityHost(t, `{"limits":[{"requests":1,"per":"1m"}],
		"overrides":[{"identity":"partner-*","limits":[{"requests":3,"per":"1m"}]}]}`)
	for i := 0; i < 3; i++ {
		wantStatus(t, h.Do(asIdentity(from("192.0.2.50", "/"), "partner-acme")), 200)
	}
	wantStatus(t, h.Do(asIdentity(from("192.0.2.50", "/"), "partner-acme")), 429)
	// alice shares the client address but has her own (smaller) bucket.
	wantStatus(t, h.Do(asIdentity(from("192.0.2.50", "/"), "alice")), 200)
	wantStatus(t, h.Do(asIdentity(from("192.0.2.50", "/"), "alice")), 429)
	// Without an identity the key falls back to the address, and identity
	// headers a client sets change nothing.
	wantStatus(t, h.Do(from("192.0.2.50", "/").Header("x-user-id", "partner-acme").Header("x-consumer", "partner-x")), 200)
	wantStatus(t, h.Do(from("192.0.2.50", "/").Header("x-user-id", "bob")), 429)
}

// TestKeyByTrustedProxy: x-forwarded-for counts only behind a trusted
// proxy.
func TestKeyByTrustedProxy(t *testing.T) {
	h := newHost(t, `{"limits":[{"requests":1,"per":"1m"}],"key":["ip"],"trusted_proxies":["10.0.0.0/8"]}`)
	wantStatus(t, h.Do(from("10.0.0.2", "/").Header("x-forwarded-for", "198.51.100.1")), 200)
	wantStatus(t, h.Do(from("10.0.0.3", "/").Header("x-forwarded-for", "198.51.100.1")), 429)
	wantStatus(t, h.Do(from("10.0.0.2", "/").Header("x-forwarded-for", "198.51.100.2")), 200)
	// An untrusted peer cannot pick its key with the header.
	wantStatus(t, h.Do(from("203.0.113.7", "/").Header("x-forwarded-for", "198.51.100.3")), 200)
	wantStatus(t, h.Do(from("203.0.113.7", "/").Header("x-forwarded-for", "198.51.100.4")), 429)
}

func TestKeyByHeaderRouteAndFallback(t *testing.T) {
	h := newHost(t, `{"limits":[{"requests":1,"per":"1m"}],"key":["header:x-api-key+route","ip"]}`)
	wantStatus(t, h.Do(from("192.0.2.1", "/").Header("x-api-key", "k1").Route("orders")), 200)
	wantStatus(t, h.Do(from("192.0.2.2", "/").Header("x-api-key", "k1").Route("orders")), 429)
	wantStatus(t, h.Do(from("192.0.2.2", "/").Header("x-api-key", "k1").Route("users")), 200)
	// No route: the next alternative, the address, which already spent its token.
	wantStatus(t, h.Do(from("192.0.2.2", "/").Header("x-api-key", "k1")), 200)
	wantStatus(t, h.Do(from("192.0.2.2", "/")), 429)
}

// TestRulesAndShadow: per-route limits, a route switched off, and a
// shadow route that counts but never denies (and shows no headers).
func TestRulesAndShadow(t *testing.T) {
	h := newHost(t, `{"limits":[{"requests":2,"per":"1m"}],"key":["ip"],"rules":[
		{"match":{"prefix":"/healthz"},"enabled":false},
		{"match":{"prefix":"/api/orders"},"limits":[{"requests":1,"per":"1m"}]},
		{"match":{"prefix":"/api/new"},"shadow":true}]}`)
	for i := 0; i < 5; i++ {
		r := h.Do(from("192.0.2.7", "/healthz"))
		wantStatus(t, r, 200)
		wantHeader(t, r, "x-ratelimit-limit", "")
	}
	wantStatus(t, h.Do(from("192.0.2.7", "/api/orders/1")), 200)
	r := h.Do(from("192.0.2.7", "/api/orders/2"))
	wantStatus(t, r, 429)
	// /api/users has the top-level limit and its own buckets.
	wantStatus(t, h.Do(from("192.0.2.7", "/api/users")), 200)
	wantStatus(t, h.Do(from("192.0.2.7", "/api/users")), 200)
	wantStatus(t, h.Do(from("192.0.2.7", "/api/users")), 429)
	// Shadow: the same limits as the top level, and the same buckets, so
	// this client is over; it is counted and let through.
	for i := 0; i < 3; i++ {
		r := h.Do(from("192.0.2.7", "/api/new"))
		wantStatus(t, r, 200)
		wantHeader(t, r, "x-ratelimit-limit", "")
	}
	if s := metric(t, h, metricShadowed); s != 3 {
		t.Errorf("shadowed = %d, want 3", s)
	}
	if n := len(h.LogsContaining(`shadow: would deny status=429 by=local limit="default" retry_after=30 request_id="req-1" rule=2; let through`)); n != 3 {
		t.Errorf("shadow log lines = %d, want 3: %v", n, h.LogsContaining("shadow"))
	}
}

func TestProblemJSON(t *testing.T) {
	h := newHost(t, `{"limits":[{"requests":1,"per":"1s"}],"key":["ip"],"error_format":"problem+json"}`)
	h.Do(from("192.0.2.1", "/"))
	r := h.Do(from("192.0.2.1", "/"))
	wantStatus(t, r, 429)
	wantHeader(t, r, "content-type", "application/problem+json")
	if got := string(r.Body); got != `{"type":"about:blank","title":"Too Many Requests","status":429,"detail":"rate limit exceeded","retryAfter":1,"requestId":"req-1"}` {
		t.Errorf("problem body = %s", got)
	}
}

// TestBadConfigRefusedAtStart: the host refuses the filter with the
// field path in the error log.
func TestBadConfigRefusedAtStart(t *testing.T) {
	for _, c := range []struct{ cfg, want string }{
		{`{}`, `limits: required`},
		{`{"limits":[{"max_tokens":5,"fill_interval":"0s"}]}`, `limits[0].fill_interval: must be > 0, got "0s"`},
		{`{"limits":[{"requests":1,"per":"1s"}],"key":["cookie"]}`, `key[0]: unknown key part "cookie"; parts are identity, ip, header:<name>, route, path, method`},
		{`{"limits":[{"requests":1,"per":"1s"}],"max_tokns":3}`, `unknown field "max_tokns"`},
	} {
		h, err := hosttest.Start(hosttest.Plugin("."), hosttest.Config(c.cfg), hosttest.Workers(1))
		if err == nil {
			h.Close()
			t.Errorf("Start(%s) succeeded, want refusal", c.cfg)
			continue
		}
		if !strings.Contains(err.Error(), "[error] "+c.want) {
			t.Errorf("Start(%s) = %v\nwant the log line %q", c.cfg, err, c.want)
		}
	}
}
