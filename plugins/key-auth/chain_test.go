package main

// Key-or-JWT: key-auth with allow_missing, then jwt-auth with
// accept_verified_identity, then a filter that reads the identity property
// as later filters do.

import (
	"testing"

	"github.com/concierge-wasm/concierge/hosttest"
)

func keyOrJWT(tb testing.TB, keyCfg, jwtCfg string) *hosttest.Host {
	return hosttest.New(tb, hosttest.Chain(
		hosttest.Filter{Name: "key-auth", Plugin: ".", Config: keyCfg},
		hosttest.Filter{Name: "jwt-auth", Plugin: jwtPlugin, Config: jwtCfg},
		hosttest.Filter{Name: "reader", Plugin: identityReader},
	))
}

func TestWasmKeyOrJWT(t *testing.T) {
	h := keyOrJWT(t, testConfig(`,"allow_missing":true`), jwtConfig(`,"accept_verified_identity":true,
		"rules":[{"match":{"prefix":"/users-only"},"require":{"claims":{"sub":["user-1"]}}}]`))
	now := h.Clock().Now()
	token := jwtFor(t, "user-1", now, map[string]any{"email": "u@example.com"})
	bearer := func(r *hosttest.Request, tok string) *hosttest.Request {
		return r.Header("authorization", "Bearer "+tok)
	}
	spoof := func(r *hosttest.Request) *hosttest.Request {
		return r.Header("x-consumer", "ops").Header("x-user-id", "root").Header("x-email", "root@example.com").
			Header("x-consumer-permissions", "admin")
	}

	// A key: 200 as the consumer. key-auth's headers survive jwt-auth;
	// the client's copies of every identity header, jwt-auth's own
	// x-email included, do not.
	resp := h.Do(spoof(withKey("/api", acmeKey)))
	wantStatus(t, resp, 200)
	up := resp.Upstream
	wantEqual(t, "x-consumer", up.Header("x-consumer"), "acme")
	wantEqual(t, "x-consumer-permissions", up.Header("x-consumer-permissions"), "read")
	wantEqual(t, "x-user-id", up.Header("x-user-id"), "")
	wantEqual(t, "x-email", up.Header("x-email"), "")
	wantEqual(t, "identity", up.Header("x-identity"), `{"v":1,"m":"key-auth","s":"acme","c":"acme","r":["read"]}`)
	wantEqual(t, "jwt-auth accepted", metric(t, h, "concierge_jwt_auth_key_auth_accepted_total"), 1)

	// A JWT: 200 as the user, no consumer.
	resp = h.Do(spoof(bearer(withKey("/api", ""), token)))
	wantStatus(t, resp, 200)
	up = resp.Upstream
	wantEqual(t, "x-user-id", up.Header("x-user-id"), "user-1")
	wantEqual(t, "x-email", up.Header("x-email"), "u@example.com")
	wantEqual(t, "x-consumer", up.Header("x-consumer"), "")
	wantEqual(t, "x-consumer-permissions", up.Header("x-consumer-permissions"), "")
	wantEqual(t, "identity", up.Header("x-identity"), `{"v":1,"m":"jwt","s":"user-1","i":"`+jwtIssuer+`","p":"users"}`)

	// Neither: 401 from jwt-auth.
	resp = h.Do(spoof(withKey("/api", "")))
	wantStatus(t, resp, 401)
	wantEqual(t, "denied by", resp.LocalReplyBy, "jwt-auth")

	// A bad key is refused by key-auth, even beside a valid JWT:
	// allow_missing covers missing keys only.
	wantDenied(t, h.Do(withKey("/api", "guess")), 401, msgInvalid, "Key")
	wantDenied(t, h.Do(bearer(withKey("/api", "guess"), token)), 401, msgInvalid, "Key")

	// A route whose jwt-auth rule requires claims needs a token, key or
	// not.
	resp = h.Do(withKey("/users-only", acmeKey))
	wantStatus(t, resp, 401)
	wantEqual(t, "denied by", resp.LocalReplyBy, "jwt-auth")
	wantStatus(t, h.Do(bearer(withKey("/users-only", ""), token)), 200)
}

// TestWasmKeyOrJWTIsOptIn: without accept_verified_identity, jwt-auth
// ignores what key-auth verified and still wants a token.
func TestWasmKeyOrJWTIsOptIn(t *testing.T) {
	h := keyOrJWT(t, testConfig(`,"allow_missing":true`), jwtConfig(""))
	resp := h.Do(withKey("/api", acmeKey))
	wantStatus(t, resp, 401)
	wantEqual(t, "denied by", resp.LocalReplyBy, "jwt-auth")
	wantStatus(t, h.Do(withKey("/api", "").Header("authorization", "Bearer "+jwtFor(t, "user-1", h.Clock().Now(), nil))), 200)
}
