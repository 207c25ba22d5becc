package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/concierge-wasm/concierge/hosttest"
)

// soakMaxMemory is the linear-memory bound README.md states for one VM.
const soakMaxMemory = 32 << 20

// soakConfig is the standard pair of providers with the asymmetric one's
// keys from a remote JWKS (cluster "idp"), so that the soak covers the
// remote-key machinery too: its ticks, shared data and lease.
func soakConfig(tb testing.TB) string {
	algs, _ := json.Marshal(asymAlgs)
	hs, _ := json.Marshal(hmacAlgs)
	return fmt.Sprintf(`{"realm":"api","providers":[
		{"name":"main","issuer":%q,"audiences":["api"],"algorithms":%s,
		 "remote_jwks":{"http_uri":{"uri":"https://idp.example/.well-known/jwks.json","cluster":"idp"}}},
		{"name":"hmac","issuer":%q,"algorithms":%s,"hmac_secret":%q}]}`, testIssuer, algs, testHMACIssuer, hs, testSecret)
}

// TestSoak sends 20,000 requests through one worker VM: valid tokens that
// the cache serves, and a steady share of bad ones that are verified (and
// refused) every time. Linear memory must stay under soakMaxMemory, and
// the VM must survive the garbage collections under the Envoy 1.33 WASI
// profile (hosttest's default).
func TestSoak(t *testing.T) {
	h := newHost(t, soakConfig(t), hosttest.Workers(1), hosttest.Cluster("idp", newIdP(t, 200, testJWKS(t))))
	now := h.Clock().Now()
	k := testKeys(t)
	var valid []string
	for i, alg := range append(append([]string{}, asymAlgs...), hmacAlgs...) {
		c := claimsFor(alg, now)
		c["jti"] = fmt.Sprint("soak-", i)
		h := map[string]any{"alg": alg}
		if kid := kidFor(alg); kid != "" {
			h["kid"] = kid
		}
		valid = append(valid, signToken(t, alg, k.signingKey(alg), h, c))
	}
	good := goodToken(t, "RS256", now)
	invalid := []struct{ token, reason string }{
		{"", "missing token"},
		{good[:len(good)-4] + "AAAA", "invalid signature"},
		{rsToken(t, claimsAt(now, map[string]any{"exp": now.Add(-time.Hour).Unix()})), "token expired"},
		{b64([]byte(`{"alg":"none"}`)) + "." + strings.Split(good, ".")[1] + ".", "unsupported algorithm"},
		{strings.Repeat("a.", 3000), "malformed token"},
	}
	rep := hosttest.RunSoak(t, h, hosttest.Soak{
		Requests:       20000,
		MaxMemoryBytes: soakMaxMemory,
		Request: func(i int) *hosttest.Request {
			r := hosttest.GET("/api").Header("x-request-id", fmt.Sprint("soak-", i)).Header("x-user-id", "spoof")
			tok := valid[i%len(valid)]
			if i%4 == 3 {
				tok = invalid[(i/4)%len(invalid)].token
			}
			if tok != "" {
				r.Header("authorization", "Bearer "+tok)
			}
			return r
		},
		Check: func(i int, r *hosttest.Response) error {
			if i%4 == 3 {
				want := invalid[(i/4)%len(invalid)].reason
				if r.Status != 401 || !strings.Contains(string(r.Body), `"error":"`+want+`"`) {
					return fmt.Errorf("got %v, want 401 %q", r, want)
				}
				return nil
			}
			if r.Status != 200 || r.Upstream.Header("x-user-id") != "user-1" {
				return fmt.Errorf("got %v, want 200 for user-1", r)
			}
			return nil
		},
	})
	t.Log(rep)
	wantEqual(t, metricAllowed, metric(t, h, metricAllowed), 15000)
	wantEqual(t, metricDenied, metric(t, h, metricDenied), 5000)
}

// TestWasmGarbageCollectsUnderEnvoy133: a VM that uses remote JWKS (ticks,
// callouts, the lease ID) keeps collecting garbage under the Envoy 1.33
// WASI profile, where poll_oneoff fails: nothing in the module may start
// the Go netpoller (no timers, no crypto/rand; see leaseOwner). hosttest
// fails the test if the VM traps.
func TestWasmGarbageCollectsUnderEnvoy133(t *testing.T) {
	h := newHost(t, soakConfig(t), hosttest.Workers(1), hosttest.WithProfile(hosttest.Envoy133),
		hosttest.Cluster("idp", newIdP(t, 200, testJWKS(t))))
	now := h.Clock().Now()
	wantStatus(t, h.Do(get("/api", goodToken(t, "RS256", now))), 200)
	// HS256 tokens of ~7 KB with a bad signature: verified (and refused)
	// every time, some 30 KB of garbage per request.
	c := claimsFor("HS256", now)
	c["pad"] = strings.Repeat("x", 5000)
	bad := signToken(t, "HS256", []byte(testSecret), map[string]any{"alg": "HS256"}, c)
	bad = bad[:len(bad)-4] + "AAAA"
	for i := range 500 {
		if resp := h.Do(get("/api", bad)); resp.Status != 401 {
			t.Fatalf("request %d: %v", i, resp)
		}
	}
	h.Clock().Advance(3 * time.Second) // ticks
	wantStatus(t, h.Do(get("/api", goodToken(t, "ES256", h.Clock().Now()))), 200)
	if m := h.MemoryBytes("jwt-auth")[1]; m > 32<<20 {
		t.Errorf("the VM grew to %d bytes: is the GC running?", m)
	}
}
