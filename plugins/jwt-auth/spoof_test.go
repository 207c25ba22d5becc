package main

// Identity headers a client sends in spellings an upstream reads as the
// real ones (x_user_id is HTTP_X_USER_ID to CGI, WSGI, Rack and PHP), in
// headers and in trailers, through the compiled module.

import (
	"strings"
	"testing"

	"github.com/concierge-wasm/concierge/hosttest"
)

// spoofRules are a public route, an allow_missing route and a shadow
// route; everything else is protected.
const spoofRules = `,"rules":[
	{"match":{"prefix":"/public"},"enabled":false},
	{"match":{"prefix":"/maybe"},"allow_missing":true},
	{"match":{"prefix":"/dry"},"shadow":true}]`

// spoofHeaders are the client's identity headers in every spelling.
var spoofHeaders = [][2]string{
	{"x_user_id", "admin"},
	{"x-user_id", "admin"},
	{"X_User_Roles", "reader,admin"},
	{"x-user-id", "admin"},
	{"x_consumer", "evil"},
	{"x_consumer_permissions", "*"},
	{"x-consumer-permissions", "*"},
	{"X_JWT_PAYLOAD", "e30"},
}

// spoofConfig is the test configuration with spoofRules, extra top-level
// members, and a payload header (x-jwt-payload) as a configured identity
// header.
func spoofConfig(tb testing.TB, extra string) string {
	return strings.Replace(withRealm(tb, extra+spoofRules), `"hmac_secret"`, `"forward_payload_header":"x-jwt-payload","hmac_secret"`, 1)
}

func spoofed(r *hosttest.Request) *hosttest.Request {
	for _, h := range spoofHeaders {
		r.Header(h[0], h[1])
	}
	return r
}

// wantNoSpoofedIdentity fails when the upstream got an identity header in
// any spelling other than the ones the filter set (want: canonical name →
// value; the filter sets them in their canonical spelling).
func wantNoSpoofedIdentity(tb testing.TB, pairs []hosttest.Pair, want map[string]string) {
	tb.Helper()
	// An oracle of its own rather than identity.Guard: what CGI does.
	owned := map[string]bool{"x-user-id": true, "x-user-roles": true, "x-consumer": true,
		"x-consumer-permissions": true, "x-jwt-payload": true}
	seen := map[string]bool{}
	for _, p := range pairs {
		if !owned[strings.ReplaceAll(strings.ToLower(p.Key), "_", "-")] {
			continue
		}
		if v, ok := want[p.Key]; !ok || v != p.Value || seen[p.Key] {
			tb.Errorf("the upstream got %s: %q; want only the filter's identity headers %v", p.Key, p.Value, want)
		}
		seen[p.Key] = true
	}
	for k := range want {
		if !seen[k] {
			tb.Errorf("the upstream did not get %s", k)
		}
	}
}

// TestWasmSpoofedSpellingsStripped: with the default "strip", no spelling
// of an identity header reaches the upstream on a protected route (the
// reader's token must not become reader,admin), a public one, an
// allow_missing one or a shadow one.
func TestWasmSpoofedSpellingsStripped(t *testing.T) {
	h := newHost(t, spoofConfig(t, ""))
	tok := goodToken(t, "ES256", h.Clock().Now())
	verified := map[string]string{"x-user-id": "user-1", "x-user-roles": "reader,writer"}
	for _, tc := range []struct {
		name, path, token string
		want              map[string]string
	}{
		{"protected, reader's token", "/api", tok, verified},
		{"public rule (enabled false)", "/public/x", "", nil},
		{"public rule with a token", "/public/x", tok, nil},
		{"allow_missing without a token", "/maybe/x", "", nil},
		{"allow_missing with a token", "/maybe/x", tok, verified},
		{"shadow without a token", "/dry/x", "", nil},
		{"shadow with a bad token", "/dry/x", "garbage", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := metric(t, h, metricSpoofed)
			resp := h.Do(spoofed(get(tc.path, tc.token)))
			wantStatus(t, resp, 200)
			wantNoSpoofedIdentity(t, resp.Upstream.Headers, tc.want)
			wantEqual(t, metricSpoofed, metric(t, h, metricSpoofed), before+1)
		})
	}
	// One spelling alone is enough to be caught.
	for _, name := range []string{"x_user_id", "X-USER_ROLES", "x_consumer", "x-consumer_permissions"} {
		resp := h.Do(get("/public/x", "").Header(name, "admin"))
		wantStatus(t, resp, 200)
		wantNoSpoofedIdentity(t, resp.Upstream.Headers, nil)
	}
	// Headers that only look alike pass.
	resp := h.Do(get("/public/x", "").Header("x-user-idx", "1").Header("x.user.id", "2"))
	wantEqual(t, "x-user-idx", resp.Upstream.Header("x-user-idx"), "1")
	wantEqual(t, "x.user.id", resp.Upstream.Header("x.user.id"), "2")
}

// TestWasmSpoofedReject: "spoofed_identity_headers": "reject" answers 400
// with the shared JSON denial wherever the filter is enabled; a public
// route still only strips, and a shadow route logs the would-be denial.
func TestWasmSpoofedReject(t *testing.T) {
	h := newHost(t, spoofConfig(t, `,"spoofed_identity_headers":"reject"`))
	tok := goodToken(t, "RS256", h.Clock().Now())
	for _, tc := range []struct{ name, path, token string }{
		{"protected, valid token", "/api", tok},
		{"protected, no token", "/api", ""},
		{"allow_missing", "/maybe/x", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := h.Do(get(tc.path, tc.token).Header("x_user_id", "admin"))
			wantDenied(t, resp, 400, "spoofed identity header", "")
		})
	}
	wantEqual(t, metricDenied, metric(t, h, metricDenied), 3)
	wantEqual(t, metricSpoofed, metric(t, h, metricSpoofed), 3)
	if logs := h.LogsContaining(`reason="spoofed identity header"`); len(logs) != 3 ||
		logs[0] != `denied status=400 reason="spoofed identity header" request_id="req-1" provider="-" rule=-1` {
		t.Errorf("denial log lines = %q", logs)
	}

	resp := h.Do(spoofed(get("/public/x", "")))
	wantStatus(t, resp, 200)
	wantNoSpoofedIdentity(t, resp.Upstream.Headers, nil)

	h.ClearLogs()
	resp = h.Do(spoofed(get("/dry/x", tok)))
	wantStatus(t, resp, 200)
	wantNoSpoofedIdentity(t, resp.Upstream.Headers, map[string]string{"x-user-id": "user-1", "x-user-roles": "reader,writer"})
	if logs := h.LogsContaining("would deny"); len(logs) != 1 ||
		logs[0] != `shadow: would deny status=400 reason="spoofed identity header" request_id="req-1" provider="-" rule=2; let through` {
		t.Errorf("shadow log lines = %q", logs)
	}

	// Without spoofed headers nothing changes.
	resp = h.Do(get("/api", tok))
	wantStatus(t, resp, 200)
	wantEqual(t, "x-user-id", resp.Upstream.Header("x-user-id"), "user-1")
}

// TestWasmSpoofedTrailers: identity headers in the request trailers are
// removed (in reject mode too: the request is already on its way), on
// protected and public routes alike; other trailers pass.
func TestWasmSpoofedTrailers(t *testing.T) {
	for _, mode := range []string{"strip", "reject"} {
		t.Run(mode, func(t *testing.T) {
			h := newHost(t, spoofConfig(t, `,"spoofed_identity_headers":"`+mode+`"`))
			tok := goodToken(t, "EdDSA", h.Clock().Now())
			for _, tc := range []struct{ path, token string }{{"/api", tok}, {"/public/x", ""}, {"/maybe/x", ""}} {
				req := hosttest.POST(tc.path, "data").Header("x-request-id", "req-1")
				if tc.token != "" {
					req.Header("authorization", "Bearer "+tc.token)
				}
				req.Trailer("x-user-id", "admin").Trailer("x_user_roles", "admin").Trailer("x-checksum", "abc").Trailer("X_Consumer", "evil")
				resp := h.Do(req)
				wantStatus(t, resp, 200)
				wantNoSpoofedIdentity(t, resp.Upstream.Trailers, nil)
				if got := resp.Upstream.Trailers; len(got) != 1 || got[0] != (hosttest.Pair{Key: "x-checksum", Value: "abc"}) {
					t.Errorf("%s: upstream trailers = %v, want only x-checksum: abc", tc.path, got)
				}
			}
			wantEqual(t, metricSpoofed, metric(t, h, metricSpoofed), 3)
		})
	}
}
