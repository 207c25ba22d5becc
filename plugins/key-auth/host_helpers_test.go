package main

// Helpers for the tests that run the compiled module in hosttest.

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/concierge-wasm/concierge/hosttest"
)

const (
	// noopPlugin is hosttest's do-nothing filter, the per-request floor.
	noopPlugin = "../../hosttest/testdata/noop"
	// identityReader reports the identity property to the upstream as
	// x-identity (jwt-auth's test filter, read as later filters would).
	identityReader = "../jwt-auth/testdata/identity-reader"
	jwtPlugin      = "../jwt-auth"
	jwtIssuer      = "https://idp.test"
	jwtSecret      = "a-test-secret-of-at-least-32-bytes!!"
)

// newHost runs this folder's module (built and cached by hosttest) with cfg.
func newHost(tb testing.TB, cfg string, opts ...hosttest.Option) *hosttest.Host {
	tb.Helper()
	return hosttest.New(tb, append([]hosttest.Option{hosttest.Plugin("."), hosttest.Config(cfg)}, opts...)...)
}

// withKey is a GET with a request ID and the key in x-api-key ("" for
// none).
func withKey(path, key string) *hosttest.Request {
	return keyed(hosttest.GET(path), key)
}

func keyed(r *hosttest.Request, key string) *hosttest.Request {
	r.Header("x-request-id", "req-1")
	if key != "" {
		r.Header("x-api-key", key)
	}
	return r
}

func wantStatus(tb testing.TB, r *hosttest.Response, want int) {
	tb.Helper()
	if r.Status != want {
		tb.Fatalf("status = %d, want %d; response %v", r.Status, want, r)
	}
}

// wantDenied checks a denial: status, challenge, JSON body with the
// request ID, no upstream.
func wantDenied(tb testing.TB, r *hosttest.Response, status int, message, challenge string) {
	tb.Helper()
	wantStatus(tb, r, status)
	if r.Upstream != nil {
		tb.Errorf("a denied request reached the upstream")
	}
	wantEqual(tb, "LocalReplyBy", r.LocalReplyBy, "key-auth")
	wantEqual(tb, "www-authenticate", r.Header("www-authenticate"), challenge)
	wantEqual(tb, "content-type", r.Header("content-type"), "application/json")
	want := `{"error":"` + message + `","requestId":"` + r.Header("x-request-id") + `"}`
	wantEqual(tb, "body", string(r.Body), want)
}

func metric(tb testing.TB, h *hosttest.Host, name string) int64 {
	tb.Helper()
	v, ok := h.Metric(name)
	if !ok {
		tb.Fatalf("metric %s is not defined", name)
	}
	return v
}

// jwtFor signs an HS256 token for jwtIssuer with sub, valid around now.
func jwtFor(tb testing.TB, sub string, now time.Time, extra map[string]any) string {
	tb.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			tb.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	claims := map[string]any{"iss": jwtIssuer, "sub": sub, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	for k, v := range extra {
		claims[k] = v
	}
	signing := enc(map[string]string{"alg": "HS256", "typ": "JWT"}) + "." + enc(claims)
	m := hmac.New(sha256.New, []byte(jwtSecret))
	m.Write([]byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// jwtConfig is a jwt-auth configuration for jwtFor's tokens, extra
// top-level members appended.
func jwtConfig(extra string) string {
	return `{"realm":"api","providers":[{"name":"users","issuer":"` + jwtIssuer + `","algorithms":["HS256"],"hmac_secret":"` + jwtSecret + `",
		"claim_to_headers":[{"claim_name":"sub","header_name":"x-user-id"},{"claim_name":"email","header_name":"x-email"}]}]` + extra + `}`
}
