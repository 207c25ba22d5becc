package main

// Reading verified claims: the values copied into upstream headers
// (claim_to_headers) and the per-route `require` check.

import (
	"strings"

	"github.com/tidwall/gjson"
)

// claims is the payload of a verified token: one JSON object without
// duplicate member names (verify refuses those).
type claims struct {
	json string
}

// get returns the claim called name. A top-level member of exactly that
// name wins (URL-like names such as "https://example.com/roles" are common);
// otherwise a name with dots walks nested objects ("realm_access.roles"),
// as Envoy's claim_to_headers does. Names are never read as gjson paths, so
// characters such as '*', '#' or '@' have no special meaning.
func (c claims) get(name string) gjson.Result {
	obj := gjson.Parse(c.json)
	if v := member(obj, name); v.Exists() || !strings.Contains(name, ".") {
		return v
	}
	for {
		head, rest, more := strings.Cut(name, ".")
		obj = member(obj, head)
		if !more || !obj.Exists() {
			return obj
		}
		if !obj.IsObject() {
			return gjson.Result{}
		}
		name = rest
	}
}

// subject returns the "sub" claim, "" when absent or not a string.
func (c claims) subject() string {
	if v := c.get("sub"); v.Type == gjson.String {
		return v.Str
	}
	return ""
}

// member returns the member of obj called name, compared exactly.
func member(obj gjson.Result, name string) gjson.Result {
	var out gjson.Result
	obj.ForEach(func(k, v gjson.Result) bool {
		if k.Str == name {
			out = v
			return false
		}
		return true
	})
	return out
}

// claimHeaders appends the provider's claim_to_headers to dst. When several
// entries name one header, the first claim the token has wins (the default
// maps "roles", else "scope", to x-user-roles). A claim that is absent, an
// object, or holds characters a header value may not carry sets nothing.
func (p *provider) claimHeaders(c claims, dst [][2]string) [][2]string {
	start := len(dst)
next:
	for _, ch := range p.claimToHeaders {
		for _, h := range dst[start:] {
			if h[0] == ch.header {
				continue next
			}
		}
		if v, ok := claimHeaderValue(ch.claim, c.get(ch.claim)); ok {
			dst = append(dst, [2]string{ch.header, v})
		}
	}
	return dst
}

// claimHeaderValue renders a claim as a header value: strings as they are,
// numbers as written, booleans as true/false, arrays of those joined by ",".
// "scope" and "scp" strings are space-separated lists (RFC 8693 §4.2) and
// come out comma-joined like arrays.
func claimHeaderValue(name string, v gjson.Result) (string, bool) {
	var out string
	switch {
	case !v.Exists():
		return "", false
	case v.IsArray():
		var b strings.Builder
		ok := true
		v.ForEach(func(_, e gjson.Result) bool {
			s, isScalar := scalarString(e)
			if !isScalar {
				ok = false
				return false
			}
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(s)
			return true
		})
		if !ok || b.Len() == 0 {
			return "", false
		}
		out = b.String()
	case v.Type == gjson.String && (name == "scope" || name == "scp"):
		out = strings.Join(strings.Fields(v.Str), ",")
	default:
		s, ok := scalarString(v)
		if !ok {
			return "", false
		}
		out = s
	}
	if out == "" || !validHeaderValue(out) {
		return "", false
	}
	return out, true
}

func scalarString(v gjson.Result) (string, bool) {
	switch v.Type {
	case gjson.String:
		return v.Str, true
	case gjson.Number:
		return v.Raw, true
	case gjson.True:
		return "true", true
	case gjson.False:
		return "false", true
	}
	return "", false
}

// validHeaderValue reports whether s may be sent as a header value as it is:
// no control characters (CR and LF above all), no surrounding whitespace.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return trimOWS(s) == s
}

// requirement is a rule's `"require": {"claims": {...}}`: every named claim
// must hold at least one of its listed values.
type requirement struct {
	claims []claimRequirement
}

type claimRequirement struct {
	name  string
	anyOf []string
}

// met reports whether the verified claims satisfy r. A claim may be an array
// (any element counts), a string (the whole string, or any of its
// space-separated words as in "scope"), a number or a boolean (compared as
// written).
func (r requirement) met(c claims) bool {
	for _, cr := range r.claims {
		if !cr.metBy(c.get(cr.name)) {
			return false
		}
	}
	return true
}

func (cr claimRequirement) metBy(v gjson.Result) bool {
	if v.IsArray() {
		found := false
		v.ForEach(func(_, e gjson.Result) bool {
			if s, ok := scalarString(e); ok && cr.wants(s) {
				found = true
			}
			return !found
		})
		return found
	}
	s, ok := scalarString(v)
	if !ok {
		return false
	}
	if cr.wants(s) {
		return true
	}
	if v.Type == gjson.String {
		for _, w := range strings.Fields(s) {
			if cr.wants(w) {
				return true
			}
		}
	}
	return false
}

func (cr claimRequirement) wants(s string) bool {
	for _, w := range cr.anyOf {
		if w == s {
			return true
		}
	}
	return false
}

// roles returns the caller's roles for the identity property: the "roles"
// claim (an array, or a space-separated string), or else the "scope" or
// "scp" claim read the same way (RFC 8693 §4.2). Non-string elements are
// skipped.
func (c claims) roles() []string {
	for _, name := range [...]string{"roles", "scope", "scp"} {
		v := c.get(name)
		var out []string
		switch {
		case v.IsArray():
			v.ForEach(func(_, e gjson.Result) bool {
				if e.Type == gjson.String && e.Str != "" {
					out = append(out, e.Str)
				}
				return true
			})
		case v.Type == gjson.String:
			out = strings.Fields(v.Str)
		default:
			continue
		}
		if len(out) > 0 {
			return out
		}
	}
	return nil
}

// identityView is what a verified token says about its bearer, read from
// the claims once and kept with the cached verification: the provider's
// claim_to_headers, and the subject and roles of the identity property.
type identityView struct {
	headers [][2]string
	subject string
	roles   []string
}

func (p *provider) identityOf(c claims) identityView {
	return identityView{headers: p.claimHeaders(c, nil), subject: c.subject(), roles: c.roles()}
}

// size is the bytes the view holds, for the cache's byte bound.
func (v identityView) size() int {
	n := len(v.subject)
	for _, h := range v.headers {
		n += len(h[0]) + len(h[1])
	}
	for _, r := range v.roles {
		n += len(r)
	}
	return n
}
