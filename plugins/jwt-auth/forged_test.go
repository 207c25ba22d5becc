package main

// What a forged token costs: the checks that need no signature run before
// it, and a forgery sent again is answered from the cache of failed tokens.

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"
)

// forge signs claims with a key of alg's type that is not the provider's,
// under the provider's kid: what anyone who has seen one token can make.
func forge(tb testing.TB, alg string, c map[string]any) string {
	tb.Helper()
	k := testKeys(tb)
	key := map[string]any{"RS256": k.rsaOther, "ES256": k.p256Other, "HS256": []byte(testSecret + "x")}[alg]
	h := map[string]any{"alg": alg}
	if kid := kidFor(alg); kid != "" {
		h["kid"] = kid
	}
	return signToken(tb, alg, key, h, c)
}

// TestVerifyClaimsBeforeSignature: a token whose claims fail gets the same
// reason whether its signature is genuine or forged, and no signature is
// checked for it (nothing lands in the cache of failed tokens). The
// reason therefore says nothing about the signature.
func TestVerifyClaimsBeforeSignature(t *testing.T) {
	for _, alg := range []string{"RS256", "ES256", "HS256"} {
		for _, tc := range []struct {
			name    string
			changes map[string]any
			want    error
		}{
			{"expired", map[string]any{"exp": testNow.Add(-2 * time.Minute).Unix()}, errExpired},
			{"nbf in the future", map[string]any{"nbf": testNow.Add(2 * time.Minute).Unix()}, errNotYetValid},
			{"iat in the future", map[string]any{"iat": testNow.Add(2 * time.Minute).Unix()}, errIssuedInFuture},
			{"missing exp", map[string]any{"exp": nil}, errMissingExp},
			{"exp a string", map[string]any{"exp": "tomorrow"}, errMalformed},
			{"wrong aud", map[string]any{"aud": "other"}, errAudience},
			{"aud missing", map[string]any{"aud": nil}, errAudience},
		} {
			if alg == "HS256" && (tc.want == errAudience) {
				continue // the HMAC provider has no audiences
			}
			t.Run(alg+"/"+tc.name, func(t *testing.T) {
				c := claimsFor(alg, testNow)
				for k, v := range tc.changes {
					if v == nil {
						delete(c, k)
					} else {
						c[k] = v
					}
				}
				k := testKeys(t)
				h := map[string]any{"alg": alg}
				if kid := kidFor(alg); kid != "" {
					h["kid"] = kid
				}
				for name, tok := range map[string]string{
					"genuine": signToken(t, alg, k.signingKey(alg), h, c),
					"forged":  forge(t, alg, c),
				} {
					v := testVerifier(t)
					if _, err := v.authenticate(bearer(tok), "/", testNow); !errors.Is(err, tc.want) {
						t.Errorf("authenticate(%s %s token) = %v, want %v", name, tc.name, errString(err), tc.want)
					}
					if n := v.failed.len(); n != 0 {
						t.Errorf("authenticate(%s %s token) checked the signature (%d failed tokens remembered)", name, tc.name, n)
					}
				}
			})
		}
	}
	// Without remote keys yet, an expired token is refused at once rather
	// than made to wait for a fetch.
	cfg := mustConfig(t, fmt.Sprintf(`{"providers":[{"issuer":%q,"algorithms":["ES256"],
		"remote_jwks":{"http_uri":{"uri":"https://idp.example/.well-known/jwks.json","cluster":"idp"}}}]}`, testIssuer))
	c := claimsFor("ES256", testNow)
	c["exp"] = testNow.Add(-time.Hour).Unix()
	if _, err := newVerifier(cfg).authenticate(bearer(forge(t, "ES256", c)), "/", testNow); !errors.Is(err, errExpired) {
		t.Errorf("authenticate(expired token, no keys yet) = %v, want %v", errString(err), errExpired)
	}
}

// TestVerifyFailedTokensRemembered: a forged token sent again is refused
// from the cache of failed tokens, without a second signature check; the
// memory lasts while the key set it failed against is in use and at most
// failedMaxTTL, and never touches genuine tokens.
func TestVerifyFailedTokensRemembered(t *testing.T) {
	for _, alg := range []string{"RS256", "ES256", "HS256"} {
		t.Run(alg, func(t *testing.T) {
			v := testVerifier(t)
			forged := forge(t, alg, claimsFor(alg, testNow))
			for i, wantCached := range []bool{false, true, true} {
				res, err := v.authenticate(bearer(forged), "/", testNow.Add(time.Duration(i)*time.Second))
				if !errors.Is(err, errInvalidSig) || res.cached != wantCached {
					t.Errorf("authenticate(forged token, try %d) = cached %v, %v; want cached %v, %v", i+1, res.cached, errString(err), wantCached, errInvalidSig)
				}
			}
			if res, err := v.authenticate(bearer(forged), "/", testNow.Add(failedMaxTTL)); !errors.Is(err, errInvalidSig) || res.cached {
				t.Errorf("authenticate(forged token after failedMaxTTL) = cached %v, %v; want a fresh %v", res.cached, errString(err), errInvalidSig)
			}
			if _, err := v.authenticate(bearer(goodToken(t, alg, testNow)), "/", testNow); err != nil {
				t.Errorf("authenticate(genuine token) = %v, want success", err)
			}
		})
	}
	// A token that failed against one key set is checked again against
	// the next: here the IdP publishes, under the same kid, the key that
	// signed it.
	k := testKeys(t)
	cfg := mustConfig(t, fmt.Sprintf(`{"providers":[{"issuer":%q,"audiences":["api"],"algorithms":["ES256"],
		"remote_jwks":{"http_uri":{"uri":"https://idp.example/.well-known/jwks.json","cluster":"idp"}}}]}`, testIssuer))
	v := newVerifier(cfg)
	setKeys := func(jwk string) {
		ks, err := parseJWKS([]byte(`{"keys":[` + jwk + `]}`))
		if err != nil {
			t.Fatal(err)
		}
		v.setRemoteKeys(0, ks)
	}
	setKeys(ecJWK(&k.p256.PublicKey, "p256-1"))
	tok := forge(t, "ES256", claimsFor("ES256", testNow))
	for range 2 {
		if _, err := v.authenticate(bearer(tok), "/", testNow); !errors.Is(err, errInvalidSig) {
			t.Fatalf("authenticate(token of another key) = %v, want %v", errString(err), errInvalidSig)
		}
	}
	setKeys(ecJWK(&k.p256Other.PublicKey, "p256-1"))
	if res, err := v.authenticate(bearer(tok), "/", testNow); err != nil || res.cached {
		t.Errorf("authenticate(same token, new key set) = cached %v, %v; want a fresh success", res.cached, errString(err))
	}
}

// TestFailedCacheBounds: the cache holds at most its capacity, the oldest
// insertion goes first, and an expired digest is not reported.
func TestFailedCacheBounds(t *testing.T) {
	c := newFailedCache(3)
	d := func(i int) *[sha256.Size]byte { s := sha256.Sum256([]byte(fmt.Sprint(i))); return &s }
	exp := testNow.Add(time.Minute)
	for i := range 5 {
		c.add(d(i), i, nil, exp)
	}
	c.add(d(4), 4, nil, exp) // again: one entry, and its newer slot protects it
	for i, want := range []bool{false, false, false, true, true} {
		e, got := c.lookup(d(i), testNow)
		if got != want || got && e.provider != i {
			t.Errorf("lookup(%d) = %+v, %v; want present %v", i, e, got, want)
		}
	}
	if c.len() > 3 || len(c.ring) != 3 {
		t.Errorf("len %d, ring %d; want at most 3", c.len(), len(c.ring))
	}
	if _, ok := c.lookup(d(4), exp); ok {
		t.Error("lookup(4) at its expiry found it")
	}
	none := newFailedCache(0)
	none.add(d(1), 0, nil, exp)
	if _, ok := none.lookup(d(1), testNow); ok {
		t.Error("a cache of size 0 remembered a digest")
	}
}

// TestWasmForgedTokens: through the compiled module, a forged token with
// failing claims gets the claim's reason (no signature checked), and one
// with good claims "invalid signature", every time it is sent.
func TestWasmForgedTokens(t *testing.T) {
	h := newHost(t, withRealm(t, ""))
	now := h.Clock().Now()
	at := func(changes map[string]any) map[string]any { return claimsAt(now, changes) }
	for _, tc := range []struct {
		name, token, reason string
	}{
		{"ES256 expired", forge(t, "ES256", at(map[string]any{"exp": now.Add(-time.Hour).Unix()})), "token expired"},
		{"RS256 wrong aud", forge(t, "RS256", at(map[string]any{"aud": "other"})), "audience not allowed"},
		{"ES256 missing exp", forge(t, "ES256", at(map[string]any{"exp": nil})), "missing exp"},
		{"ES256 good claims", forge(t, "ES256", at(nil)), "invalid signature"},
		{"RS256 good claims", forge(t, "RS256", at(nil)), "invalid signature"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for range 3 {
				wantDenied(t, h.Do(get("/api", tc.token)), 401, tc.reason, invalid(tc.reason))
			}
		})
	}
	wantStatus(t, h.Do(get("/api", goodToken(t, "ES256", now))), 200)
}
