package main

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"math/big"
	"strings"
	"testing"
)

func TestParseJWKS(t *testing.T) {
	k := testKeys(t)
	rsaKey := rsaJWK(&k.rsa.PublicKey, "r")
	p256 := ecJWK(&k.p256.PublicKey, "e")
	ed := edJWK(k.ed.Public().(ed25519.PublicKey), "d")
	n := b64(k.rsa.N.Bytes())
	x, y := ecCoords(&k.p256.PublicKey)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	// A point off the curve: y+1.
	yBad := new(big.Int).Add(new(big.Int).SetBytes(mustB64(t, y)), big.NewInt(1))
	yBadB64 := b64(yBad.FillBytes(make([]byte, 32)))
	ok := func(keys ...string) string { return `{"keys":[` + strings.Join(keys, ",") + `]}` }

	for _, tc := range []struct {
		name  string
		jwks  string
		want  string // error, "" for success
		count int    // keys kept on success
	}{
		{"one of each", ok(rsaKey, p256, ed), "", 3},
		{"extra top-level members", `{"keys":[` + rsaKey + `],"x":1}`, "", 1},
		{"enc key skipped", ok(rsaKey, `{"kty":"RSA","use":"enc","n":"AA","e":"AQAB"}`), "", 1},
		{"key_ops without verify skipped", ok(rsaKey, `{"kty":"RSA","key_ops":["encrypt"],"n":"AA","e":"AQAB"}`), "", 1},
		{"key_ops with verify kept", ok(`{"kty":"RSA","key_ops":["sign","verify"],"n":"` + n + `","e":"AQAB"}`), "", 1},
		{"encryption alg skipped", ok(rsaKey, `{"kty":"RSA","alg":"RSA-OAEP","n":"AA","e":"AQAB"}`), "", 1},
		{"alg restricts", ok(`{"kty":"RSA","alg":"PS256","n":"` + n + `","e":"AQAB"}`), "", 1},
		{"garbage", `not json`, "invalid JSON", 0},
		{"array", `[]`, `must be a JWKS object {"keys": [...]}, got []`, 0},
		{"no keys", `{}`, "keys: required", 0},
		{"keys not array", `{"keys":{}}`, "keys: must be an array, got {}", 0},
		{"empty", `{"keys":[]}`, "keys: must not be empty", 0},
		{"only enc keys", ok(`{"kty":"RSA","use":"enc","n":"AA","e":"AQAB"}`), "keys: no signature verification key", 0},
		{"key not object", ok(`"x"`), `keys[0]: must be an object, got "x"`, 0},
		{"kty missing", ok(`{"n":"AA"}`), "keys[0].kty: required", 0},
		{"kty not string", ok(`{"kty":1}`), "keys[0].kty: must be a string, got 1", 0},
		{"kty unknown", ok(rsaKey, `{"kty":"XYZ"}`), `keys[1].kty: unsupported key type "XYZ"`, 0},
		{"kty oct", ok(`{"kty":"oct","k":"AyM1"}`), `keys[0].kty: unsupported key type "oct": symmetric keys go in hmac_secret`, 0},
		{"duplicate member", ok(`{"kty":"RSA","n":"` + n + `","e":"AQAB","e":"AQAB"}`), `keys[0]: duplicate member "e"`, 0},
		{"private RSA", ok(`{"kty":"RSA","n":"` + n + `","e":"AQAB","d":"AA"}`), "keys[0].d: private key material is not accepted; give only the public key", 0},
		{"private EC", ok(`{"kty":"EC","crv":"P-256","x":"` + x + `","y":"` + y + `","d":"AA"}`), "keys[0].d: private key material is not accepted; give only the public key", 0},
		{"RSA no n", ok(`{"kty":"RSA","e":"AQAB"}`), "keys[0].n: required", 0},
		{"RSA no e", ok(`{"kty":"RSA","n":"` + n + `"}`), "keys[0].e: required", 0},
		{"RSA n not base64url", ok(`{"kty":"RSA","n":"+/+/","e":"AQAB"}`), "keys[0].n: must be a base64url unsigned integer without leading zeros", 0},
		{"RSA n leading zero", ok(`{"kty":"RSA","n":"` + b64(append([]byte{0}, k.rsa.N.Bytes()...)) + `","e":"AQAB"}`), "keys[0].n: must be a base64url unsigned integer without leading zeros", 0},
		{"RSA 1024 bits", ok(rsaJWK(&small.PublicKey, "s")), "keys[0].n: modulus of 1024 bits, need 2048 to 8192", 0},
		{"RSA e even", ok(`{"kty":"RSA","n":"` + n + `","e":"AQAA"}`), "keys[0].e: invalid RSA exponent 65536", 0},
		{"RSA e one", ok(`{"kty":"RSA","n":"` + n + `","e":"AQ"}`), "keys[0].e: invalid RSA exponent 1", 0},
		{"RSA e too long", ok(`{"kty":"RSA","n":"` + n + `","e":"AQAAAAAB"}`), "keys[0].e: must be a base64url unsigned integer of at most 4 bytes", 0},
		{"RSA alg mismatch", ok(`{"kty":"RSA","alg":"ES256","n":"` + n + `","e":"AQAB"}`), `keys[0].alg: "ES256" does not fit this RSA key`, 0},
		{"alg none", ok(`{"kty":"RSA","alg":"none","n":"` + n + `","e":"AQAB"}`), `keys[0].alg: "none" is not allowed`, 0},
		{"EC no crv", ok(`{"kty":"EC","x":"` + x + `","y":"` + y + `"}`), "keys[0].crv: required", 0},
		{"EC unknown crv", ok(`{"kty":"EC","crv":"P-192","x":"` + x + `","y":"` + y + `"}`), `keys[0].crv: unsupported curve "P-192"`, 0},
		{"EC secp256k1", ok(`{"kty":"EC","crv":"secp256k1","x":"` + x + `","y":"` + y + `"}`), `keys[0].crv: unsupported curve "secp256k1"`, 0},
		{"EC short x", ok(`{"kty":"EC","crv":"P-256","x":"AAAA","y":"` + y + `"}`), "keys[0].x: must be a base64url coordinate of 32 bytes", 0},
		{"EC no y", ok(`{"kty":"EC","crv":"P-256","x":"` + x + `"}`), "keys[0].y: must be a base64url coordinate of 32 bytes", 0},
		{"EC off curve", ok(`{"kty":"EC","crv":"P-256","x":"` + x + `","y":"` + yBadB64 + `"}`), "keys[0]: not a point on P-256", 0},
		{"EC P-256 coords as P-384", ok(`{"kty":"EC","crv":"P-384","x":"` + x + `","y":"` + y + `"}`), "keys[0].x: must be a base64url coordinate of 48 bytes", 0},
		{"EC alg mismatch", ok(`{"kty":"EC","crv":"P-256","alg":"ES384","x":"` + x + `","y":"` + y + `"}`), `keys[0].alg: "ES384" does not fit this EC key`, 0},
		{"OKP X25519", ok(`{"kty":"OKP","crv":"X25519","x":"AA"}`), `keys[0].crv: unsupported curve "X25519"`, 0},
		{"OKP Ed448", ok(`{"kty":"OKP","crv":"Ed448","x":"AA"}`), `keys[0].crv: unsupported curve "Ed448"`, 0},
		{"OKP short", ok(`{"kty":"OKP","crv":"Ed25519","x":"AAAA"}`), "keys[0].x: must be a base64url Ed25519 public key of 32 bytes", 0},
		{"kid not a string", ok(`{"kty":"OKP","crv":"Ed25519","kid":5,"x":"AA"}`), "keys[0].kid: must be a string, got 5", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ks, err := parseJWKS([]byte(tc.jwks))
			if got := errString(err); tc.want != "" && got != tc.want || tc.want == "" && err != nil {
				t.Fatalf("parseJWKS(%s)\n got  %s\n want %s", tc.name, got, tc.want)
			}
			if tc.want == "" && len(ks.keys) != tc.count {
				t.Errorf("parseJWKS(%s) kept %d keys, want %d", tc.name, len(ks.keys), tc.count)
			}
		})
	}
}

// TestParseFetchedJWKS: a fetched key set skips the keys it cannot use,
// naming each, and fails only when none is left or the document is no key
// set; the same documents inline (parseJWKS) are refused.
func TestParseFetchedJWKS(t *testing.T) {
	k := testKeys(t)
	good := rsaJWK(&k.rsa.PublicKey, "r")
	x, y := ecCoords(&k.p256.PublicKey)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	x25519 := `{"kty":"OKP","crv":"X25519","kid":"enc-x","x":"` + b64(make([]byte, 32)) + `"}`
	secp := `{"kty":"EC","crv":"secp256k1","kid":"k1","x":"` + x + `","y":"` + y + `"}`
	rsa1024 := rsaJWK(&small.PublicKey, "old")
	set := func(keys ...string) string { return `{"keys":[` + strings.Join(keys, ",") + `]}` }

	for _, tc := range []struct {
		name    string
		jwks    string
		want    string // error, "" for success
		count   int    // keys kept on success
		skipped []string
	}{
		{"X25519 without use", set(x25519, good), "", 1, []string{`keys[0] (kid "enc-x"): crv: unsupported curve "X25519"`}},
		{"secp256k1", set(good, secp), "", 1, []string{`keys[1] (kid "k1"): crv: unsupported curve "secp256k1"`}},
		{"RSA-1024", set(rsa1024, good), "", 1, []string{`keys[0] (kid "old"): n: modulus of 1024 bits, need 2048 to 8192`}},
		{"three kinds", set(x25519, secp, good, rsa1024), "", 1, []string{
			`keys[0] (kid "enc-x"): crv: unsupported curve "X25519"`,
			`keys[1] (kid "k1"): crv: unsupported curve "secp256k1"`,
			`keys[3] (kid "old"): n: modulus of 1024 bits, need 2048 to 8192`}},
		{"private members", set(good, `{"kty":"RSA","kid":"p","n":"AA","e":"AQAB","d":"AA"}`), "", 1,
			[]string{`keys[1] (kid "p"): d: private key material is not accepted; give only the public key`}},
		{"not an object, no kid", set(`7`, good), "", 1, []string{`keys[0] (no kid): must be an object, got 7`}},
		{"unknown kty", set(`{"kty":"XYZ"}`, good), "", 1, []string{`keys[0] (no kid): kty: unsupported key type "XYZ"`}},
		{"enc keys are not counted", set(good, `{"kty":"RSA","use":"enc","n":"AA","e":"AQAB"}`), "", 1, nil},
		{"only unusable keys", set(x25519, secp), "keys: no usable signature verification key (2 unusable skipped)", 0, []string{
			`keys[0] (kid "enc-x"): crv: unsupported curve "X25519"`,
			`keys[1] (kid "k1"): crv: unsupported curve "secp256k1"`}},
		{"only enc keys", set(`{"kty":"RSA","use":"enc","n":"AA","e":"AQAB"}`), "keys: no signature verification key", 0, nil},
		{"garbage", `not json`, "invalid JSON", 0, nil},
		{"empty", `{"keys":[]}`, "keys: must not be empty", 0, nil},
		{"keys not array", `{"keys":{}}`, "keys: must be an array, got {}", 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ks, skipped, err := parseFetchedJWKS([]byte(tc.jwks))
			if got := errString(err); tc.want != "" && got != tc.want || tc.want == "" && err != nil {
				t.Fatalf("parseFetchedJWKS(%s)\n got  %s\n want %s", tc.name, got, tc.want)
			}
			if tc.want == "" && len(ks.keys) != tc.count {
				t.Errorf("parseFetchedJWKS(%s) kept %d keys, want %d", tc.name, len(ks.keys), tc.count)
			}
			var got []string
			for _, s := range skipped {
				got = append(got, s.String())
			}
			if strings.Join(got, "\n") != strings.Join(tc.skipped, "\n") {
				t.Errorf("parseFetchedJWKS(%s) skipped\n %q\nwant\n %q", tc.name, got, tc.skipped)
			}
			if len(tc.skipped) > 0 {
				if _, err := parseJWKS([]byte(tc.jwks)); err == nil {
					t.Errorf("parseJWKS(%s) = success, want the inline set refused", tc.name)
				}
			}
		})
	}
	one := edJWK(k.ed.Public().(ed25519.PublicKey), "d")
	many := `{"keys":[` + strings.Repeat(x25519+",", maxJWKSKeys) + one + `]}`
	if _, _, err := parseFetchedJWKS([]byte(many)); errString(err) != fmt.Sprintf("keys: more than %d keys", maxJWKSKeys) {
		t.Errorf("parseFetchedJWKS(%d keys) = %v, want the bound", maxJWKSKeys+1, errString(err))
	}
}

func TestParseJWKSTooManyKeys(t *testing.T) {
	k := testKeys(t)
	one := edJWK(k.ed.Public().(ed25519.PublicKey), "d")
	keys := strings.Repeat(one+",", maxJWKSKeys) + one
	_, err := parseJWKS([]byte(`{"keys":[` + keys + `]}`))
	if want := fmt.Sprintf("keys: more than %d keys", maxJWKSKeys); errString(err) != want {
		t.Errorf("parseJWKS(%d keys) = %v, want %s", maxJWKSKeys+1, errString(err), want)
	}
}

func ecCoords(pub *ecdsa.PublicKey) (x, y string) {
	size := (pub.Curve.Params().BitSize + 7) / 8
	raw, _ := pub.Bytes()
	return b64(raw[1 : 1+size]), b64(raw[1+size:])
}

func mustB64(tb testing.TB, s string) []byte {
	tb.Helper()
	b, ok := b64url(s)
	if !ok {
		tb.Fatalf("b64url(%q) failed", s)
	}
	return b
}

// FuzzParseJWKS: any input either fails with a message or yields keys that
// are all usable public keys of a kind we support; never a panic.
func FuzzParseJWKS(f *testing.F) {
	k := testKeys(f)
	f.Add([]byte(testJWKS(f)))
	f.Add([]byte(`{"keys":[` + ecJWK(&k.p384.PublicKey, "a") + `]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"AA"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-521","x":"","y":""}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ks, err := parseJWKS(data)
		if err != nil {
			if ks != nil || err.Error() == "" {
				t.Fatalf("parseJWKS(%q) = %v, %q", data, ks, err)
			}
			return
		}
		if len(ks.keys) == 0 {
			t.Fatalf("parseJWKS(%q) = empty set without error", data)
		}
		for _, key := range ks.keys {
			switch pub := key.pub.(type) {
			case *rsa.PublicKey:
				if key.kind != kindRSA || pub.N.BitLen() < minRSABits || pub.E < 3 {
					t.Fatalf("parseJWKS(%q): bad RSA key %+v", data, key)
				}
			case *ecdsa.PublicKey:
				curves := map[keyKind]elliptic.Curve{kindP256: elliptic.P256(), kindP384: elliptic.P384(), kindP521: elliptic.P521()}
				if curves[key.kind] != pub.Curve {
					t.Fatalf("parseJWKS(%q): EC key of kind %d on %s", data, key.kind, pub.Curve.Params().Name)
				}
			case ed25519.PublicKey:
				if key.kind != kindEd25519 || len(pub) != ed25519.PublicKeySize {
					t.Fatalf("parseJWKS(%q): bad Ed25519 key", data)
				}
			default:
				t.Fatalf("parseJWKS(%q): key of type %T", data, key.pub)
			}
			if key.alg != nil && key.alg.kind != key.kind {
				t.Fatalf("parseJWKS(%q): alg %s on a key of kind %d", data, key.alg.name, key.kind)
			}
		}
	})
}
