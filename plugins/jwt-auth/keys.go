package main

// Algorithms and verification keys. Signatures are checked by the Go
// standard library (crypto/rsa, crypto/ecdsa, crypto/ed25519, crypto/hmac),
// called exactly as github.com/golang-jwt/jwt/v5's signing methods call it;
// the tests check the two agree on every algorithm (oracle_test.go).
// golang-jwt itself is not linked into the module: it imports crypto/x509
// and so net, whose WASI imports (path_filestat_get) Envoy 1.33-1.37 does
// not provide, and the module would not load there (README.md,
// "Limitations"). This file decides which algorithm names exist and which
// key may serve which algorithm, and turns JWK members into standard
// library public keys.

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	jsoncfg "github.com/concierge-wasm/concierge/shared/config"
	"hash"
	"math/big"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// keyKind is the shape of key an algorithm needs. Every key we hold has
// exactly one kind, and an algorithm only ever sees keys of its own kind:
// that is the whole defence against algorithm confusion (an RSA public key
// can never reach an HMAC check, a P-384 key never an ES256 check).
type keyKind uint8

const (
	kindHMAC keyKind = iota + 1
	kindRSA
	kindP256
	kindP384
	kindP521
	kindEd25519
)

// algorithm is one JWS "alg" we support (RFC 7518 §3.1, RFC 8037 §3.1).
type algorithm struct {
	name string
	hash crypto.Hash // unused by EdDSA
	kind keyKind
	pss  bool // RSASSA-PSS rather than PKCS #1 v1.5
	bit  algSet
}

// algSet is a set of algorithms, one bit per entry of algorithms.
type algSet uint16

var algorithms = [...]algorithm{
	{"HS256", crypto.SHA256, kindHMAC, false, 1 << 0},
	{"HS384", crypto.SHA384, kindHMAC, false, 1 << 1},
	{"HS512", crypto.SHA512, kindHMAC, false, 1 << 2},
	{"RS256", crypto.SHA256, kindRSA, false, 1 << 3},
	{"RS384", crypto.SHA384, kindRSA, false, 1 << 4},
	{"RS512", crypto.SHA512, kindRSA, false, 1 << 5},
	{"PS256", crypto.SHA256, kindRSA, true, 1 << 6},
	{"PS384", crypto.SHA384, kindRSA, true, 1 << 7},
	{"PS512", crypto.SHA512, kindRSA, true, 1 << 8},
	{"ES256", crypto.SHA256, kindP256, false, 1 << 9},
	{"ES384", crypto.SHA384, kindP384, false, 1 << 10},
	{"ES512", crypto.SHA512, kindP521, false, 1 << 11},
	{"EdDSA", 0, kindEd25519, false, 1 << 12},
}

// pssVerify accepts any salt length, as golang-jwt does for tokens from
// signers that use the maximum rather than the hash size.
var pssVerify = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}

// verify reports whether sig is a signature of input by key with a. key
// must be of a's kind (keySet and the provider's HMAC secret guarantee it);
// any other key fails.
func (a *algorithm) verify(input string, sig []byte, key any) bool {
	switch a.kind {
	case kindHMAC:
		secret, ok := key.([]byte)
		if !ok {
			return false
		}
		mac := hmac.New(newHash(a.hash), secret)
		mac.Write(bytesOf(input))
		return hmac.Equal(sig, mac.Sum(nil))
	case kindRSA:
		pub, ok := key.(*rsa.PublicKey)
		if !ok {
			return false
		}
		// A signature of the wrong length fails before the standard
		// library sets up the modulus (it does so on every call).
		if len(sig) != pub.Size() {
			return false
		}
		digest := sum(a.hash, input)
		if a.pss {
			return rsa.VerifyPSS(pub, a.hash, digest, sig, pssVerify) == nil
		}
		return rsa.VerifyPKCS1v15(pub, a.hash, digest, sig) == nil
	case kindP256, kindP384, kindP521:
		pub, ok := key.(*ecdsa.PublicKey)
		if !ok {
			return false
		}
		// RFC 7518 §3.4: R and S as fixed-size big-endian integers.
		// (Re-encoding them in ASN.1 for ecdsa.VerifyASN1 saves five small
		// allocations but no measurable time: both spend ~1.2 ms of a
		// wasm VM's time in the P-256 scalar multiplications.)
		size := (pub.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*size {
			return false
		}
		r := new(big.Int).SetBytes(sig[:size])
		s := new(big.Int).SetBytes(sig[size:])
		return ecdsa.Verify(pub, sum(a.hash, input), r, s)
	case kindEd25519:
		pub, ok := key.(ed25519.PublicKey)
		if !ok || len(pub) != ed25519.PublicKeySize {
			return false
		}
		return ed25519.Verify(pub, bytesOf(input), sig)
	}
	return false
}

func newHash(h crypto.Hash) func() hash.Hash {
	switch h {
	case crypto.SHA384:
		return sha512.New384
	case crypto.SHA512:
		return sha512.New
	}
	return sha256.New
}

// sum hashes s with h (SHA-256, -384 or -512).
func sum(h crypto.Hash, s string) []byte {
	switch h {
	case crypto.SHA384:
		d := sha512.Sum384(bytesOf(s))
		return d[:]
	case crypto.SHA512:
		d := sha512.Sum512(bytesOf(s))
		return d[:]
	}
	d := sha256.Sum256(bytesOf(s))
	return d[:]
}

// lookupAlg finds an algorithm by its exact, case-sensitive name (RFC 7515
// §4.1.1 makes "alg" case-sensitive, so "rs256" and "None" are unknown).
func lookupAlg(name string) *algorithm {
	for i := range algorithms {
		if algorithms[i].name == name {
			return &algorithms[i]
		}
	}
	return nil
}

// minHMACKeyBytes is the shortest secret RFC 7518 §3.2 allows for an HS
// algorithm: as long as the hash output.
func minHMACKeyBytes(a *algorithm) int {
	switch a.name {
	case "HS384":
		return 48
	case "HS512":
		return 64
	}
	return 32
}

// RSA modulus bounds: RFC 7518 §3.3 requires at least 2048 bits; the upper
// bound keeps one verification (which an attacker can trigger at will with
// a forged token) cheap.
const (
	minRSABits = 2048
	maxRSABits = 8192
)

// maxJWKSKeys bounds a key set: a remote JWKS is data from elsewhere.
const maxJWKSKeys = 100

// keySet is a parsed, immutable JWKS. A new fetch makes a new keySet, so a
// pointer comparison tells whether a cached verification used the current
// keys.
type keySet struct {
	keys []jwkKey
}

// jwkKey is one public verification key.
type jwkKey struct {
	kid    string
	hasKid bool
	alg    *algorithm // nil when the JWK does not restrict its algorithm
	kind   keyKind
	pub    any // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
}

// fits reports whether k may verify a signature made with a.
func (k *jwkKey) fits(a *algorithm) bool {
	return k.kind == a.kind && (k.alg == nil || k.alg == a)
}

// fitsAny reports whether some key of the set can serve some algorithm of s.
func (ks *keySet) fitsAny(s algSet) bool {
	for i := range ks.keys {
		for j := range algorithms {
			if s&algorithms[j].bit != 0 && ks.keys[i].fits(&algorithms[j]) {
				return true
			}
		}
	}
	return false
}

// jwksError is a problem in a JWKS document, with the path inside it
// (`keys[1].crv`; "" for the document as a whole).
type jwksError struct {
	path, msg string
}

func (e *jwksError) Error() string {
	if e.path == "" {
		return e.msg
	}
	return e.path + ": " + e.msg
}

// under returns the message with the JWKS path appended to prefix, for a
// configuration error such as `providers[0].local_jwks.keys[1].crv: ...`.
func (e *jwksError) under(prefix string) string {
	if e.path == "" {
		return prefix + ": " + e.msg
	}
	return prefix + "." + e.path + ": " + e.msg
}

// parseJWKS reads a JSON Web Key Set (RFC 7517 §5) of public signature
// keys strictly, as local_jwks is read: an inline key set is configuration
// the operator can fix before start, so every key in it must be usable.
//
// Keys marked for another use ("use" other than "sig", "key_ops" without
// "verify", or an "alg" that is no signature algorithm we know) are skipped,
// since IdPs publish encryption keys beside signing keys. Everything else
// that cannot be used is an error, not a silent skip: an unsupported kty or
// crv, a symmetric ("oct") key, private key members, an RSA modulus outside
// 2048..8192 bits, an EC point off its curve, members of the wrong length,
// an "alg" that does not fit the key, and a set with no usable key left.
func parseJWKS(data []byte) (*keySet, error) {
	ks, _, err := readJWKS(data, false)
	return ks, err
}

// parseFetchedJWKS reads a JWKS fetched from an identity provider. It is
// parseJWKS, except that a key it cannot use (an X25519 or secp256k1 key
// without "use", an RSA-1024 key, a key with private members, ...) is
// skipped and returned in skipped, instead of refusing the whole document:
// an IdP that adds a key of a new type must not take down every token
// signed with the keys it already had. The document is refused only when
// it is not a key set at all or when no usable key remains.
func parseFetchedJWKS(data []byte) (ks *keySet, skipped []skippedKey, err error) {
	return readJWKS(data, true)
}

// skippedKey is a key of a fetched JWKS that could not be used.
type skippedKey struct {
	index  int
	kid    string
	hasKid bool
	err    *jwksError
}

// String describes the key and why it was skipped, for the log:
// `keys[1] (kid "enc-1"): crv: unsupported curve "X25519"`.
func (s skippedKey) String() string {
	b := make([]byte, 0, 64)
	b = append(b, "keys["...)
	b = strconv.AppendInt(b, int64(s.index), 10)
	b = append(b, ']')
	if s.hasKid {
		b = append(b, " (kid "...)
		b = strconv.AppendQuote(b, s.kid)
		b = append(b, ')')
	} else {
		b = append(b, " (no kid)"...)
	}
	b = append(b, ": "...)
	prefix := "keys[" + strconv.Itoa(s.index) + "]"
	if member, ok := strings.CutPrefix(s.err.path, prefix+"."); ok {
		b = append(b, member...)
		b = append(b, ": "...)
	}
	return string(append(b, s.err.msg...))
}

// readJWKS parses a key set; lenient skips unusable keys (see
// parseFetchedJWKS) where strict refuses the set.
func readJWKS(data []byte, lenient bool) (*keySet, []skippedKey, error) {
	if !gjson.ValidBytes(data) {
		return nil, nil, &jwksError{msg: "invalid JSON"}
	}
	doc := gjson.ParseBytes(data)
	if !doc.IsObject() {
		return nil, nil, &jwksError{msg: `must be a JWKS object {"keys": [...]}, got ` + jsoncfg.Show(doc)}
	}
	keys := doc.Get("keys")
	if !keys.Exists() {
		return nil, nil, &jwksError{path: "keys", msg: "required"}
	}
	if !keys.IsArray() {
		return nil, nil, &jwksError{path: "keys", msg: "must be an array, got " + jsoncfg.Show(keys)}
	}
	ks := &keySet{}
	var skipped []skippedKey
	var err error
	i := 0
	keys.ForEach(func(_, v gjson.Result) bool {
		if i >= maxJWKSKeys {
			err = &jwksError{path: "keys", msg: "more than " + strconv.Itoa(maxJWKSKeys) + " keys"}
			return false
		}
		path := "keys[" + strconv.Itoa(i) + "]"
		i++
		k, use, e := parseJWK(v, path)
		switch {
		case e != nil && lenient:
			kid := v.Get("kid")
			skipped = append(skipped, skippedKey{index: i - 1, kid: kid.Str,
				hasKid: kid.Type == gjson.String, err: e.(*jwksError)})
		case e != nil:
			err = e
			return false
		case use:
			ks.keys = append(ks.keys, k)
		}
		return true
	})
	if err != nil {
		return nil, nil, err
	}
	if i == 0 {
		return nil, nil, &jwksError{path: "keys", msg: "must not be empty"}
	}
	if len(ks.keys) == 0 {
		msg := "no signature verification key"
		if len(skipped) > 0 {
			msg = "no usable signature verification key (" + strconv.Itoa(len(skipped)) + " unusable skipped)"
		}
		return nil, skipped, &jwksError{path: "keys", msg: msg}
	}
	return ks, skipped, nil
}

// parseJWK reads one key. use is false for a key meant for something else.
func parseJWK(v gjson.Result, path string) (k jwkKey, use bool, err error) {
	if !v.IsObject() {
		return k, false, &jwksError{path: path, msg: "must be an object, got " + jsoncfg.Show(v)}
	}
	var kty, crv, kid, alg, useV, keyOps, n, e, x, y gjson.Result
	var private string
	var dup string
	seen := make(map[string]bool, 8)
	v.ForEach(func(key, val gjson.Result) bool {
		if seen[key.Str] {
			dup = key.Str
			return false
		}
		seen[key.Str] = true
		switch key.Str {
		case "kty":
			kty = val
		case "crv":
			crv = val
		case "kid":
			kid = val
		case "alg":
			alg = val
		case "use":
			useV = val
		case "key_ops":
			keyOps = val
		case "n":
			n = val
		case "e":
			e = val
		case "x":
			x = val
		case "y":
			y = val
		case "d", "p", "q", "dp", "dq", "qi", "oth", "k":
			if private == "" {
				private = key.Str
			}
		}
		return true
	})
	fail := func(member, msg string) (jwkKey, bool, error) {
		p := path
		if member != "" {
			p += "." + member
		}
		return jwkKey{}, false, &jwksError{path: p, msg: msg}
	}
	if dup != "" {
		return fail("", "duplicate member "+strconv.Quote(dup))
	}
	for _, m := range []struct {
		name string
		r    gjson.Result
	}{{"kty", kty}, {"crv", crv}, {"kid", kid}, {"alg", alg}, {"use", useV}, {"n", n}, {"e", e}, {"x", x}, {"y", y}} {
		if m.r.Exists() && m.r.Type != gjson.String {
			return fail(m.name, "must be a string, got "+jsoncfg.Show(m.r))
		}
	}
	if !kty.Exists() {
		return fail("kty", "required")
	}
	// Keys for another purpose are skipped before they are looked at.
	if useV.Exists() && useV.Str != "sig" {
		return k, false, nil
	}
	if keyOps.Exists() {
		if !keyOps.IsArray() {
			return fail("key_ops", "must be an array, got "+jsoncfg.Show(keyOps))
		}
		verify := false
		keyOps.ForEach(func(_, op gjson.Result) bool {
			verify = op.Type == gjson.String && op.Str == "verify"
			return !verify
		})
		if !verify {
			return k, false, nil
		}
	}
	if alg.Exists() {
		if k.alg = lookupAlg(alg.Str); k.alg == nil {
			if strings.EqualFold(alg.Str, "none") {
				return fail("alg", `"none" is not allowed`)
			}
			return k, false, nil // an encryption algorithm such as RSA-OAEP
		}
	}
	if kty.Str == "oct" {
		return fail("kty", `unsupported key type "oct": symmetric keys go in hmac_secret`)
	}
	if private != "" {
		return fail(private, "private key material is not accepted; give only the public key")
	}
	k.kid, k.hasKid = kid.Str, kid.Exists()

	switch kty.Str {
	case "RSA":
		k.kind = kindRSA
		if !n.Exists() {
			return fail("n", "required")
		}
		if !e.Exists() {
			return fail("e", "required")
		}
		nb, ok := b64url(n.Str)
		if !ok || len(nb) == 0 || nb[0] == 0 {
			return fail("n", "must be a base64url unsigned integer without leading zeros")
		}
		bits := new(big.Int).SetBytes(nb).BitLen()
		if bits < minRSABits || bits > maxRSABits {
			return fail("n", "modulus of "+strconv.Itoa(bits)+" bits, need "+strconv.Itoa(minRSABits)+" to "+strconv.Itoa(maxRSABits))
		}
		eb, ok := b64url(e.Str)
		if !ok || len(eb) == 0 || len(eb) > 4 || eb[0] == 0 {
			return fail("e", "must be a base64url unsigned integer of at most 4 bytes")
		}
		exp := 0
		for _, b := range eb {
			exp = exp<<8 | int(b)
		}
		if exp < 3 || exp%2 == 0 || exp > 1<<31-1 {
			return fail("e", "invalid RSA exponent "+strconv.Itoa(exp))
		}
		k.pub = &rsa.PublicKey{N: new(big.Int).SetBytes(nb), E: exp}
	case "EC":
		if !crv.Exists() {
			return fail("crv", "required")
		}
		var curve elliptic.Curve
		var size int
		switch crv.Str {
		case "P-256":
			curve, size, k.kind = elliptic.P256(), 32, kindP256
		case "P-384":
			curve, size, k.kind = elliptic.P384(), 48, kindP384
		case "P-521":
			curve, size, k.kind = elliptic.P521(), 66, kindP521
		default:
			return fail("crv", "unsupported curve "+strconv.Quote(crv.Str))
		}
		xb, okx := b64url(x.Str)
		yb, oky := b64url(y.Str)
		if !x.Exists() || !okx || len(xb) != size {
			return fail("x", "must be a base64url coordinate of "+strconv.Itoa(size)+" bytes")
		}
		if !y.Exists() || !oky || len(yb) != size {
			return fail("y", "must be a base64url coordinate of "+strconv.Itoa(size)+" bytes")
		}
		point := make([]byte, 0, 1+2*size)
		point = append(append(append(point, 4), xb...), yb...)
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, point)
		if err != nil {
			return fail("", "not a point on "+crv.Str)
		}
		k.pub = pub
	case "OKP":
		if !crv.Exists() {
			return fail("crv", "required")
		}
		if crv.Str != "Ed25519" {
			return fail("crv", "unsupported curve "+strconv.Quote(crv.Str))
		}
		k.kind = kindEd25519
		xb, ok := b64url(x.Str)
		if !x.Exists() || !ok || len(xb) != ed25519.PublicKeySize {
			return fail("x", "must be a base64url Ed25519 public key of 32 bytes")
		}
		k.pub = ed25519.PublicKey(xb)
	default:
		return fail("kty", "unsupported key type "+strconv.Quote(kty.Str))
	}
	if k.alg != nil && k.alg.kind != k.kind {
		return fail("alg", strconv.Quote(k.alg.name)+" does not fit this "+kty.Str+" key")
	}
	return k, true, nil
}

// b64url decodes unpadded base64url (RFC 7515 §2), strictly: the unused
// bits of the last character must be zero, so one value has one encoding.
func b64url(s string) ([]byte, bool) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return b, err == nil
}
