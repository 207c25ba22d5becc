package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// fuzzConfigJSON reads tokens from the header, a query parameter and a
// cookie, so the fuzzer reaches every extraction path.
func fuzzConfigJSON(tb testing.TB) string {
	algs, _ := json.Marshal(asymAlgs)
	hs, _ := json.Marshal(hmacAlgs)
	return fmt.Sprintf(`{"providers":[
		{"issuer":%q,"audiences":[%q],"algorithms":%s,"local_jwks":%s,
		 "from_headers":[{"name":"authorization","value_prefix":"Bearer "}],"from_params":["access_token"]},
		{"issuer":%q,"algorithms":%s,"hmac_secret":%q,
		 "from_headers":[{"name":"authorization","value_prefix":"Bearer "}],"from_cookies":["session"]}
	]}`, testIssuer, testAudience, algs, testJWKS(tb), testHMACIssuer, hs, testSecret)
}

// FuzzVerify drives the token path (extraction, parsing, verification) with
// arbitrary header, path and cookie values. It must never panic, and it may
// only accept a token whose signing input the test itself signed, with a
// signature that the standard library, asked directly, also accepts.
func FuzzVerify(f *testing.F) {
	cfg := mustConfig(f, fuzzConfigJSON(f))
	k := testKeys(f)
	signed := map[string]bool{}
	add := func(authz, path, cookie string) { f.Add(authz, path, cookie) }
	for _, alg := range append(append([]string{}, asymAlgs...), hmacAlgs...) {
		tok := goodToken(f, alg, testNow)
		signed[tok[:strings.LastIndexByte(tok, '.')]] = true
		add("Bearer "+tok, "/", "")
		if strings.HasPrefix(alg, "HS") {
			add("", "/", "a=b; session="+tok)
		} else {
			add("", "/x?access_token="+tok, "")
		}
	}
	good := goodToken(f, "RS256", testNow)
	parts := strings.Split(good, ".")
	claims, _ := json.Marshal(claimsFor("RS256", testNow))
	for _, attack := range []string{
		b64([]byte(`{"alg":"none"}`)) + "." + b64(claims) + ".",
		b64([]byte(`{"alg":"NONE"}`)) + "." + b64(claims) + ".",
		signToken(f, "HS256", rsaPublicPEM(&k.rsa.PublicKey), map[string]any{"alg": "HS256", "kid": "rsa-1"}, claimsFor("HS256", testNow)),
		signToken(f, "HS256", rsaPublicPEM(&k.rsa.PublicKey), map[string]any{"alg": "HS256"}, claimsFor("RS256", testNow)),
		parts[0] + "." + parts[1] + ".",
		parts[0] + "." + b64([]byte(`{"iss":"`+testIssuer+`","sub":"admin"}`)) + "." + parts[2],
		strings.Repeat(".", 1000),
		good + "." + good,
	} {
		add("Bearer "+attack, "/", "")
	}
	add("Bearer "+good, "/?access_token="+good, "")
	add("bearer "+good, "/", "session="+goodToken(f, "HS256", testNow))

	f.Fuzz(func(t *testing.T, authz, path, cookie string) {
		v := newVerifier(cfg)
		headers := [][2]string{{":path", path}, {"authorization", authz}, {"cookie", cookie}}
		for round := range 2 { // the second round may come from the cache
			res, err := v.authenticate(headers, path, testNow)
			if err != nil {
				// Only a failed signature is remembered (and only from
				// the second round on).
				if res.cached && (round == 0 || !errors.Is(err, errInvalidSig)) {
					t.Fatalf("round %d: error %v from the cache", round, err)
				}
				continue
			}
			tok := res.token.value
			dot := strings.LastIndexByte(tok, '.')
			if dot < 0 || !signed[tok[:dot]] {
				t.Fatalf("round %d: accepted a token the test did not sign: %q", round, tok)
			}
			if !stdlibVerify(t, k, tok) {
				t.Fatalf("round %d: accepted a token whose signature the standard library rejects: %q", round, tok)
			}
			if res.provider < 0 || res.provider >= len(cfg.providers) || !gjson.Valid(res.claims.json) {
				t.Fatalf("round %d: accepted with provider %d, claims %q", round, res.provider, res.claims.json)
			}
		}
	})
}

// stdlibVerify checks a compact JWS with the test keys through the standard
// library only: an oracle that shares no code with the verifier.
func stdlibVerify(tb testing.TB, k *testKeyPairs, tok string) bool {
	tb.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return false
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	sig, err2 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil {
		return false
	}
	var h struct{ Alg string }
	if json.Unmarshal(hb, &h) != nil {
		return false
	}
	input := []byte(parts[0] + "." + parts[1])
	digest := func(hash crypto.Hash) []byte {
		d := hash.New()
		d.Write(input)
		return d.Sum(nil)
	}
	hashOf := map[string]crypto.Hash{"256": crypto.SHA256, "384": crypto.SHA384, "512": crypto.SHA512}
	switch a := h.Alg; {
	case strings.HasPrefix(a, "HS"):
		m := hmac.New(hashOf[a[2:]].New, []byte(testSecret))
		m.Write(input)
		return hmac.Equal(m.Sum(nil), sig)
	case strings.HasPrefix(a, "RS"):
		return rsa.VerifyPKCS1v15(&k.rsa.PublicKey, hashOf[a[2:]], digest(hashOf[a[2:]]), sig) == nil
	case strings.HasPrefix(a, "PS"):
		return rsa.VerifyPSS(&k.rsa.PublicKey, hashOf[a[2:]], digest(hashOf[a[2:]]), sig, nil) == nil
	case strings.HasPrefix(a, "ES"):
		key := map[string]*ecdsa.PrivateKey{"ES256": k.p256, "ES384": k.p384, "ES512": k.p521}[a]
		size := (key.Curve.Params().BitSize + 7) / 8
		if key == nil || len(sig) != 2*size {
			return false
		}
		r, s := new(big.Int).SetBytes(sig[:size]), new(big.Int).SetBytes(sig[size:])
		return ecdsa.Verify(&key.PublicKey, digest(hashOf[a[2:]]), r, s)
	case a == "EdDSA":
		return ed25519.Verify(k.ed.Public().(ed25519.PublicKey), input, sig)
	}
	return false
}
