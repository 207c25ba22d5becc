package main

// golang-jwt as an oracle. The module verifies with the standard library
// directly (keys.go explains why golang-jwt is not linked into it); these
// tests hold its signature checks and claim checks to golang-jwt/v5's.

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tidwall/gjson"
)

// TestSignaturesAgreeWithGolangJWT: for every algorithm, good and damaged
// signatures get the same verdict from algorithm.verify and from the
// golang-jwt signing method.
func TestSignaturesAgreeWithGolangJWT(t *testing.T) {
	k := testKeys(t)
	publicKey := map[string]any{
		"RS": &k.rsa.PublicKey, "PS": &k.rsa.PublicKey, "ES256": &k.p256.PublicKey, "ES384": &k.p384.PublicKey,
		"ES512": &k.p521.PublicKey, "EdDSA": k.ed.Public(), "HS": []byte(testSecret),
	}
	keyFor := func(alg string) any {
		if v, ok := publicKey[alg]; ok {
			return v
		}
		return publicKey[alg[:2]]
	}
	for _, name := range append(append([]string{}, asymAlgs...), hmacAlgs...) {
		t.Run(name, func(t *testing.T) {
			a := lookupAlg(name)
			tok := goodToken(t, name, testNow)
			dot := strings.LastIndexByte(tok, '.')
			input, sig := tok[:dot], mustB64(t, tok[dot+1:])
			flipped := append([]byte{}, sig...)
			flipped[len(flipped)/2] ^= 1
			otherKey := map[bool]any{true: &k.rsaOther.PublicKey, false: &k.p256Other.PublicKey}[strings.HasPrefix(name, "RS") || strings.HasPrefix(name, "PS")]
			cases := []struct {
				name  string
				input string
				sig   []byte
				key   any
			}{
				{"good", input, sig, keyFor(name)},
				{"flipped bit", input, flipped, keyFor(name)},
				{"truncated", input, sig[:len(sig)-1], keyFor(name)},
				{"extended", input, append(append([]byte{}, sig...), 0), keyFor(name)},
				{"empty", input, nil, keyFor(name)},
				{"other input", input + "x", sig, keyFor(name)},
				{"other key", input, sig, otherKey},
				{"HS secret given as RSA key", input, sig, []byte(rsaPublicPEM(&k.rsa.PublicKey))},
			}
			for _, c := range cases {
				ours := a.verify(c.input, c.sig, c.key)
				theirs := jwt.GetSigningMethod(name).Verify(c.input, c.sig, c.key) == nil
				if ours != theirs {
					t.Errorf("%s: algorithm.verify = %v, golang-jwt Verify = %v", c.name, ours, theirs)
				}
				if c.name == "good" && !ours {
					t.Errorf("good: algorithm.verify = false, want true")
				}
			}
		})
	}
}

// TestClaimsAgreeWithGolangJWT: over a grid of exp, nbf, iat, iss and aud
// values around the clock skew boundaries, checkClaims reports what
// golang-jwt's Validator (with the options checkClaims documents) reports.
func TestClaimsAgreeWithGolangJWT(t *testing.T) {
	now := testNow
	skew := 60 * time.Second
	providers := []*provider{
		{issuer: "https://i", clockSkew: skew},
		{issuer: "https://i", clockSkew: skew, audiences: []string{"api", "web"}},
		{issuer: "https://i", clockSkew: 0, audiences: []string{"api"}},
	}
	offsets := []time.Duration{-2 * time.Hour, -61 * time.Second, -60 * time.Second, -59 * time.Second, -time.Second, 0,
		time.Second, 59 * time.Second, 60 * time.Second, 61 * time.Second, time.Hour}
	times := []any{nil, "s", true, -5.0, 1e13}
	for _, o := range offsets {
		times = append(times, float64(now.Add(o).Unix()))
	}
	times = append(times, float64(now.Unix())+0.75) // fractions are dropped by both
	auds := []any{nil, "api", "other", []any{"other", "api"}, []any{"other"}, []any{}, "", []any{""}, []any{"api", 5}, 5, map[string]any{"api": true}}
	isss := []any{"https://i", "https://j", 7}
	n := 0
	for pi, p := range providers {
		for _, exp := range times {
			for _, nbf := range []any{nil, times[len(times)/2], float64(now.Add(2 * time.Minute).Unix()), "x"} {
				for _, iat := range []any{nil, float64(now.Add(30 * time.Second).Unix()), float64(now.Add(90 * time.Second).Unix())} {
					for _, aud := range auds {
						for _, iss := range isss {
							c := map[string]any{}
							set := func(k string, v any) {
								if v != nil {
									c[k] = v
								}
							}
							set("exp", exp)
							set("nbf", nbf)
							set("iat", iat)
							set("aud", aud)
							set("iss", iss)
							payload, _ := json.Marshal(c)
							ours := ourClaimCheck(p, string(payload), now)
							theirs := oracleClaimCheck(t, p, string(payload), now)
							n++
							if ours != theirs {
								t.Fatalf("provider %d, claims %s at %d: checkClaims = %v, golang-jwt = %v", pi, payload, now.Unix(), ours, theirs)
							}
						}
					}
				}
			}
		}
	}
	t.Logf("%d claim sets agree", n)
}

func ourClaimCheck(p *provider, payload string, now time.Time) error {
	g := func(k string) gjson.Result { return gjson.Get(payload, k) }
	r := registeredClaims{exp: g("exp"), nbf: g("nbf"), iat: g("iat"), iss: g("iss"), sub: g("sub"), aud: g("aud")}
	_, err := p.checkClaims(&r, now)
	return err
}

// oracleClaimCheck runs golang-jwt's Validator and maps its error to our
// reasons, in checkClaims' order.
func oracleClaimCheck(tb testing.TB, p *provider, payload string, now time.Time) error {
	tb.Helper()
	g := func(k string) gjson.Result { return gjson.Get(payload, k) }
	mc := &oracleClaims{exp: g("exp"), nbf: g("nbf"), iat: g("iat"), iss: g("iss"), sub: g("sub"), aud: g("aud")}
	opts := []jwt.ParserOption{jwt.WithTimeFunc(func() time.Time { return now }), jwt.WithLeeway(p.clockSkew),
		jwt.WithIssuedAt(), jwt.WithIssuer(p.issuer)}
	if len(p.audiences) > 0 {
		opts = append(opts, jwt.WithAudience(p.audiences...))
	}
	err := jwt.NewValidator(opts...).Validate(mc)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jwt.ErrInvalidType):
		return errMalformed
	case errors.Is(err, jwt.ErrTokenExpired):
		return errExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return errNotYetValid
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return errIssuedInFuture
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return errIssuer
	case errors.Is(err, jwt.ErrTokenInvalidAudience), errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return errAudience
	}
	return fmt.Errorf("unmapped golang-jwt error %w", err)
}

// oracleClaims hands a payload's registered claims to golang-jwt: the JSON
// types are read as checkClaims reads them (a wrong type is
// jwt.ErrInvalidType), and the Validator does the comparisons.
type oracleClaims struct {
	exp, nbf, iat, iss, sub, aud gjson.Result
}

func (r *oracleClaims) date(v gjson.Result) (*jwt.NumericDate, error) {
	t, err := numericDate(v)
	if err != nil {
		return nil, jwt.ErrInvalidType
	}
	if t.IsZero() {
		return nil, nil
	}
	// NewNumericDate truncates to jwt.TimePrecision (1s) itself.
	return jwt.NewNumericDate(time.Unix(int64(v.Num), int64((v.Num-float64(int64(v.Num)))*1e9))), nil
}

func (r *oracleClaims) GetExpirationTime() (*jwt.NumericDate, error) { return r.date(r.exp) }
func (r *oracleClaims) GetNotBefore() (*jwt.NumericDate, error)      { return r.date(r.nbf) }
func (r *oracleClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return r.date(r.iat) }
func (r *oracleClaims) GetIssuer() (string, error)                   { return r.str(r.iss) }
func (r *oracleClaims) GetSubject() (string, error)                  { return r.str(r.sub) }

func (r *oracleClaims) str(v gjson.Result) (string, error) {
	if v.Exists() && v.Type != gjson.String {
		return "", jwt.ErrInvalidType
	}
	return v.Str, nil
}

func (r *oracleClaims) GetAudience() (jwt.ClaimStrings, error) {
	rc := registeredClaims{aud: r.aud}
	aud, err := rc.audience()
	if err != nil {
		return nil, jwt.ErrInvalidType
	}
	return aud, nil
}
