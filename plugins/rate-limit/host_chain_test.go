//go:build !wasm

package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/concierge-wasm/concierge/hosttest"
)

// TestChainAfterJWTAuth runs the real jwt-auth before rate-limit: the
// identity it verified keys the bucket (one bucket for alice whatever her
// address), her override applies, and a client sending x-user-id of its
// own gets nothing from it.
func TestChainAfterJWTAuth(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef"
	h := hosttest.New(t, hosttest.Chain(
		hosttest.Filter{Plugin: "../jwt-auth", Name: "jwt-auth", Config: `{"providers":[{"name":"main","issuer":"https://idp.test",
			"algorithms":["HS256"],"hmac_secret":"` + secret + `"}],"rules":[{"match":{"prefix":"/open"},"allow_missing":true}]}`},
		hosttest.Filter{Plugin: ".", Name: "rate-limit", Config: `{"limits":[{"requests":1,"per":"1m"}],
			"overrides":[{"identity":"vip-*","limits":[{"requests":3,"per":"1m"}]}]}`},
	))
	token := func(sub string) string {
		enc := base64.RawURLEncoding
		head := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
		body := enc.EncodeToString([]byte(fmt.Sprintf(`{"iss":"https://idp.test","sub":%q,"exp":%d}`, sub, h.Clock().Now().Add(time.Hour).Unix())))
		m := hmac.New(sha256.New, []byte(secret))
		m.Write([]byte(head + "." + body))
		return head + "." + body + "." + enc.EncodeToString(m.Sum(nil))
	}
	alice := "Bearer " + token("alice")
	wantStatus(t, h.Do(from("192.0.2.1", "/api").Header("authorization", alice)), 200)
	// Another address, the same verified caller: the same bucket.
	r := h.Do(from("192.0.2.2", "/api").Header("authorization", alice))
	wantStatus(t, r, 429)
	if r.LocalReplyBy != "rate-limit" {
		t.Errorf("429 by %q, want rate-limit", r.LocalReplyBy)
	}
	vip := "Bearer " + token("vip-bob")
	for i := 0; i < 3; i++ {
		wantStatus(t, h.Do(from("192.0.2.3", "/api").Header("authorization", vip)), 200)
	}
	wantStatus(t, h.Do(from("192.0.2.3", "/api").Header("authorization", vip)), 429)
	// Anonymous callers are keyed by address; claiming to be a VIP in a
	// header changes nothing (jwt-auth strips it, and rate-limit never
	// reads it).
	wantStatus(t, h.Do(from("192.0.2.4", "/open").Header("x-user-id", "vip-eve")), 200)
	wantStatus(t, h.Do(from("192.0.2.4", "/open").Header("x-user-id", "vip-eve")), 429)
}
