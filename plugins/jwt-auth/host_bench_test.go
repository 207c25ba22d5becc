package main

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/concierge-wasm/concierge/hosttest"
)

// benchPoolSize exceeds the verified-token cache (cacheMaxEntries), so a
// pool cycled in order misses the LRU cache on every request.
const benchPoolSize = cacheMaxEntries + 76

var (
	benchPoolsMu sync.Mutex
	benchPools   = map[string][]string{}
)

// benchPool returns benchPoolSize distinct valid tokens of alg (distinct
// "jti"), valid for a day from now; made once per test binary.
func benchPool(b *testing.B, alg string, now time.Time) []string {
	benchPoolsMu.Lock()
	defer benchPoolsMu.Unlock()
	if p, ok := benchPools[alg]; ok {
		return p
	}
	k := testKeys(b)
	h := map[string]any{"alg": alg}
	if kid := kidFor(alg); kid != "" {
		h["kid"] = kid
	}
	p := make([]string, benchPoolSize)
	for i := range p {
		c := claimsFor(alg, now)
		c["exp"] = now.Add(24 * time.Hour).Unix()
		c["jti"] = fmt.Sprint("bench-", i)
		p[i] = signToken(b, alg, k.signingKey(alg), h, c)
	}
	benchPools[alg] = p
	return p
}

// BenchmarkWasmRequest is the cost of one whole request through the
// compiled filter in hosttest (one worker), per algorithm: "uncached"
// cycles through more distinct tokens than the cache holds, "cached" sends
// one token again and again. Compare with BenchmarkVerify (native, the
// token path only) and hosttest's BenchmarkNoopRequest (the host's own
// per-request cost).
func BenchmarkWasmRequest(b *testing.B) {
	h := newHost(b, withRealm(b, ""), hosttest.Workers(1))
	for _, alg := range []string{"HS256", "RS256", "ES256", "EdDSA"} {
		pool := benchPool(b, alg, h.Clock().Now())
		for _, mode := range []string{"uncached", "cached"} {
			reqs := make([]*hosttest.Request, len(pool))
			for i, tok := range pool {
				if mode == "cached" {
					tok = pool[0]
				}
				reqs[i] = hosttest.GET("/api").Header("authorization", "Bearer "+tok)
			}
			b.Run(alg+"/"+mode, func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if resp := h.Do(reqs[i%len(reqs)]); resp.Status != 200 {
						b.Fatalf("%v", resp)
					}
					i++
				}
			})
		}
	}
	b.Run("missing-token", func(b *testing.B) {
		req := hosttest.GET("/api")
		b.ReportAllocs()
		for b.Loop() {
			if resp := h.Do(req); resp.Status != 401 {
				b.Fatalf("%v", resp)
			}
		}
	})
}
