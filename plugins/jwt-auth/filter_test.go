package main

// The compiled module in hosttest, with local keys (inline JWKS and HMAC
// secrets). Remote JWKS are in remote_test.go.

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/concierge-wasm/concierge/hosttest"
)

// TestWasmEveryAlgorithm: a valid token of every algorithm passes; the
// upstream gets the identity headers and not the token.
func TestWasmEveryAlgorithm(t *testing.T) {
	h := newHost(t, withRealm(t, ""))
	for _, alg := range append(append([]string{}, asymAlgs...), hmacAlgs...) {
		t.Run(alg, func(t *testing.T) {
			resp := h.Do(get("/api", goodToken(t, alg, h.Clock().Now())))
			wantStatus(t, resp, 200)
			up := resp.Upstream
			wantEqual(t, "x-user-id", up.Header("x-user-id"), "user-1")
			wantEqual(t, "x-user-roles", up.Header("x-user-roles"), "reader,writer")
			if up.Has("authorization") {
				t.Error("the token reached the upstream (forward is false)")
			}
		})
	}
	if got := metric(t, h, metricAllowed); got != int64(len(asymAlgs)+len(hmacAlgs)) {
		t.Errorf("%s = %d, want %d", metricAllowed, got, len(asymAlgs)+len(hmacAlgs))
	}
}

// TestWasmAttacks: the known attacks end to end, each a 401 with its
// reason in the challenge and the body, counted under its reason.
func TestWasmAttacks(t *testing.T) {
	h := newHost(t, withRealm(t, ""))
	k := testKeys(t)
	now := h.Clock().Now()
	good := goodToken(t, "RS256", now)
	parts := strings.Split(good, ".")
	claimsJSON, _ := json.Marshal(claimsAt(now, nil))
	unsigned := func(header string) string { return b64([]byte(header)) + "." + b64(claimsJSON) + "." }
	pem := rsaPublicPEM(&k.rsa.PublicKey)
	hmacClaims := claimsFor("HS256", now)
	tamperedPayload := b64([]byte(strings.Replace(string(claimsJSON), `"user-1"`, `"admin"`, 1)))
	huge := rsToken(t, claimsAt(now, map[string]any{"pad": strings.Repeat("x", 9000)}))
	for _, tc := range []struct {
		name, token, reason string
		headers             [][2]string // instead of token
	}{
		{name: "alg none", token: unsigned(`{"alg":"none","typ":"JWT"}`), reason: "unsupported algorithm"},
		{name: "alg None", token: unsigned(`{"alg":"None"}`), reason: "unsupported algorithm"},
		{name: "alg NONE", token: unsigned(`{"alg":"NONE"}`), reason: "unsupported algorithm"},
		{name: "alg nOnE", token: unsigned(`{"alg":"nOnE"}`), reason: "unsupported algorithm"},
		{name: "alg rs256 lower case", token: signToken(t, "RS256", k.rsa, map[string]any{"alg": "rs256", "kid": "rsa-1"}, claimsAt(now, nil)), reason: "unsupported algorithm"},
		{name: "HS256 with the RSA public key as secret", token: signToken(t, "HS256", pem, map[string]any{"alg": "HS256", "kid": "rsa-1"}, claimsAt(now, nil)), reason: "unsupported algorithm"},
		{name: "HS256 with the RSA public key, HMAC issuer", token: signToken(t, "HS256", pem, map[string]any{"alg": "HS256"}, hmacClaims), reason: "invalid signature"},
		{name: "stripped signature", token: parts[0] + "." + parts[1] + ".", reason: "invalid signature"},
		{name: "modified payload", token: parts[0] + "." + tamperedPayload + "." + parts[2], reason: "invalid signature"},
		{name: "signature of another key", token: signToken(t, "RS256", k.rsaOther, map[string]any{"alg": "RS256", "kid": "rsa-1"}, claimsAt(now, nil)), reason: "invalid signature"},
		{name: "wrong kid", token: signToken(t, "RS256", k.rsa, map[string]any{"alg": "RS256", "kid": "nope"}, claimsAt(now, nil)), reason: "unknown key"},
		{name: "expired", token: rsToken(t, claimsAt(now, map[string]any{"exp": now.Add(-2 * time.Minute).Unix()})), reason: "token expired"},
		{name: "nbf in the future", token: rsToken(t, claimsAt(now, map[string]any{"nbf": now.Add(2 * time.Minute).Unix()})), reason: "token not yet valid"},
		{name: "iat in the future", token: rsToken(t, claimsAt(now, map[string]any{"iat": now.Add(2 * time.Minute).Unix()})), reason: "token issued in the future"},
		{name: "missing exp", token: rsToken(t, claimsAt(now, map[string]any{"exp": nil})), reason: "missing exp"},
		{name: "wrong iss", token: rsToken(t, claimsAt(now, map[string]any{"iss": "https://evil.example"})), reason: "issuer not allowed"},
		{name: "wrong aud", token: rsToken(t, claimsAt(now, map[string]any{"aud": "other"})), reason: "audience not allowed"},
		{name: "aud array without ours", token: rsToken(t, claimsAt(now, map[string]any{"aud": []string{"other", "apis"}})), reason: "audience not allowed"},
		{name: "aud empty array", token: rsToken(t, claimsAt(now, map[string]any{"aud": []string{}})), reason: "audience not allowed"},
		{name: "aud missing", token: rsToken(t, claimsAt(now, map[string]any{"aud": nil})), reason: "audience not allowed"},
		{name: "aud object", token: rsToken(t, claimsAt(now, map[string]any{"aud": map[string]any{"api": true}})), reason: "malformed token"},
		{name: "crit header", token: signToken(t, "RS256", k.rsa, map[string]any{"alg": "RS256", "kid": "rsa-1", "crit": []string{"exp"}}, claimsAt(now, nil)), reason: "malformed token"},
		{name: "not a JWT", token: "abc", reason: "malformed token"},
		{name: "oversized", token: huge, reason: "token too large"},
		{name: "100k dots", token: strings.Repeat(".", 100000), reason: "token too large"},
		{name: "two tokens", headers: [][2]string{{"authorization", "Bearer " + good}, {"authorization", "Bearer " + good}}, reason: "multiple tokens"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := metric(t, h, reasonMetric(errors.New(tc.reason)))
			req := get("/api", tc.token)
			for _, hv := range tc.headers {
				req.Header(hv[0], hv[1])
			}
			resp := h.Do(req)
			wantDenied(t, resp, 401, tc.reason, invalid(tc.reason))
			if got := metric(t, h, reasonMetric(errors.New(tc.reason))); got != before+1 {
				t.Errorf("%s = %d, want %d", reasonMetric(errors.New(tc.reason)), got, before+1)
			}
		})
	}
	// The audience array that contains ours is fine (CVE-2020-26160 was
	// the opposite mistake).
	resp := h.Do(get("/api", rsToken(t, claimsAt(now, map[string]any{"aud": []string{"other", "api"}}))))
	wantStatus(t, resp, 200)
}

// TestWasmDotsParsedInLinearTime: with the largest max_token_bytes a token
// of 100,000 dots reaches the parser, which refuses it without the
// CVE-2025-30204 allocation blow-up (the VM stays small).
func TestWasmDotsParsedInLinearTime(t *testing.T) {
	cfg := strings.Replace(withRealm(t, ""), `"algorithms"`, `"max_token_bytes":1048576,"algorithms"`, 1)
	h := newHost(t, cfg, hosttest.Workers(1))
	for range 20 {
		resp := h.Do(get("/api", strings.Repeat(".", 100000)))
		wantDenied(t, resp, 401, "malformed token", invalid("malformed token"))
	}
	for _, m := range h.MemoryBytes("jwt-auth") {
		if m > 16<<20 {
			t.Errorf("a VM grew to %d bytes parsing dots", m)
		}
	}
}

// TestWasmMissingToken: 401 with a bare challenge, the JSON body with the
// request ID, the request ID echoed, one log line.
func TestWasmMissingToken(t *testing.T) {
	h := newHost(t, withRealm(t, ""))
	resp := h.Do(get("/api", "").Header("authorization", "Basic dXNlcjpwdw=="))
	wantDenied(t, resp, 401, "missing token", `Bearer realm="api"`)
	wantEqual(t, "body", string(resp.Body), `{"error":"missing token","requestId":"req-1"}`)
	wantEqual(t, "x-request-id", resp.Header("x-request-id"), "req-1")
	logs := h.LogsContaining("denied")
	if len(logs) != 1 || logs[0] != `denied status=401 reason="missing token" request_id="req-1" provider="-" rule=-1` {
		t.Errorf("denial log lines = %q", logs)
	}
	// Without a realm the challenge is bare.
	h2 := newHost(t, testConfigJSON(t))
	wantEqual(t, "www-authenticate", h2.Do(get("/api", "")).Header("www-authenticate"), "Bearer")
	wantEqual(t, metricDenied, metric(t, h, metricDenied), 1)
	wantEqual(t, reasonMetric(errMissingToken), metric(t, h, reasonMetric(errMissingToken)), 1)
}

// TestWasmSpoofedIdentityHeaders: identity headers sent by the client never
// reach the upstream, whatever the route and outcome.
func TestWasmSpoofedIdentityHeaders(t *testing.T) {
	cfg := withRealm(t, `,"rules":[{"match":{"prefix":"/public"},"enabled":false},{"match":{"prefix":"/maybe"},"allow_missing":true}]`)
	h := newHost(t, cfg)
	spoof := func(r *hosttest.Request) *hosttest.Request {
		return r.Header("x-user-id", "admin").Header("X-User-Roles", "admin").Header("x-consumer", "evil")
	}
	tok := goodToken(t, "ES256", h.Clock().Now())
	for _, tc := range []struct {
		name, path, token, wantUser string
	}{
		{"valid token", "/api", tok, "user-1"},
		{"public route", "/public/x", "", ""},
		{"allow_missing without token", "/maybe/x", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := h.Do(spoof(get(tc.path, tc.token)))
			wantStatus(t, resp, 200)
			up := resp.Upstream
			if got := up.HeaderValues("x-user-id"); tc.wantUser == "" && len(got) != 0 || tc.wantUser != "" && (len(got) != 1 || got[0] != tc.wantUser) {
				t.Errorf("upstream x-user-id = %q, want %q", got, tc.wantUser)
			}
			if up.Has("x-consumer") || (tc.wantUser == "" && up.Has("x-user-roles")) {
				t.Errorf("spoofed identity header reached the upstream: %v", up.Headers)
			}
		})
	}
	// Envoy's per-route disabling (typed_per_filter_config disabled: true)
	// does not run the filter at all, so nothing is stripped: the README
	// says to use rules with "enabled": false for public routes instead.
	resp := h.Do(spoof(get("/api", "")).Disable("jwt-auth"))
	wantStatus(t, resp, 200)
	wantEqual(t, "x-user-id with the filter disabled by the route", resp.Upstream.Header("x-user-id"), "admin")
}

// TestWasmIdentityProperty: a later filter reads the verified identity from
// the concierge.identity property (through shared/identity, as rate-limit
// will), and finds none without a valid token.
func TestWasmIdentityProperty(t *testing.T) {
	cfg := withRealm(t, `,"shadow":true`)
	h := hosttest.New(t, hosttest.Chain(
		hosttest.Filter{Name: "jwt-auth", Plugin: ".", Config: cfg},
		hosttest.Filter{Name: "reader", Plugin: identityReader},
	))
	resp := h.Do(get("/api", goodToken(t, "EdDSA", h.Clock().Now())).Header("x-user-id", "admin"))
	wantStatus(t, resp, 200)
	wantEqual(t, "identity property", resp.Upstream.Header("x-identity"),
		`{"v":1,"m":"jwt","s":"user-1","i":"https://issuer.example","p":"main","r":["reader","writer"]}`)
	// Shadow mode lets bad tokens through, never with an identity, and
	// leaves their token alone.
	resp = h.Do(get("/api", "not-a-token").Header("x-user-id", "admin"))
	wantStatus(t, resp, 200)
	wantEqual(t, "identity property (bad token)", resp.Upstream.Header("x-identity"), "none")
	wantEqual(t, "x-user-id (bad token)", resp.Upstream.Header("x-user-id"), "")
	wantEqual(t, "authorization (bad token)", resp.Upstream.Header("authorization"), "Bearer not-a-token")
}

// TestWasmIdentityPropertyProbe documents a hosttest probe limitation: its
// get-prop verb splits the path on '.', so it asks for the two segments
// ["concierge", "identity"], which Envoy (and hosttest) answer NOT_FOUND
// for a property set under the one segment "concierge.identity".
func TestWasmIdentityPropertyProbe(t *testing.T) {
	h := hosttest.New(t, hosttest.Chain(
		hosttest.Filter{Name: "jwt-auth", Plugin: ".", Config: withRealm(t, "")},
		hosttest.Filter{Name: "p", Plugin: probePlugin, Config: `{"name":"p"}`},
	))
	resp := h.Do(get("/api", goodToken(t, "EdDSA", h.Clock().Now())).Header("x-p", "get-prop:concierge.identity"))
	wantStatus(t, resp, 200)
	wantEqual(t, "probe get-prop:concierge.identity", resp.Upstream.Header("x-p-prop-concierge.identity"), "NOTFOUND")
}

// TestWasmRules: public routes, allow_missing, require (403) and a rule
// that accepts one provider only.
func TestWasmRules(t *testing.T) {
	cfg := withRealm(t, `,"rules":[
		{"match":{"prefix":"/public"},"enabled":false},
		{"match":{"prefix":"/maybe"},"allow_missing":true},
		{"match":{"prefix":"/admin"},"require":{"claims":{"roles":["admin"]}}},
		{"match":{"prefix":"/scoped"},"require":{"claims":{"scope":["write"]}}},
		{"match":{"prefix":"/hmac-only"},"providers":["hmac"]}]`)
	h := newHost(t, cfg)
	now := h.Clock().Now()
	reader := goodToken(t, "RS256", now)
	admin := rsToken(t, claimsAt(now, map[string]any{"roles": []string{"reader", "admin"}}))
	writer := rsToken(t, claimsAt(now, map[string]any{"roles": nil, "scope": "read write"}))
	hs := goodToken(t, "HS256", now)

	wantStatus(t, h.Do(get("/public/x", "")), 200)
	wantStatus(t, h.Do(get("/public/x", "garbage")), 200)
	// A public prefix does not open a path that normalizes elsewhere.
	wantDenied(t, h.Do(get("/public/../api", "")), 401, "missing token", `Bearer realm="api"`)

	anon := metric(t, h, metricAnonymous)
	resp := h.Do(get("/maybe/x", ""))
	wantStatus(t, resp, 200)
	wantEqual(t, metricAnonymous, metric(t, h, metricAnonymous), anon+1)
	wantStatus(t, h.Do(get("/maybe/x", reader)), 200)
	wantDenied(t, h.Do(get("/maybe/x", "garbage")), 401, "malformed token", invalid("malformed token"))

	wantDenied(t, h.Do(get("/admin/x", reader)), 403, "insufficient scope", `Bearer realm="api", error="insufficient_scope"`)
	wantStatus(t, h.Do(get("/admin/x", admin)), 200)
	wantDenied(t, h.Do(get("/admin/x", "")), 401, "missing token", `Bearer realm="api"`)
	wantDenied(t, h.Do(get("/scoped/x", reader)), 403, "insufficient scope", `Bearer realm="api", error="insufficient_scope"`)
	wantStatus(t, h.Do(get("/scoped/x", writer)), 200)

	wantStatus(t, h.Do(get("/hmac-only/x", hs)), 200)
	wantDenied(t, h.Do(get("/hmac-only/x", reader)), 401, "issuer not allowed", invalid("issuer not allowed"))
	wantEqual(t, reasonMetric(errInsufficientScope), metric(t, h, reasonMetric(errInsufficientScope)), 2)
}

// TestWasmShadow: decide, log and count, but let everything through.
func TestWasmShadow(t *testing.T) {
	h := newHost(t, withRealm(t, `,"shadow":true,"rules":[{"match":{"prefix":"/enforced"},"shadow":false}]`))
	resp := h.Do(get("/api", ""))
	wantStatus(t, resp, 200)
	resp = h.Do(get("/api", goodToken(t, "PS256", h.Clock().Now())))
	wantStatus(t, resp, 200)
	wantEqual(t, "x-user-id", resp.Upstream.Header("x-user-id"), "user-1")
	wantEqual(t, metricDenied, metric(t, h, metricDenied), 1)
	wantEqual(t, metricShadowed, metric(t, h, metricShadowed), 1)
	wantEqual(t, metricAllowed, metric(t, h, metricAllowed), 1)
	if logs := h.LogsContaining("shadow: would deny"); len(logs) != 1 ||
		logs[0] != `shadow: would deny status=401 reason="missing token" request_id="req-1" provider="-" rule=-1; let through` {
		t.Errorf("shadow log lines = %q", logs)
	}
	wantDenied(t, h.Do(get("/enforced", "")), 401, "missing token", `Bearer realm="api"`)
}

// TestWasmProblemJSON: error_format problem+json switches denial bodies to
// RFC 9457.
func TestWasmProblemJSON(t *testing.T) {
	h := newHost(t, withRealm(t, `,"error_format":"problem+json"`))
	resp := h.Do(get("/api", ""))
	wantStatus(t, resp, 401)
	wantEqual(t, "content-type", resp.Header("content-type"), "application/problem+json")
	wantEqual(t, "body", string(resp.Body), `{"type":"about:blank","title":"Unauthorized","status":401,"detail":"missing token","requestId":"req-1"}`)
	wantEqual(t, "www-authenticate", resp.Header("www-authenticate"), `Bearer realm="api"`)
}

// TestWasmTokenLocations: tokens from a query parameter and a cookie are
// removed from the upstream request (other parameters and cookies stay),
// or kept with forward: true; forward_payload_header and claim_to_headers.
func TestWasmTokenLocations(t *testing.T) {
	cfg := `{"providers":[
		{"name":"main","issuer":"` + testIssuer + `","audiences":["api"],"algorithms":["ES256"],"local_jwks":` + testJWKS(t) + `,
		 "from_params":["access_token"],"from_cookies":["session"],"forward_payload_header":"x-jwt-payload",
		 "claim_to_headers":[{"claim_name":"sub","header_name":"x-user-id"},{"claim_name":"email","header_name":"x-email"}]},
		{"name":"hmac","issuer":"` + testHMACIssuer + `","algorithms":["HS256"],"hmac_secret":"` + testSecret + `",
		 "from_headers":[{"name":"x-token"}],"forward":true}]}`
	h := newHost(t, cfg)
	now := h.Clock().Now()
	es := signToken(t, "ES256", testKeys(t).p256, map[string]any{"alg": "ES256", "kid": "p256-1"},
		claimsAt(now, map[string]any{"email": "u@example.com"}))
	payload := strings.Split(es, ".")[1]

	resp := h.Do(hosttest.GET("/a?x=1&access_token=" + es + "&y=2"))
	wantStatus(t, resp, 200)
	up := resp.Upstream
	wantEqual(t, "upstream :path", up.Path(), "/a?x=1&y=2")
	wantEqual(t, "x-jwt-payload", up.Header("x-jwt-payload"), payload)
	wantEqual(t, "x-email", up.Header("x-email"), "u@example.com")
	wantEqual(t, "x-user-id", up.Header("x-user-id"), "user-1")
	if up.Has("x-user-roles") {
		t.Error("x-user-roles set though claim_to_headers does not map it")
	}

	resp = h.Do(hosttest.GET("/a").Header("cookie", "theme=dark; session="+es+"; lang=en"))
	wantStatus(t, resp, 200)
	wantEqual(t, "upstream cookie", strings.Join(resp.Upstream.HeaderValues("cookie"), "|"), "theme=dark; lang=en")
	resp = h.Do(hosttest.GET("/a").Header("cookie", "session="+es))
	wantStatus(t, resp, 200)
	if resp.Upstream.Has("cookie") {
		t.Errorf("upstream cookie = %q, want none left", resp.Upstream.HeaderValues("cookie"))
	}

	hs := goodToken(t, "HS256", now)
	resp = h.Do(hosttest.GET("/a").Header("x-token", hs))
	wantStatus(t, resp, 200)
	wantEqual(t, "forwarded x-token", resp.Upstream.Header("x-token"), hs)

	// The token from the authorization header is removed; another
	// credential under the same name stays.
	h2 := newHost(t, withRealm(t, ""))
	resp = h2.Do(get("/a", goodToken(t, "RS256", now)).Header("authorization", "Basic dXNlcg=="))
	wantStatus(t, resp, 200)
	wantEqual(t, "upstream authorization", strings.Join(resp.Upstream.HeaderValues("authorization"), "|"), "Basic dXNlcg==")
}

// TestWasmBadConfigRefused: the host refuses to start the filter, and the
// plugin says why in one line.
func TestWasmBadConfigRefused(t *testing.T) {
	for _, tc := range []struct{ config, want string }{
		{``, `providers: required`},
		{`{"providers":[],"realms":"x"}`, `unknown field "realms"`},
		{`{"providers":[{"issuer":"https://a","algorithms":["none"],"hmac_secret":"x"}]}`, `providers[0].algorithms[0]: "none" is not allowed`},
		{`{"providers":[{"issuer":"https://a","algorithms":["RS256"]}]}`, `providers[0]: needs a key source: local_jwks, remote_jwks, hmac_secret or hmac_secret_base64`},
		{`{"providers":[{"issuer":"https://a","algorithms":["HS256","RS256"],"hmac_secret":"` + testSecret + `"}]}`, `providers[0]: algorithm RS256 needs local_jwks or remote_jwks`},
		{`{"providers":[{"issuer":"https://a","algorithms":["RS256"],"local_jwks":"{\"keys\":"}]}`, `providers[0].local_jwks: invalid JSON`},
		{`{"providers":[{"issuer":"https://a","algorithms":["RS256"],"remote_jwks":{"http_uri":{"uri":"/jwks","cluster":"idp"}}}]}`, `providers[0].remote_jwks.http_uri.uri: must be an absolute http or https URL, got "/jwks"`},
		{`{"providers":[{"issuer":"https://a","algorithms":["HS256"],"hmac_secret":"` + testSecret + `"}],"rules":[{"require":{"claims":{}}}]}`, `rules[0].require.claims: must not be empty`},
		{`{"providers":[{"issuer":"https://a","algorithms":["HS256"],"hmac_secret":"` + testSecret + `"}],"error_format":"xml"}`, `error_format: must be one of "json", "problem+json", got "xml"`},
	} {
		h, err := hosttest.Start(hosttest.Plugin("."), hosttest.Config(tc.config), hosttest.Workers(1))
		if err == nil {
			h.Close()
			t.Errorf("Start(%s) succeeded, want refusal %s", tc.config, tc.want)
			continue
		}
		var ce interface{ Error() string }
		ce = err
		if !strings.Contains(ce.Error(), "refused to start") || !strings.Contains(ce.Error(), "[error] "+tc.want+"\n") && !strings.HasSuffix(ce.Error(), "[error] "+tc.want) {
			t.Errorf("Start(%s) = %v\nwant the log line %q", tc.config, err, tc.want)
		}
	}
}

// TestWasmLoweringRulesFollowTheRouter: a rule that switches jwt-auth off
// or allows a missing token applies only where the router sends the
// request: to the authority as sent (Envoy selects the virtual host on it,
// port and trailing dot included), and to a path that is in the rule's
// prefix both as sent and normalized (with normalize_path off, Envoy's
// default, the router matches the path as sent). A rule that adds a
// requirement still covers every spelling.
func TestWasmLoweringRulesFollowTheRouter(t *testing.T) {
	h := newHost(t, withRealm(t, `,"rules":[
		{"match":{"host":"public.example.com"},"enabled":false},
		{"match":{"host":"maybe.example.com"},"allow_missing":true},
		{"match":{"prefix":"/admin/"},"require":{"claims":{"roles":["admin"]}}},
		{"match":{"prefix":"/open/"},"enabled":false},
		{"match":{"prefix":"/maybe/"},"allow_missing":true}]`))
	reader := goodToken(t, "RS256", h.Clock().Now())
	tests := []struct {
		host, path string
		token      string
		want       int
	}{
		{"public.example.com", "/x", "", 200},
		{"Public.Example.com", "/x", "", 200},
		{"public.example.com:8080", "/x", "", 401},
		{"public.example.com.", "/x", "", 401},
		{"public.example.com:", "/x", "", 401},
		{"public.example.com.:443", "/x", "", 401},
		{"maybe.example.com", "/x", "", 200},
		{"maybe.example.com:8080", "/x", "", 401},

		{"api.example.com", "/open/p", "", 200},
		{"api.example.com", "/open/a/../p", "", 200},
		{"api.example.com", "/api/orders/../../open/p", "", 401},
		{"api.example.com", "/open/../api/orders", "", 401},
		{"api.example.com", "/open/x#/../../x/secret.txt", "", 401},
		{"api.example.com", "/%6Fpen/p", "", 401},
		{"api.example.com", "/maybe/p", "", 200},
		{"api.example.com", "/x/../maybe/p", "", 401},

		{"api.example.com", "/admin/x", reader, 403},
		{"api.example.com", "/x/../admin/x", reader, 403},
		{"api.example.com", "/admin/../x", reader, 403},
	}
	for _, tt := range tests {
		r := get(tt.path, tt.token).Host(tt.host)
		if got := h.Do(r).Status; got != tt.want {
			t.Errorf("GET %s (:authority %s, token %v) = %d, want %d", tt.path, tt.host, tt.token != "", got, tt.want)
		}
	}
}
