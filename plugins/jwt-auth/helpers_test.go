package main

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// testNow is the clock of every verification test; tokens are made relative
// to it, so nothing expires with the calendar.
var testNow = time.Date(2030, time.March, 4, 5, 6, 7, 0, time.UTC)

const (
	testIssuer     = "https://issuer.example"
	testHMACIssuer = "https://hmac.example"
	testAudience   = "api"
	// testSecret is 64 bytes: long enough for HS512.
	testSecret = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

// testKeyPairs are the signing keys of the tests, generated once per test
// binary (RSA generation is the slow part).
type testKeyPairs struct {
	rsa, rsaOther    *rsa.PrivateKey
	p256, p384, p521 *ecdsa.PrivateKey
	p256Other        *ecdsa.PrivateKey
	ed               ed25519.PrivateKey
}

var (
	keysOnce sync.Once
	keysVal  *testKeyPairs
)

func testKeys(tb testing.TB) *testKeyPairs {
	tb.Helper()
	keysOnce.Do(func() {
		k := &testKeyPairs{}
		check := func(e error) {
			if e != nil {
				panic(e) // crypto/rand does not fail
			}
		}
		var e error
		k.rsa, e = rsa.GenerateKey(rand.Reader, 2048)
		check(e)
		k.rsaOther, e = rsa.GenerateKey(rand.Reader, 2048)
		check(e)
		k.p256, e = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		check(e)
		k.p384, e = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		check(e)
		k.p521, e = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
		check(e)
		k.p256Other, e = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		check(e)
		_, k.ed, e = ed25519.GenerateKey(rand.Reader)
		check(e)
		keysVal = k
	})
	return keysVal
}

// signingKey returns the private key the tests sign alg with.
func (k *testKeyPairs) signingKey(alg string) any {
	switch {
	case strings.HasPrefix(alg, "HS"):
		return []byte(testSecret)
	case strings.HasPrefix(alg, "RS"), strings.HasPrefix(alg, "PS"):
		return k.rsa
	case alg == "ES256":
		return k.p256
	case alg == "ES384":
		return k.p384
	case alg == "ES512":
		return k.p521
	case alg == "EdDSA":
		return k.ed
	}
	panic("no key for " + alg)
}

// kidFor is the kid of the test JWKS key that verifies alg.
func kidFor(alg string) string {
	switch {
	case strings.HasPrefix(alg, "RS"), strings.HasPrefix(alg, "PS"):
		return "rsa-1"
	case alg == "ES256":
		return "p256-1"
	case alg == "ES384":
		return "p384-1"
	case alg == "ES512":
		return "p521-1"
	case alg == "EdDSA":
		return "ed-1"
	}
	return ""
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func rsaJWK(pub *rsa.PublicKey, kid string) string {
	return fmt.Sprintf(`{"kty":"RSA","kid":%q,"use":"sig","n":%q,"e":%q}`,
		kid, b64(pub.N.Bytes()), b64(big.NewInt(int64(pub.E)).Bytes()))
}

func ecJWK(pub *ecdsa.PublicKey, kid string) string {
	size := (pub.Curve.Params().BitSize + 7) / 8
	raw, err := pub.Bytes() // 0x04 || X || Y
	if err != nil {
		panic(err)
	}
	return fmt.Sprintf(`{"kty":"EC","kid":%q,"crv":%q,"x":%q,"y":%q}`,
		kid, pub.Curve.Params().Name, b64(raw[1:1+size]), b64(raw[1+size:]))
}

func edJWK(pub ed25519.PublicKey, kid string) string {
	return fmt.Sprintf(`{"kty":"OKP","kid":%q,"crv":"Ed25519","x":%q}`, kid, b64(pub))
}

// testJWKS is the key set of the main test provider: one key per family.
func testJWKS(tb testing.TB) string {
	k := testKeys(tb)
	return `{"keys":[` + strings.Join([]string{
		rsaJWK(&k.rsa.PublicKey, "rsa-1"),
		ecJWK(&k.p256.PublicKey, "p256-1"),
		ecJWK(&k.p384.PublicKey, "p384-1"),
		ecJWK(&k.p521.PublicKey, "p521-1"),
		edJWK(k.ed.Public().(ed25519.PublicKey), "ed-1"),
	}, ",") + `]}`
}

var asymAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
var hmacAlgs = []string{"HS256", "HS384", "HS512"}

// testConfigJSON is the standard two-provider configuration: every
// asymmetric algorithm from a local JWKS, and the HS algorithms from a
// secret.
func testConfigJSON(tb testing.TB) string {
	algs, _ := json.Marshal(asymAlgs)
	hs, _ := json.Marshal(hmacAlgs)
	return fmt.Sprintf(`{"providers":[
		{"name":"main","issuer":%q,"audiences":[%q],"algorithms":%s,"local_jwks":%s},
		{"name":"hmac","issuer":%q,"algorithms":%s,"hmac_secret":%q}
	]}`, testIssuer, testAudience, algs, testJWKS(tb), testHMACIssuer, hs, testSecret)
}

func mustConfig(tb testing.TB, js string) *config {
	tb.Helper()
	c, err := parseConfig([]byte(js))
	if err != nil {
		tb.Fatalf("parseConfig(%s) = %v", js, err)
	}
	return &c
}

func testVerifier(tb testing.TB) *verifier {
	tb.Helper()
	return newVerifier(mustConfig(tb, testConfigJSON(tb)))
}

// claimsFor returns valid claims for the provider of alg, relative to now.
func claimsFor(alg string, now time.Time) map[string]any {
	iss := testIssuer
	if strings.HasPrefix(alg, "HS") {
		iss = testHMACIssuer
	}
	return map[string]any{
		"iss":   iss,
		"sub":   "user-1",
		"aud":   testAudience,
		"iat":   now.Add(-time.Minute).Unix(),
		"nbf":   now.Add(-time.Minute).Unix(),
		"exp":   now.Add(time.Hour).Unix(),
		"roles": []string{"reader", "writer"},
	}
}

// signToken makes a compact JWS of header and claims (maps, or JSON
// strings used as they are) with alg's method and key.
func signToken(tb testing.TB, alg string, key any, header, claims any) string {
	tb.Helper()
	enc := func(v any) string {
		if s, ok := v.(string); ok {
			return b64([]byte(s))
		}
		b, err := json.Marshal(v)
		if err != nil {
			tb.Fatal(err)
		}
		return b64(b)
	}
	input := enc(header) + "." + enc(claims)
	m := jwt.GetSigningMethod(alg)
	if m == nil {
		tb.Fatalf("no signing method %q", alg)
	}
	sig, err := m.Sign(input, key)
	if err != nil {
		tb.Fatalf("sign %s: %v", alg, err)
	}
	return input + "." + b64(sig)
}

// goodToken is a valid token for alg at now, with its kid.
func goodToken(tb testing.TB, alg string, now time.Time) string {
	tb.Helper()
	k := testKeys(tb)
	h := map[string]any{"alg": alg, "typ": "JWT"}
	if kid := kidFor(alg); kid != "" {
		h["kid"] = kid
	}
	return signToken(tb, alg, k.signingKey(alg), h, claimsFor(alg, now))
}

func bearer(tok string) [][2]string {
	return [][2]string{{":method", "GET"}, {":path", "/"}, {"authorization", "Bearer " + tok}}
}

func rsaPublicPEM(pub *rsa.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
