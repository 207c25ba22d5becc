package main

// Verifying a token: compact JWS parsing, provider selection by "iss",
// algorithm and key checks, the signature (keys.go), the registered claims
// (with golang-jwt's Validator semantics, checked against it by the tests),
// and the cache of verified tokens.

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"math"
	"time"
	"unsafe"

	"github.com/tidwall/gjson"
)

// Denial reasons. Their text is what clients see (JSON body, RFC 6750
// error_description) and what metrics are labelled with, so it is short,
// stable, and never carries token or key material.
var (
	errMissingToken    = errors.New("missing token")
	errMultipleTokens  = errors.New("multiple tokens")
	errTokenTooLarge   = errors.New("token too large")
	errMalformed       = errors.New("malformed token")
	errUnsupportedAlg  = errors.New("unsupported algorithm")
	errInvalidSig      = errors.New("invalid signature")
	errUnknownKey      = errors.New("unknown key")
	errExpired         = errors.New("token expired")
	errNotYetValid     = errors.New("token not yet valid")
	errIssuedInFuture  = errors.New("token issued in the future")
	errIssuer          = errors.New("issuer not allowed")
	errAudience        = errors.New("audience not allowed")
	errMissingExp      = errors.New("missing exp")
	errKeysUnavailable = errors.New("keys unavailable")
	// errInsufficientScope is the 403 of a rule's unmet `require`.
	errInsufficientScope = errors.New("insufficient scope")
)

// denialReasons lists every reason, for the wiring to define one counter
// per reason up front.
var denialReasons = []error{
	errMissingToken, errMultipleTokens, errTokenTooLarge, errMalformed,
	errUnsupportedAlg, errInvalidSig, errUnknownKey, errExpired, errNotYetValid,
	errIssuedInFuture, errIssuer, errAudience, errMissingExp, errKeysUnavailable,
	errInsufficientScope,
}

// maxKeysWithoutKid bounds the keys tried for a token without "kid", so
// that a forged token cannot buy many signature checks.
const maxKeysWithoutKid = 8

// Cache bounds.
const (
	cacheMaxEntries = 1024
	cacheMaxBytes   = 2 << 20
	// cacheMaxTTL bounds how long a verification of a token without "exp"
	// is reused.
	cacheMaxTTL = 5 * time.Minute
	// failedMaxEntries and failedMaxTTL bound the cache of tokens whose
	// signature failed: 1024 digests take about 100 KiB.
	failedMaxEntries = 1024
	failedMaxTTL     = 5 * time.Minute
)

// verifier checks tokens against one configuration. It holds the remote
// key sets fetched so far and the cache of verified tokens, so it belongs
// to one plugin context of one VM and is not safe for concurrent use (a
// proxy-wasm VM is single-threaded).
type verifier struct {
	cfg    *config
	remote []*keySet // per provider; nil until the wiring sets them
	cache  *tokenCache
	failed *failedCache
}

func newVerifier(cfg *config) *verifier {
	return &verifier{
		cfg:    cfg,
		remote: make([]*keySet, len(cfg.providers)),
		cache:  newTokenCache(cacheMaxEntries, cacheMaxBytes),
		failed: newFailedCache(failedMaxEntries),
	}
}

// setRemoteKeys installs a freshly fetched (or shared-data) key set for
// provider i. Cached verifications made with the previous set are no longer
// served.
func (v *verifier) setRemoteKeys(i int, ks *keySet) { v.remote[i] = ks }

// remoteKeys returns the key set in use for provider i (nil before the
// first fetch).
func (v *verifier) remoteKeys(i int) *keySet { return v.remote[i] }

// authResult is the outcome of authenticate.
type authResult struct {
	// token and where it was found: the wiring removes it from the
	// upstream request unless the provider forwards it.
	token foundToken
	// provider is the index of the provider the token's "iss" selected, -1
	// when none was. Set on errors too: errUnknownKey asks the wiring for
	// an early JWKS refresh of this provider, errKeysUnavailable to wait
	// for the first fetch.
	provider int
	// claims are the verified payload (only when err == nil).
	claims claims
	// payload is the base64url payload segment, for forward_payload_header.
	payload string
	// ident is what the claims say about the caller: the claim headers
	// and the identity, read once per verification.
	ident identityView
	// cached is true when the verification came from the cache, or the
	// invalid signature from the cache of failed tokens.
	cached bool
}

// authenticate extracts the request's token and verifies it at now.
func (v *verifier) authenticate(headers [][2]string, path string, now time.Time) (authResult, error) {
	tok, err := v.cfg.extractToken(headers, path)
	if err != nil {
		return authResult{provider: -1}, err
	}
	return v.verify(tok, now)
}

// verify checks one extracted token at now, through the cache.
func (v *verifier) verify(tok foundToken, now time.Time) (authResult, error) {
	if e := v.cache.get(tok.value, now); e != nil && v.cacheUsable(e, tok.loc) {
		return authResult{token: tok, provider: e.provider, claims: e.claims, payload: e.payload, ident: e.ident, cached: true}, nil
	}
	// A forged token sent again is refused on its digest, before it is
	// parsed: a hash and a map lookup are all a replay costs.
	digest := sha256.Sum256(bytesOf(tok.value))
	if e, ok := v.failed.lookup(&digest, now); ok && v.failureUsable(&e, tok.loc) {
		return authResult{token: tok, provider: e.provider, cached: true}, errInvalidSig
	}
	res, keys, exp, err := v.verifyToken(tok, now)
	if err != nil {
		if errors.Is(err, errInvalidSig) {
			v.failed.add(&digest, res.provider, keys, now.Add(failedMaxTTL))
		}
		return res, err
	}
	res.ident = v.cfg.providers[res.provider].identityOf(res.claims)
	until := now.Add(cacheMaxTTL)
	if !exp.IsZero() && exp.Before(until) {
		until = exp
	}
	if now.Before(until) {
		v.cache.put(tok.value, cacheEntry{
			provider: res.provider,
			keys:     keys,
			claims:   res.claims,
			payload:  res.payload,
			ident:    res.ident,
			expires:  until,
			size:     len(tok.value) + len(res.claims.json) + res.ident.size(),
		})
	}
	return res, nil
}

// cacheUsable reports whether a cached verification still applies: the
// provider reads the location this token came from, and it was made with
// the provider's current keys.
func (v *verifier) cacheUsable(e *cacheEntry, loc int) bool {
	p := v.cfg.providers[e.provider]
	if loc < 0 || loc >= 64 || p.locs&(1<<loc) == 0 {
		return false
	}
	return e.keys == nil || e.keys == v.keysOf(p)
}

// failureUsable reports whether a remembered failure still applies: the
// token came from a location its provider reads (else the fresh answer
// would be another reason), and the provider's keys are the ones it failed
// against (a new key set may hold the key that signed it).
func (v *verifier) failureUsable(e *failedEntry, loc int) bool {
	p := v.cfg.providers[e.provider]
	if loc < 0 || loc >= 64 || p.locs&(1<<loc) == 0 {
		return false
	}
	return e.keys == v.keysOf(p)
}

func (v *verifier) keysOf(p *provider) *keySet {
	if p.remote != nil {
		return v.remote[p.index]
	}
	return p.localKeys
}

// verifyToken is the uncached verification. keys is the asymmetric key set
// used (nil for HMAC; also set with errInvalidSig) and exp the token's
// expiry (zero without one), for the caches.
func (v *verifier) verifyToken(tok foundToken, now time.Time) (res authResult, keys *keySet, exp time.Time, err error) {
	res = authResult{token: tok, provider: -1}
	pt, err := parseToken(tok.value)
	if err != nil {
		return res, nil, exp, err
	}
	// Routing by the unverified "iss" only chooses which keys to try; the
	// signature is checked with that provider's keys before any claim is
	// believed.
	p := v.cfg.providerFor(pt.iss)
	if p == nil {
		return res, nil, exp, errIssuer
	}
	res.provider = p.index
	if tok.loc >= 0 && (tok.loc >= 64 || p.locs&(1<<tok.loc) == 0) {
		return res, nil, exp, errIssuer // this issuer's tokens are not read from there
	}
	if len(tok.value) > p.maxTokenBytes {
		return res, nil, exp, errTokenTooLarge
	}
	if p.algs&pt.alg.bit == 0 {
		return res, nil, exp, errUnsupportedAlg
	}

	// Every check that needs no signature comes before it, so that a
	// token that would fail anyway costs no signature check (milliseconds
	// in a wasm VM, and a forged token is free to make). This is the order
	// of Envoy's jwt_authn (time constraints and audiences before the key
	// lookup). It is no oracle: a reason found here does not depend on the
	// signature at all, so it tells the sender nothing about whether the
	// signature was good (checking the signature first did: "token expired"
	// meant a genuine token, "invalid signature" a forged one). What it
	// reports are the claims the sender wrote and settings it could learn
	// from any genuine token. A route's `require` stays after the
	// signature: its 403 says the token is genuine but not enough.
	if p.requireExp && !pt.reg.exp.Exists() {
		return res, nil, exp, errMissingExp
	}
	exp, err = p.checkClaims(&pt.reg, now)
	if err != nil {
		return res, nil, time.Time{}, err
	}

	// Signature.
	if pt.alg.kind != kindHMAC {
		if keys = v.keysOf(p); keys == nil {
			return res, nil, time.Time{}, errKeysUnavailable
		}
	}
	if pt.alg.kind == kindHMAC {
		if !pt.alg.verify(pt.signingInput, pt.sig, p.hmacSecret) {
			return res, nil, time.Time{}, errInvalidSig
		}
	} else if err := verifyWithKeys(keys, &pt); err != nil {
		// keys goes back with errInvalidSig: the failure is remembered
		// against them.
		return res, keys, time.Time{}, err
	}

	res.claims = claims{json: pt.payload}
	res.payload = pt.payloadSeg
	return res, keys, exp, nil
}

// verifyWithKeys checks pt's signature with the keys of ks that fit its
// algorithm: the ones with its kid, or without a kid in the token, the
// first maxKeysWithoutKid fitting keys.
func verifyWithKeys(ks *keySet, pt *parsedToken) error {
	tried := 0
	for i := range ks.keys {
		k := &ks.keys[i]
		if !k.fits(pt.alg) || (pt.hasKid && (!k.hasKid || k.kid != pt.kid)) {
			continue
		}
		if tried == maxKeysWithoutKid {
			break
		}
		tried++
		if pt.alg.verify(pt.signingInput, pt.sig, k.pub) {
			return nil
		}
	}
	if tried == 0 {
		return errUnknownKey
	}
	return errInvalidSig
}

// checkClaims validates the registered claims of a signed token at now and
// returns its expiry (zero without "exp"). The semantics are those of
// golang-jwt/v5's Validator built with WithLeeway(clock_skew),
// WithIssuedAt(), WithIssuer(issuer) and, when audiences are configured,
// WithAudience(audiences...); TestClaimsAgreeWithGolangJWT holds the two
// together. When several checks fail, the first of this order is
// reported: a malformed claim, exp, nbf, iat, iss, aud.
func (p *provider) checkClaims(r *registeredClaims, now time.Time) (exp time.Time, err error) {
	exp, e1 := numericDate(r.exp)
	nbf, e2 := numericDate(r.nbf)
	iat, e3 := numericDate(r.iat)
	iss, e4 := stringClaim(r.iss)
	var aud []string
	var e5 error
	if len(p.audiences) > 0 {
		aud, e5 = r.audience()
	}
	switch {
	case e1 != nil || e2 != nil || e3 != nil || e4 != nil || e5 != nil:
		return time.Time{}, errMalformed
	case !exp.IsZero() && !now.Before(exp.Add(p.clockSkew)):
		return time.Time{}, errExpired
	case !nbf.IsZero() && now.Add(p.clockSkew).Before(nbf):
		return time.Time{}, errNotYetValid
	case !iat.IsZero() && now.Add(p.clockSkew).Before(iat):
		return time.Time{}, errIssuedInFuture
	case iss != p.issuer:
		return time.Time{}, errIssuer
	case len(p.audiences) > 0 && !intersects(aud, p.audiences):
		return time.Time{}, errAudience
	}
	return exp, nil
}

// intersects reports whether the token audience aud names one of want; an
// empty audience (absent, [], or [""]) names none.
func intersects(aud, want []string) bool {
	for _, a := range aud {
		for _, w := range want {
			if a == w && a != "" {
				return true
			}
		}
	}
	return false
}

// providerFor returns the provider whose issuer is iss, nil if none.
func (c *config) providerFor(iss string) *provider {
	if iss == "" {
		return nil
	}
	for _, p := range c.providers {
		if p.issuer == iss {
			return p
		}
	}
	return nil
}

// parsedToken is a compact JWS split and decoded, not yet verified.
type parsedToken struct {
	signingInput string // BASE64URL(header) "." BASE64URL(payload)
	payloadSeg   string
	header       string // decoded JSON
	payload      string // decoded JSON
	sig          []byte
	alg          *algorithm
	kid          string
	hasKid       bool
	iss          string
	reg          registeredClaims
}

// parseToken splits and decodes a compact JWS (RFC 7515 §7.1) and reads
// what verification needs. Its cost is linear in the token and its
// allocations are a fixed few whatever the token holds: the segments are
// found with IndexByte (never strings.Split, the CVE-2025-30204 and
// CVE-2025-27144 amplification), and all three are decoded into one buffer.
//
// It refuses (errMalformed) anything but three segments of strict unpadded
// base64url, a header or payload that is not one JSON object, duplicate
// member names (RFC 7519 §4 allows rejecting them; parsers disagree on which
// one wins), and any "crit" header (we implement no extension, RFC 7515
// §4.1.11). It refuses (errUnsupportedAlg) an "alg" that is missing, "none"
// in any spelling, or not one of ours.
func parseToken(tok string) (pt parsedToken, err error) {
	i := indexDot(tok, 0)
	if i < 0 {
		return pt, errMalformed
	}
	j := indexDot(tok, i+1)
	if j < 0 || indexDot(tok, j+1) >= 0 {
		return pt, errMalformed
	}
	hSeg, pSeg, sSeg := tok[:i], tok[i+1:j], tok[j+1:]
	if hSeg == "" || pSeg == "" {
		return pt, errMalformed
	}
	enc := base64.RawURLEncoding.Strict()
	buf := make([]byte, enc.DecodedLen(len(hSeg))+enc.DecodedLen(len(pSeg))+enc.DecodedLen(len(sSeg)))
	hn, err1 := enc.Decode(buf, bytesOf(hSeg))
	pn, err2 := enc.Decode(buf[hn:], bytesOf(pSeg))
	sn, err3 := enc.Decode(buf[hn+pn:], bytesOf(sSeg))
	if err1 != nil || err2 != nil || err3 != nil {
		return pt, errMalformed
	}
	// buf is never written again: the strings below share it.
	pt.header = unsafe.String(unsafe.SliceData(buf), hn)
	pt.payload = unsafe.String(unsafe.SliceData(buf[hn:]), pn)
	pt.sig = buf[hn+pn : hn+pn+sn : hn+pn+sn]
	pt.signingInput = tok[:j]
	pt.payloadSeg = pSeg

	if !isJSONObject(pt.header) || !isJSONObject(pt.payload) {
		return pt, errMalformed
	}
	var alg, kid gjson.Result
	crit := false
	dup := forEachMember(pt.header, func(k string, val gjson.Result) {
		switch k {
		case "alg":
			alg = val
		case "kid":
			kid = val
		case "crit":
			crit = true
		}
	})
	if dup || crit || (kid.Exists() && kid.Type != gjson.String) {
		return pt, errMalformed
	}
	pt.kid, pt.hasKid = kid.Str, kid.Exists()
	if alg.Type != gjson.String {
		return pt, errUnsupportedAlg
	}
	if pt.alg = lookupAlg(alg.Str); pt.alg == nil {
		return pt, errUnsupportedAlg // includes "none", "None", "NONE", "nOnE"
	}
	dup = forEachMember(pt.payload, func(k string, val gjson.Result) {
		switch k {
		case "exp":
			pt.reg.exp = val
		case "nbf":
			pt.reg.nbf = val
		case "iat":
			pt.reg.iat = val
		case "iss":
			pt.reg.iss = val
		case "sub":
			pt.reg.sub = val
		case "aud":
			pt.reg.aud = val
		}
	})
	if dup {
		return pt, errMalformed
	}
	if pt.reg.iss.Exists() && pt.reg.iss.Type != gjson.String {
		return pt, errMalformed
	}
	pt.iss = pt.reg.iss.Str
	return pt, nil
}

// indexDot is strings.IndexByte(s[from:], '.') as an index into s.
func indexDot(s string, from int) int {
	for k := from; k < len(s); k++ {
		if s[k] == '.' {
			return k
		}
	}
	return -1
}

// maxJSONDepth bounds the nesting of a token's JSON, so that validating it
// (gjson recurses) cannot be driven arbitrarily deep by a large token.
const maxJSONDepth = 32

// isJSONObject reports whether s is exactly one valid JSON object nested at
// most maxJSONDepth deep.
func isJSONObject(s string) bool {
	first := byte(0)
	depth, inString, escaped := 0, false, false
	for k := 0; k < len(s); k++ {
		c := s[k]
		if first == 0 && c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			first = c
		}
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			if depth++; depth > maxJSONDepth {
				return false
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return first == '{' && gjson.Valid(s)
}

// forEachMember calls fn for each top-level member of the JSON object s. It
// stops and returns true at the first name that appears twice.
func forEachMember(s string, fn func(name string, v gjson.Result)) (dup bool) {
	var names [32]string
	n := 0
	var seen map[string]struct{}
	gjson.Parse(s).ForEach(func(k, v gjson.Result) bool {
		name := k.Str
		switch {
		case seen != nil:
			if _, ok := seen[name]; ok {
				dup = true
				return false
			}
			seen[name] = struct{}{}
		default:
			for _, m := range names[:n] {
				if m == name {
					dup = true
					return false
				}
			}
			if n < len(names) {
				names[n] = name
				n++
			} else {
				seen = make(map[string]struct{}, 64)
				for _, m := range names {
					seen[m] = struct{}{}
				}
				seen[name] = struct{}{}
			}
		}
		fn(name, v)
		return true
	})
	return dup
}

// bytesOf views s as bytes for APIs that only read them.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// registeredClaims are the RFC 7519 §4.1 claims that checkClaims reads,
// straight from the payload with gjson.
type registeredClaims struct {
	exp, nbf, iat, iss, sub, aud gjson.Result
}

// errClaimType is a registered claim of the wrong JSON type.
var errClaimType = errors.New("claim of the wrong type")

// audience accepts a string or an array of strings (RFC 7519 §4.1.3);
// anything else is malformed, never "no audience".
func (r *registeredClaims) audience() ([]string, error) {
	switch {
	case !r.aud.Exists():
		return nil, nil
	case r.aud.Type == gjson.String:
		return []string{r.aud.Str}, nil
	case r.aud.IsArray():
		var out []string
		bad := false
		r.aud.ForEach(func(_, e gjson.Result) bool {
			if e.Type != gjson.String {
				bad = true
				return false
			}
			out = append(out, e.Str)
			return true
		})
		if !bad {
			return out, nil
		}
	}
	return nil, errClaimType
}

// maxNumericDate is the largest NumericDate accepted (year 9999), so that
// absurd values are malformed rather than wrapped around by float to int
// conversion.
const maxNumericDate = 253402300799

// numericDate reads a NumericDate (RFC 7519 §2): a JSON number of seconds.
// As in golang-jwt (TimePrecision), fractions of a second are dropped. The
// zero time means the claim is absent.
func numericDate(v gjson.Result) (time.Time, error) {
	if !v.Exists() {
		return time.Time{}, nil
	}
	if v.Type != gjson.Number || math.IsNaN(v.Num) || v.Num < 0 || v.Num > maxNumericDate {
		return time.Time{}, errClaimType
	}
	sec, _ := math.Modf(v.Num)
	return time.Unix(int64(sec), 0), nil
}

func stringClaim(v gjson.Result) (string, error) {
	if !v.Exists() {
		return "", nil
	}
	if v.Type != gjson.String {
		return "", errClaimType
	}
	return v.Str, nil
}
