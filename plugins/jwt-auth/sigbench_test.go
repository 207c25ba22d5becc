package main

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"math/big"
	"testing"
)

// BenchmarkSignature is the signature check alone, natively, with the key
// already parsed: good and forged signatures per algorithm, and the pieces
// of an ES256 check (hash, ecdsa.Verify, token parsing). Inside the wasm
// VM the same work is the difference between BenchmarkWasmForgedVsMissing's
// forged and missing requests.
func BenchmarkSignature(b *testing.B) {
	ks, err := parseJWKS([]byte(testJWKS(b)))
	if err != nil {
		b.Fatal(err)
	}
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		for _, forged := range []bool{false, true} {
			tok := goodToken(b, alg, testNow)
			name := alg + "/good"
			if forged {
				k := testKeys(b)
				key := map[string]any{"RS256": k.rsaOther, "ES256": k.p256Other, "EdDSA": k.ed}[alg]
				tok = signToken(b, alg, key, map[string]any{"alg": alg, "kid": kidFor(alg)}, claimsFor(alg, testNow))
				if alg == "EdDSA" {
					tok = tok[:len(tok)-4] + "AAAA"
				}
				name = alg + "/forged"
			}
			pt, err := parseToken(tok)
			if err != nil {
				b.Fatal(err)
			}
			b.Run(name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := verifyWithKeys(ks, &pt); (err == nil) == forged {
						b.Fatal(err)
					}
				}
			})
		}
	}
	// The pieces of an ES256 check, to see where the time goes.
	tok := goodToken(b, "ES256", testNow)
	pt, _ := parseToken(tok)
	pub := testKeys(b).p256.Public().(*ecdsa.PublicKey)
	digest := sha256.Sum256([]byte(pt.signingInput))
	b.Run("ES256/sha256", func(b *testing.B) {
		for b.Loop() {
			sha256.Sum256(bytesOf(pt.signingInput))
		}
	})
	b.Run("ES256/ecdsa.Verify", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r := new(big.Int).SetBytes(pt.sig[:32])
			s := new(big.Int).SetBytes(pt.sig[32:])
			if !ecdsa.Verify(pub, digest[:], r, s) {
				b.Fatal("bad")
			}
		}
	})
	b.Run("ES256/parse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			parseToken(tok)
		}
	})
}
