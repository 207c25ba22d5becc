package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestVerifyEveryAlgorithm(t *testing.T) {
	v := testVerifier(t)
	for _, alg := range append(append([]string{}, asymAlgs...), hmacAlgs...) {
		t.Run(alg, func(t *testing.T) {
			tok := goodToken(t, alg, testNow)
			res, err := v.authenticate(bearer(tok), "/", testNow)
			if err != nil {
				t.Fatalf("authenticate(%s token) = %v, want success", alg, err)
			}
			wantProvider := 0
			if strings.HasPrefix(alg, "HS") {
				wantProvider = 1
			}
			if res.provider != wantProvider || res.cached {
				t.Errorf("authenticate(%s token) = provider %d cached %v, want provider %d uncached", alg, res.provider, res.cached, wantProvider)
			}
			if got := res.claims.subject(); got != "user-1" {
				t.Errorf("claims.subject() = %q, want %q", got, "user-1")
			}
			if res.payload != strings.Split(tok, ".")[1] {
				t.Errorf("payload = %q, want the token's payload segment", res.payload)
			}
			// Same token again: from the cache.
			res, err = v.authenticate(bearer(tok), "/", testNow.Add(time.Second))
			if err != nil || !res.cached {
				t.Fatalf("second authenticate(%s token) = cached %v, %v; want cached success", alg, res.cached, err)
			}
		})
	}
}

// TestVerifyWithoutKid: a token without kid is checked against the keys that
// fit its algorithm.
func TestVerifyWithoutKid(t *testing.T) {
	v := testVerifier(t)
	k := testKeys(t)
	for _, alg := range asymAlgs {
		tok := signToken(t, alg, k.signingKey(alg), map[string]any{"alg": alg}, claimsFor(alg, testNow))
		if _, err := v.authenticate(bearer(tok), "/", testNow); err != nil {
			t.Errorf("authenticate(%s token without kid) = %v, want success", alg, err)
		}
	}
}

// TestVerifyRejects is the table of bad tokens, attacks first.
func TestVerifyRejects(t *testing.T) {
	k := testKeys(t)
	now := testNow
	good := goodToken(t, "RS256", now)
	parts := strings.Split(good, ".")
	claims := claimsFor("RS256", now)
	with := func(mod func(c map[string]any)) map[string]any {
		c := map[string]any{}
		for k, v := range claims {
			c[k] = v
		}
		mod(c)
		return c
	}
	rs := func(c map[string]any) string {
		return signToken(t, "RS256", k.rsa, map[string]any{"alg": "RS256", "kid": "rsa-1"}, c)
	}
	unsigned := func(header string) string {
		b, _ := json.Marshal(claims)
		return b64([]byte(header)) + "." + b64(b) + "."
	}
	// rs2 signs the standard claims plus extra raw JSON members.
	rs2 := func(extra string) string {
		b, _ := json.Marshal(claims)
		return signToken(t, "RS256", k.rsa, map[string]any{"alg": "RS256", "kid": "rsa-1"}, string(b[:len(b)-1])+extra+"}")
	}
	pubPEM := rsaPublicPEM(&k.rsa.PublicKey)
	pubJWK := []byte(rsaJWK(&k.rsa.PublicKey, "rsa-1"))
	hsClaims := with(func(c map[string]any) {})
	sigBytes, _ := base64.RawURLEncoding.DecodeString(parts[2])
	other := strings.Split(rs(with(func(c map[string]any) { c["sub"] = "x" })), ".")
	cases := []struct {
		name string
		tok  string
		want error
	}{
		// alg none and its spellings.
		{"alg none", unsigned(`{"alg":"none"}`), errUnsupportedAlg},
		{"alg None", unsigned(`{"alg":"None"}`), errUnsupportedAlg},
		{"alg NONE", unsigned(`{"alg":"NONE"}`), errUnsupportedAlg},
		{"alg nOnE", unsigned(`{"alg":"nOnE"}`), errUnsupportedAlg},
		{"alg none with signature", unsigned(`{"alg":"none"}`) + "c2ln", errUnsupportedAlg},
		{"alg missing", unsigned(`{"typ":"JWT"}`) + "c2ln", errUnsupportedAlg},
		{"alg not a string", unsigned(`{"alg":256}`) + "c2ln", errUnsupportedAlg},
		{"alg lower case", unsigned(`{"alg":"rs256"}`) + "c2ln", errUnsupportedAlg},
		{"alg unknown", unsigned(`{"alg":"ES256K"}`) + "c2ln", errUnsupportedAlg},
		// HS/RS confusion: the RSA public key as HMAC secret. The RSA
		// provider has no HS algorithm at all.
		{"HS256 signed with RSA public key PEM", signToken(t, "HS256", pubPEM, map[string]any{"alg": "HS256", "kid": "rsa-1"}, hsClaims), errUnsupportedAlg},
		{"HS256 signed with RSA public JWK", signToken(t, "HS256", pubJWK, map[string]any{"alg": "HS256"}, hsClaims), errUnsupportedAlg},
		{"HS512 signed with RSA modulus", signToken(t, "HS512", k.rsa.N.Bytes(), map[string]any{"alg": "HS512", "kid": "rsa-1"}, hsClaims), errUnsupportedAlg},
		// Signature tampering.
		{"stripped signature", parts[0] + "." + parts[1] + ".", errInvalidSig},
		{"no signature segment", parts[0] + "." + parts[1], errMalformed},
		{"modified payload", parts[0] + "." + b64([]byte(`{"iss":"`+testIssuer+`","sub":"admin","aud":"api","exp":`+fmt.Sprint(now.Add(time.Hour).Unix())+`}`)) + "." + parts[2], errInvalidSig},
		{"modified header", b64([]byte(`{"alg":"RS256","kid":"rsa-1","x":1}`)) + "." + parts[1] + "." + parts[2], errInvalidSig},
		{"signature of another token", other[0] + "." + other[1] + "." + parts[2], errInvalidSig},
		{"truncated signature", parts[0] + "." + parts[1] + "." + b64(sigBytes[:len(sigBytes)-3]), errInvalidSig},
		{"signature with a byte more", parts[0] + "." + parts[1] + "." + b64(append(sigBytes[:len(sigBytes):len(sigBytes)], 0)), errInvalidSig},
		{"non-canonical base64 in signature", good[:len(good)-1] + nonCanonical(good[len(good)-1]), errMalformed},
		{"padded base64", parts[0] + "." + parts[1] + "." + parts[2] + "==", errMalformed},
		{"signed by another RSA key", signToken(t, "RS256", k.rsaOther, map[string]any{"alg": "RS256", "kid": "rsa-1"}, claims), errInvalidSig},
		{"signed by another RSA key, no kid", signToken(t, "RS256", k.rsaOther, map[string]any{"alg": "RS256"}, claims), errInvalidSig},
		{"signed by another P-256 key", signToken(t, "ES256", k.p256Other, map[string]any{"alg": "ES256", "kid": "p256-1"}, claims), errInvalidSig},
		// Keys.
		{"wrong kid", signToken(t, "RS256", k.rsa, map[string]any{"alg": "RS256", "kid": "rsa-2"}, claims), errUnknownKey},
		{"kid of a key of another type", signToken(t, "ES256", k.p256, map[string]any{"alg": "ES256", "kid": "rsa-1"}, claims), errUnknownKey},
		{"ES384 with the P-256 key's kid", signToken(t, "ES384", k.p384, map[string]any{"alg": "ES384", "kid": "p256-1"}, claims), errUnknownKey},
		{"kid not a string", signToken(t, "RS256", k.rsa, map[string]any{"alg": "RS256", "kid": 1}, claims), errMalformed},
		{"crit header", signToken(t, "RS256", k.rsa, map[string]any{"alg": "RS256", "kid": "rsa-1", "crit": []string{"exp"}, "exp": 1}, claims), errMalformed},
		{"crit b64", signToken(t, "RS256", k.rsa, map[string]any{"alg": "RS256", "kid": "rsa-1", "crit": []string{"b64"}, "b64": false}, claims), errMalformed},
		// Claims.
		{"expired", rs(with(func(c map[string]any) { c["exp"] = now.Add(-2 * time.Minute).Unix() })), errExpired},
		{"expired beyond skew by 1s", rs(with(func(c map[string]any) { c["exp"] = now.Add(-61 * time.Second).Unix() })), errExpired},
		{"nbf in the future", rs(with(func(c map[string]any) { c["nbf"] = now.Add(2 * time.Minute).Unix() })), errNotYetValid},
		{"iat in the future", rs(with(func(c map[string]any) { c["iat"] = now.Add(2 * time.Minute).Unix() })), errIssuedInFuture},
		{"missing exp", rs(with(func(c map[string]any) { delete(c, "exp") })), errMissingExp},
		{"exp as string", rs(with(func(c map[string]any) { c["exp"] = fmt.Sprint(now.Add(time.Hour).Unix()) })), errMalformed},
		{"exp absurd", rs(with(func(c map[string]any) { c["exp"] = 1e300 })), errMalformed},
		{"exp negative", rs(with(func(c map[string]any) { c["exp"] = -1 })), errMalformed},
		{"exp zero", rs(with(func(c map[string]any) { c["exp"] = 0 })), errExpired},
		{"wrong iss", rs(with(func(c map[string]any) { c["iss"] = "https://evil.example" })), errIssuer},
		{"iss case differs", rs(with(func(c map[string]any) { c["iss"] = strings.ToUpper(testIssuer) })), errIssuer},
		{"missing iss", rs(with(func(c map[string]any) { delete(c, "iss") })), errIssuer},
		{"iss not a string", rs(with(func(c map[string]any) { c["iss"] = 1 })), errMalformed},
		{"HS token with the RSA provider's iss", signToken(t, "HS256", []byte(testSecret), map[string]any{"alg": "HS256"}, claims), errUnsupportedAlg},
		{"wrong aud", rs(with(func(c map[string]any) { c["aud"] = "other" })), errAudience},
		{"aud array without ours", rs(with(func(c map[string]any) { c["aud"] = []string{"other", "more"} })), errAudience},
		{"aud empty array", rs(with(func(c map[string]any) { c["aud"] = []string{} })), errAudience},
		{"missing aud", rs(with(func(c map[string]any) { delete(c, "aud") })), errAudience},
		{"aud number", rs(with(func(c map[string]any) { c["aud"] = 5 })), errMalformed},
		{"aud array of numbers", rs(with(func(c map[string]any) { c["aud"] = []int{5} })), errMalformed},
		{"aud object", rs(with(func(c map[string]any) { c["aud"] = map[string]any{"api": true} })), errMalformed},
		// Structure.
		{"duplicate claim", signToken(t, "RS256", k.rsa, map[string]any{"alg": "RS256", "kid": "rsa-1"},
			`{"iss":"`+testIssuer+`","aud":"api","sub":"a","sub":"admin","exp":`+fmt.Sprint(now.Add(time.Hour).Unix())+`}`), errMalformed},
		{"duplicate header member", signToken(t, "RS256", k.rsa, `{"alg":"RS256","kid":"rsa-1","alg":"none"}`, claims), errMalformed},
		{"payload not an object", signToken(t, "RS256", k.rsa, map[string]any{"alg": "RS256", "kid": "rsa-1"}, `["iss"]`), errMalformed},
		{"payload invalid JSON", signToken(t, "RS256", k.rsa, map[string]any{"alg": "RS256", "kid": "rsa-1"}, `{"iss":`), errMalformed},
		{"payload trailing data", signToken(t, "RS256", k.rsa, map[string]any{"alg": "RS256", "kid": "rsa-1"}, `{"iss":"x"} {}`), errMalformed},
		{"nesting too deep", rs2(`,"x":` + strings.Repeat("[", 40) + strings.Repeat("]", 40)), errMalformed},
		{"header not JSON", b64([]byte("alg")) + "." + parts[1] + "." + parts[2], errMalformed},
		{"four segments", good + ".x", errMalformed},
		{"one segment", parts[0], errMalformed},
		{"empty header", "." + parts[1] + "." + parts[2], errMalformed},
		{"not base64", "a*b.c.d", errMalformed},
		{"spaces", "a b.c.d", errMalformed},
		{"JWE (five segments)", "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d", errMalformed},
	}
	v := testVerifier(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := v.authenticate(bearer(tc.tok), "/", now)
			if !errors.Is(err, tc.want) {
				t.Fatalf("authenticate(%s) = %v, want %v", tc.name, errString(err), tc.want)
			}
			if res.cached {
				t.Errorf("authenticate(%s) came from the cache", tc.name)
			}
		})
	}
}

// nonCanonical returns another base64url character with the same leading
// bits as c, so that the segment decodes to the same bytes through a
// lenient decoder.
func nonCanonical(c byte) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, c)
	return string(alphabet[i^1])
}

// TestVerifyHSConfusionWhenBothAllowed: a provider that allows HS256 and
// RS256 checks HS256 with its own secret only, never with the public key.
func TestVerifyHSConfusionWhenBothAllowed(t *testing.T) {
	k := testKeys(t)
	cfg := mustConfig(t, fmt.Sprintf(`{"providers":[{"issuer":%q,"algorithms":["RS256","HS256"],"hmac_secret":%q,"local_jwks":{"keys":[%s]}}]}`,
		testIssuer, testSecret, rsaJWK(&k.rsa.PublicKey, "rsa-1")))
	v := newVerifier(cfg)
	claims := claimsFor("RS256", testNow)
	for name, secret := range map[string][]byte{
		"public key PEM":     rsaPublicPEM(&k.rsa.PublicKey),
		"public key JWK":     []byte(rsaJWK(&k.rsa.PublicKey, "rsa-1")),
		"public key modulus": k.rsa.N.Bytes(),
	} {
		tok := signToken(t, "HS256", secret, map[string]any{"alg": "HS256", "kid": "rsa-1"}, claims)
		if _, err := v.authenticate(bearer(tok), "/", testNow); !errors.Is(err, errInvalidSig) {
			t.Errorf("authenticate(HS256 signed with the %s) = %v, want %v", name, errString(err), errInvalidSig)
		}
	}
	ok := signToken(t, "HS256", []byte(testSecret), map[string]any{"alg": "HS256"}, claims)
	if _, err := v.authenticate(bearer(ok), "/", testNow); err != nil {
		t.Errorf("authenticate(HS256 signed with the secret) = %v, want success", err)
	}
}

func TestVerifyAudienceArray(t *testing.T) {
	v := testVerifier(t)
	k := testKeys(t)
	for _, tc := range []struct {
		aud  any
		want error
	}{
		{[]string{"other", testAudience}, nil},
		{[]string{testAudience}, nil},
		{testAudience, nil},
		{[]string{"other"}, errAudience},
		{[]string{"API"}, errAudience},
		{[]string{""}, errAudience},
	} {
		c := claimsFor("ES256", testNow)
		c["aud"] = tc.aud
		tok := signToken(t, "ES256", k.p256, map[string]any{"alg": "ES256", "kid": "p256-1"}, c)
		if _, err := v.authenticate(bearer(tok), "/", testNow); !errors.Is(err, tc.want) {
			t.Errorf("authenticate(aud %v) = %v, want %v", tc.aud, errString(err), errString(tc.want))
		}
	}
}

// TestVerifyNoAudiences: a provider without audiences does not check aud.
func TestVerifyNoAudiences(t *testing.T) {
	v := testVerifier(t)
	c := claimsFor("HS256", testNow)
	c["aud"] = []string{"anything"}
	tok := signToken(t, "HS256", []byte(testSecret), map[string]any{"alg": "HS256"}, c)
	if _, err := v.authenticate(bearer(tok), "/", testNow); err != nil {
		t.Errorf("authenticate(aud anything, no audiences configured) = %v, want success", err)
	}
}

func TestVerifyClockSkew(t *testing.T) {
	k := testKeys(t)
	base := claimsFor("RS256", testNow)
	for _, tc := range []struct {
		name  string
		skew  string
		claim string
		at    time.Duration // claim time relative to now
		want  error
	}{
		{"exp 59s ago, skew 60s", "60s", "exp", -59 * time.Second, nil},
		{"exp 60s ago, skew 60s", "60s", "exp", -60 * time.Second, errExpired},
		{"exp 1s ago, skew 0", "0s", "exp", -time.Second, errExpired},
		{"exp now, skew 0", "0s", "exp", 0, errExpired},
		{"exp in 1s, skew 0", "0s", "exp", time.Second, nil},
		{"nbf in 60s, skew 60s", "60s", "nbf", 60 * time.Second, nil},
		{"nbf in 61s, skew 60s", "60s", "nbf", 61 * time.Second, errNotYetValid},
		{"nbf in 1s, skew 0", "0s", "nbf", time.Second, errNotYetValid},
		{"nbf now, skew 0", "0s", "nbf", 0, nil},
		{"iat in 60s, skew 60s", "60s", "iat", 60 * time.Second, nil},
		{"iat in 61s, skew 60s", "60s", "iat", 61 * time.Second, errIssuedInFuture},
		{"iat in 1s, skew 0", "0s", "iat", time.Second, errIssuedInFuture},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := mustConfig(t, fmt.Sprintf(`{"providers":[{"issuer":%q,"algorithms":["RS256"],"clock_skew":%q,"local_jwks":{"keys":[%s]}}]}`,
				testIssuer, tc.skew, rsaJWK(&k.rsa.PublicKey, "rsa-1")))
			c := map[string]any{}
			for k, v := range base {
				c[k] = v
			}
			c["iat"], c["nbf"] = testNow.Add(-time.Hour).Unix(), testNow.Add(-time.Hour).Unix()
			c[tc.claim] = testNow.Add(tc.at).Unix()
			tok := signToken(t, "RS256", k.rsa, map[string]any{"alg": "RS256"}, c)
			if _, err := newVerifier(cfg).authenticate(bearer(tok), "/", testNow); !errors.Is(err, tc.want) {
				t.Errorf("authenticate(%s) = %v, want %v", tc.name, errString(err), errString(tc.want))
			}
		})
	}
}

func TestVerifyRequireExpFalse(t *testing.T) {
	cfg := mustConfig(t, fmt.Sprintf(`{"providers":[{"issuer":%q,"algorithms":["HS256"],"hmac_secret":%q,"require_exp":false}]}`, testHMACIssuer, testSecret))
	v := newVerifier(cfg)
	c := claimsFor("HS256", testNow)
	delete(c, "exp")
	tok := signToken(t, "HS256", []byte(testSecret), map[string]any{"alg": "HS256"}, c)
	if _, err := v.authenticate(bearer(tok), "/", testNow); err != nil {
		t.Fatalf("authenticate(no exp, require_exp false) = %v, want success", err)
	}
	// An exp that is there is still checked.
	c["exp"] = testNow.Add(-time.Hour).Unix()
	tok = signToken(t, "HS256", []byte(testSecret), map[string]any{"alg": "HS256"}, c)
	if _, err := v.authenticate(bearer(tok), "/", testNow); !errors.Is(err, errExpired) {
		t.Fatalf("authenticate(expired, require_exp false) = %v, want %v", errString(err), errExpired)
	}
}

// TestVerifyLocationBelongsToProvider: a token is only accepted from a
// location its issuer's provider reads.
func TestVerifyLocationBelongsToProvider(t *testing.T) {
	k := testKeys(t)
	cfg := mustConfig(t, fmt.Sprintf(`{"providers":[
		{"issuer":%q,"algorithms":["RS256"],"local_jwks":{"keys":[%s]}},
		{"issuer":%q,"algorithms":["HS256"],"hmac_secret":%q,"from_cookies":["session"]}]}`,
		testIssuer, rsaJWK(&k.rsa.PublicKey, "rsa-1"), testHMACIssuer, testSecret))
	v := newVerifier(cfg)
	hs := goodToken(t, "HS256", testNow)
	rs := signToken(t, "RS256", k.rsa, map[string]any{"alg": "RS256"}, claimsFor("RS256", testNow))
	forgedRS := signToken(t, "RS256", k.rsaOther, map[string]any{"alg": "RS256"}, claimsFor("RS256", testNow))
	for _, tc := range []struct {
		name    string
		headers [][2]string
		want    error
	}{
		{"HS token in its cookie", [][2]string{{"cookie", "a=b; session=" + hs}}, nil},
		{"HS token in the other provider's header", bearer(hs), errIssuer},
		{"RS token in the header", bearer(rs), nil},
		{"RS token in the HS provider's cookie", [][2]string{{"cookie", "session=" + rs}}, errIssuer},
		// A forgery remembered as failed from the header is still refused
		// as out of place from the cookie, not as a failed signature.
		{"forged RS token in the header", bearer(forgedRS), errInvalidSig},
		{"forged RS token in the HS provider's cookie", [][2]string{{"cookie", "session=" + forgedRS}}, errIssuer},
	} {
		for round := range 2 { // the second round goes through the cache
			if _, err := v.authenticate(tc.headers, "/", testNow); !errors.Is(err, tc.want) {
				t.Errorf("round %d: authenticate(%s) = %v, want %v", round, tc.name, errString(err), errString(tc.want))
			}
		}
	}
}

func TestVerifyPerProviderMaxTokenBytes(t *testing.T) {
	cfg := mustConfig(t, fmt.Sprintf(`{"providers":[
		{"issuer":%q,"algorithms":["HS256"],"hmac_secret":%q,"max_token_bytes":100},
		{"issuer":%q,"algorithms":["HS256"],"hmac_secret":%q}]}`,
		testIssuer, testSecret, testHMACIssuer, testSecret))
	v := newVerifier(cfg)
	c := claimsFor("HS256", testNow)
	c["iss"] = testIssuer
	tok := signToken(t, "HS256", []byte(testSecret), map[string]any{"alg": "HS256"}, c)
	if _, err := v.authenticate(bearer(tok), "/", testNow); !errors.Is(err, errTokenTooLarge) {
		t.Errorf("authenticate(%d-byte token, provider limit 100) = %v, want %v", len(tok), errString(err), errTokenTooLarge)
	}
}

func TestVerifyOversizedAndDots(t *testing.T) {
	v := testVerifier(t)
	good := goodToken(t, "HS256", testNow)
	for _, tc := range []struct {
		name string
		tok  string
		want error
	}{
		{"8193 bytes", good + "." + strings.Repeat("A", 8192-len(good)), errTokenTooLarge},
		{"100000 dots", strings.Repeat(".", 100000), errTokenTooLarge},
		{"8192 dots", strings.Repeat(".", 8192), errMalformed},
		{"a.b then dots", "a.b" + strings.Repeat(".", 8000), errMalformed},
	} {
		if _, err := v.authenticate(bearer(tc.tok), "/", testNow); !errors.Is(err, tc.want) {
			t.Errorf("authenticate(%s) = %v, want %v", tc.name, errString(err), tc.want)
		}
	}

	// With the limit raised to its maximum, 100000 dots still fail at the
	// third dot, with nothing allocated.
	big := mustConfig(t, fmt.Sprintf(`{"providers":[{"issuer":%q,"algorithms":["HS256"],"hmac_secret":%q,"max_token_bytes":1048576}]}`, testIssuer, testSecret))
	bv := newVerifier(big)
	dots := strings.Repeat(".", 100000)
	if _, err := bv.authenticate(bearer(dots), "/", testNow); !errors.Is(err, errMalformed) {
		t.Fatalf("authenticate(100000 dots, 1 MiB limit) = %v, want %v", errString(err), errMalformed)
	}
	if n := testing.AllocsPerRun(10, func() { _, _ = parseToken(dots) }); n != 0 {
		t.Errorf("parseToken(100000 dots) allocates %v times, want 0", n)
	}
	for _, tok := range []string{"a." + strings.Repeat("b", 500000) + ".c", strings.Repeat("a.", 50000)} {
		if n := testing.AllocsPerRun(5, func() { _, _ = parseToken(tok) }); n > 2 {
			t.Errorf("parseToken(%d-byte token) allocates %v times, want <= 2", len(tok), n)
		}
	}
}

// TestRFC7515Vectors checks the signatures of RFC 7515 Appendix A.1 (HS256),
// A.2 (RS256) and A.3 (ES256). Their exp is 1300819380 (2011-03-22): they
// are valid an hour before and expired a minute after exp plus skew.
func TestRFC7515Vectors(t *testing.T) {
	const payload = "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
	const a1 = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9." + payload + ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	const a2 = "eyJhbGciOiJSUzI1NiJ9." + payload + ".cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw"
	const a3 = "eyJhbGciOiJFUzI1NiJ9." + payload + ".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q"
	const hmacKey = "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"
	const rsaN = "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ"
	const ecX, ecY = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"

	exp := time.Unix(1300819380, 0)
	for _, tc := range []struct {
		name, cfg, tok string
	}{
		{"A.1 HS256", `{"providers":[{"issuer":"joe","algorithms":["HS256"],"hmac_secret_base64":"` + hmacKey + `"}]}`, a1},
		{"A.2 RS256", `{"providers":[{"issuer":"joe","algorithms":["RS256"],"local_jwks":{"keys":[{"kty":"RSA","n":"` + rsaN + `","e":"AQAB"}]}}]}`, a2},
		{"A.3 ES256", `{"providers":[{"issuer":"joe","algorithms":["ES256"],"local_jwks":{"keys":[{"kty":"EC","crv":"P-256","x":"` + ecX + `","y":"` + ecY + `"}]}}]}`, a3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := newVerifier(mustConfig(t, tc.cfg))
			res, err := v.authenticate(bearer(tc.tok), "/", exp.Add(-time.Hour))
			if err != nil {
				t.Fatalf("authenticate(RFC 7515 %s) = %v, want success", tc.name, err)
			}
			if got := res.claims.get("http://example.com/is_root").Raw; got != "true" {
				t.Errorf(`claims.get("http://example.com/is_root") = %q, want "true"`, got)
			}
			v = newVerifier(mustConfig(t, tc.cfg))
			if _, err := v.authenticate(bearer(tc.tok), "/", exp.Add(2*time.Minute)); !errors.Is(err, errExpired) {
				t.Errorf("authenticate(RFC 7515 %s after exp) = %v, want %v", tc.name, errString(err), errExpired)
			}
			tampered := strings.Replace(tc.tok, "eyJpc3MiOiJqb2Ui", "eyJpc3MiOiJqb2Ug", 1)
			if _, err := v.authenticate(bearer(tampered), "/", exp.Add(-time.Hour)); err == nil {
				t.Errorf("authenticate(RFC 7515 %s with a modified payload) succeeded", tc.name)
			}
		})
	}
}

func TestVerifyRemoteKeys(t *testing.T) {
	k := testKeys(t)
	cfg := mustConfig(t, fmt.Sprintf(`{"providers":[{"issuer":%q,"algorithms":["ES256"],
		"remote_jwks":{"http_uri":{"uri":"https://idp.example/.well-known/jwks.json","cluster":"idp"}}}]}`, testIssuer))
	v := newVerifier(cfg)
	tok := signToken(t, "ES256", k.p256, map[string]any{"alg": "ES256", "kid": "p256-1"}, claimsFor("ES256", testNow))
	res, err := v.authenticate(bearer(tok), "/", testNow)
	if !errors.Is(err, errKeysUnavailable) || res.provider != 0 {
		t.Fatalf("authenticate(before any fetch) = provider %d, %v; want provider 0, %v", res.provider, errString(err), errKeysUnavailable)
	}
	first, err := parseJWKS([]byte(`{"keys":[` + ecJWK(&k.p256.PublicKey, "p256-1") + `]}`))
	if err != nil {
		t.Fatal(err)
	}
	v.setRemoteKeys(0, first)
	if _, err := v.authenticate(bearer(tok), "/", testNow); err != nil {
		t.Fatalf("authenticate(after fetch) = %v, want success", err)
	}
	if res, err := v.authenticate(bearer(tok), "/", testNow); err != nil || !res.cached {
		t.Fatalf("authenticate(again) = cached %v, %v; want cached success", res.cached, err)
	}
	// Rotation: the old key is gone. The cached verification is not served,
	// and the token's kid is now unknown.
	rotated, err := parseJWKS([]byte(`{"keys":[` + ecJWK(&k.p256Other.PublicKey, "p256-2") + `]}`))
	if err != nil {
		t.Fatal(err)
	}
	v.setRemoteKeys(0, rotated)
	res, err = v.authenticate(bearer(tok), "/", testNow)
	if !errors.Is(err, errUnknownKey) || res.provider != 0 || res.cached {
		t.Fatalf("authenticate(after rotation) = provider %d cached %v, %v; want provider 0, %v", res.provider, res.cached, errString(err), errUnknownKey)
	}
	newTok := signToken(t, "ES256", k.p256Other, map[string]any{"alg": "ES256", "kid": "p256-2"}, claimsFor("ES256", testNow))
	if _, err := v.authenticate(bearer(newTok), "/", testNow); err != nil {
		t.Fatalf("authenticate(token of the new key) = %v, want success", err)
	}
}

func TestVerifyCacheNeverPastExp(t *testing.T) {
	v := testVerifier(t)
	c := claimsFor("HS256", testNow)
	c["exp"] = testNow.Add(10 * time.Second).Unix()
	tok := signToken(t, "HS256", []byte(testSecret), map[string]any{"alg": "HS256"}, c)
	if _, err := v.authenticate(bearer(tok), "/", testNow); err != nil {
		t.Fatal(err)
	}
	if res, err := v.authenticate(bearer(tok), "/", testNow.Add(9*time.Second)); err != nil || !res.cached {
		t.Fatalf("authenticate(9s later) = cached %v, %v; want cached success", res.cached, err)
	}
	// Past exp the cache does not answer; verification applies the skew.
	res, err := v.authenticate(bearer(tok), "/", testNow.Add(30*time.Second))
	if err != nil || res.cached {
		t.Fatalf("authenticate(30s later, within skew) = cached %v, %v; want uncached success", res.cached, err)
	}
	if _, err := v.authenticate(bearer(tok), "/", testNow.Add(71*time.Second)); !errors.Is(err, errExpired) {
		t.Fatalf("authenticate(71s later) = %v, want %v", errString(err), errExpired)
	}

	// Without exp: served for at most cacheMaxTTL.
	cfg := mustConfig(t, fmt.Sprintf(`{"providers":[{"issuer":%q,"algorithms":["HS256"],"hmac_secret":%q,"require_exp":false}]}`, testHMACIssuer, testSecret))
	v = newVerifier(cfg)
	delete(c, "exp")
	tok = signToken(t, "HS256", []byte(testSecret), map[string]any{"alg": "HS256"}, c)
	if _, err := v.authenticate(bearer(tok), "/", testNow); err != nil {
		t.Fatal(err)
	}
	if res, _ := v.authenticate(bearer(tok), "/", testNow.Add(cacheMaxTTL-time.Second)); !res.cached {
		t.Errorf("authenticate(no exp, just under max TTL) not cached")
	}
	if res, _ := v.authenticate(bearer(tok), "/", testNow.Add(cacheMaxTTL)); res.cached {
		t.Errorf("authenticate(no exp, at max TTL) came from the cache")
	}
}

func TestVerifyEd25519KeyFromJWKOnly(t *testing.T) {
	// An EdDSA token must not verify against a key of another family even
	// if the kid matches.
	k := testKeys(t)
	cfg := mustConfig(t, fmt.Sprintf(`{"providers":[{"issuer":%q,"algorithms":["EdDSA","RS256"],"local_jwks":{"keys":[%s]}}]}`,
		testIssuer, rsaJWK(&k.rsa.PublicKey, "k")))
	tok := signToken(t, "EdDSA", k.ed, map[string]any{"alg": "EdDSA", "kid": "k"}, claimsFor("EdDSA", testNow))
	if _, err := newVerifier(cfg).authenticate(bearer(tok), "/", testNow); !errors.Is(err, errUnknownKey) {
		t.Errorf("authenticate(EdDSA token, only an RSA key with its kid) = %v, want %v", errString(err), errUnknownKey)
	}
}

func TestDenialReasonsAreDistinct(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range denialReasons {
		s := r.Error()
		if seen[s] || s == "" || strings.ToLower(s) != s || len(s) > 32 {
			t.Errorf("denial reason %q: duplicate, empty, not lower case or too long", s)
		}
		seen[s] = true
	}
}

func TestVerifyNestedClaimsWithinDepth(t *testing.T) {
	v := testVerifier(t)
	c := claimsFor("HS256", testNow)
	b, _ := json.Marshal(c)
	payload := string(b[:len(b)-1]) + `,"x":` + strings.Repeat("[", 30) + strings.Repeat("]", 30) + `,"s":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}`
	tok := signToken(t, "HS256", []byte(testSecret), map[string]any{"alg": "HS256"}, payload)
	if _, err := v.authenticate(bearer(tok), "/", testNow); err != nil {
		t.Errorf("authenticate(31 levels, brackets in a string) = %v, want success", err)
	}
}
