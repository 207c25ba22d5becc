package main

import (
	"testing"
)

// BenchmarkVerify measures the native cost of the token path (extraction,
// parse, signature, claims) per algorithm, without and with the cache. The
// same benchmark through hosttest gives the wasm tax.
func BenchmarkVerify(b *testing.B) {
	for _, alg := range []string{"HS256", "RS256", "ES256", "EdDSA"} {
		tok := goodToken(b, alg, testNow)
		headers := bearer(tok)
		b.Run(alg+"/uncached", func(b *testing.B) {
			v := testVerifier(b)
			v.cache = newTokenCache(0, 0) // stores nothing
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.authenticate(headers, "/", testNow); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(alg+"/cached", func(b *testing.B) {
			v := testVerifier(b)
			if _, err := v.authenticate(headers, "/", testNow); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if res, err := v.authenticate(headers, "/", testNow); err != nil || !res.cached {
					b.Fatal(err, res.cached)
				}
			}
		})
	}
}

// BenchmarkReject measures what a client can make us spend on a bad token.
func BenchmarkReject(b *testing.B) {
	good := goodToken(b, "RS256", testNow)
	for name, tok := range map[string]string{
		"alg-none":      b64([]byte(`{"alg":"none"}`)) + "." + b64([]byte(`{"iss":"x"}`)) + ".",
		"bad-signature": good[:len(good)-2] + "AA",
		"dots":          "...................................",
	} {
		b.Run(name, func(b *testing.B) {
			v := testVerifier(b)
			headers := bearer(tok)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.authenticate(headers, "/", testNow); err == nil {
					b.Fatal("accepted")
				}
			}
		})
	}
}

func BenchmarkClaimHeaders(b *testing.B) {
	p := &provider{claimToHeaders: defaultClaimToHeaders}
	c := claims{json: `{"iss":"https://issuer.example","sub":"user-1","aud":"api","exp":1900000000,"roles":["reader","writer"]}`}
	dst := make([][2]string, 0, 4)
	b.ReportAllocs()
	for b.Loop() {
		dst = p.claimHeaders(c, dst[:0])
	}
}
