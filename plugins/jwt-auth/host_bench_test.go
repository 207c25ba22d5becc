package main

import (
	"fmt"
	"slices"
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
	// Forged ES256 tokens one at a time (BenchmarkWasmForgedVsMissing
	// interleaves them with the others): sent again and again, and
	// expired ones cycled.
	now := h.Clock().Now()
	for _, kind := range []struct {
		name string
		toks []string
	}{
		{"forged-replay", forgedPool(b, "ES256", now, 1, false)},
		{"forged-expired", forgedPool(b, "ES256", now, benchPoolSize, true)},
	} {
		reqs := make([]*hosttest.Request, len(kind.toks))
		for i, tok := range kind.toks {
			reqs[i] = hosttest.GET("/api").Header("authorization", "Bearer "+tok)
		}
		b.Run(kind.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if resp := h.Do(reqs[i%len(reqs)]); resp.Status != 401 {
					b.Fatalf("%v", resp)
				}
				i++
			}
		})
	}
}

// forgedPool returns n distinct forged tokens of alg: the right kid and
// valid claims, signed by another key of the same type (what an attacker
// who knows the kid can make at will). expired makes their exp an hour old.
func forgedPool(b *testing.B, alg string, now time.Time, n int, expired bool) []string {
	k := testKeys(b)
	key := map[string]any{"ES256": k.p256Other, "RS256": k.rsaOther}[alg]
	p := make([]string, n)
	for i := range p {
		c := claimsFor(alg, now)
		c["exp"] = now.Add(24 * time.Hour).Unix()
		if expired {
			c["exp"] = now.Add(-time.Hour).Unix()
		}
		c["jti"] = fmt.Sprint("forged-", i)
		p[i] = signToken(b, alg, key, map[string]any{"alg": alg, "kid": kidFor(alg)}, c)
	}
	return p
}

// BenchmarkWasmForgedVsMissing is what a forged token makes the filter
// spend, side by side with a request without a token and a valid one,
// through the compiled module (one worker). Each round sends one request
// of every kind, interleaved so that they share the machine's state; each
// request is timed, and the median per kind is reported (µs/req metrics)
// with its ratio to the request without a token (x-missing).
//
//	missing        no token: 401 missing token
//	valid          one valid ES256 token, again and again (cached)
//	valid-fresh    distinct valid ES256 tokens, more than the cache holds
//	forged-replay  one forged ES256 token (valid kid and claims, wrong key), again and again
//	forged-es256   distinct forged ES256 tokens
//	forged-rs256   distinct forged RS256 tokens
//	forged-expired distinct forged ES256 tokens whose exp has passed
func BenchmarkWasmForgedVsMissing(b *testing.B) {
	h := newHost(b, withRealm(b, ""), hosttest.Workers(1))
	now := h.Clock().Now()
	n := benchPoolSize
	kinds := []struct {
		name   string
		status int
		toks   []string // nil: no token
	}{
		{"missing", 401, nil},
		{"valid", 200, benchPool(b, "ES256", now)[:1]},
		{"valid-fresh", 200, benchPool(b, "ES256", now)},
		{"forged-replay", 401, forgedPool(b, "ES256", now, 1, false)},
		{"forged-es256", 401, forgedPool(b, "ES256", now, n, false)},
		{"forged-rs256", 401, forgedPool(b, "RS256", now, n, false)},
		{"forged-expired", 401, forgedPool(b, "ES256", now, n, true)},
	}
	reqs := make([][]*hosttest.Request, len(kinds))
	for k, kd := range kinds {
		if kd.toks == nil {
			reqs[k] = []*hosttest.Request{hosttest.GET("/api")}
			continue
		}
		for _, tok := range kd.toks {
			reqs[k] = append(reqs[k], hosttest.GET("/api").Header("authorization", "Bearer "+tok))
		}
	}
	samples := make([][]float64, len(kinds))
	round := 0
	for b.Loop() {
		for k, kd := range kinds {
			req := reqs[k][round%len(reqs[k])]
			start := time.Now()
			resp := h.Do(req)
			samples[k] = append(samples[k], float64(time.Since(start).Nanoseconds()))
			if resp.Status != kd.status {
				b.Fatalf("%s: %v", kd.name, resp)
			}
		}
		round++
	}
	med := make([]float64, len(kinds))
	for k := range kinds {
		slices.Sort(samples[k])
		med[k] = samples[k][len(samples[k])/2]
	}
	for k, kd := range kinds {
		b.ReportMetric(med[k]/1e3, kd.name+"-µs/req")
		if k > 0 {
			b.ReportMetric(med[k]/med[0], kd.name+"-x-missing")
		}
	}
}
