package main

// Finding the key, looking it up, and deciding: plain Go, no proxy-wasm;
// main.go carries the decision out.

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// reason is why a request was denied. Clients see only its message; the
// finer reasons (unknown, expired, not yet valid) are for metrics and logs,
// so that a client cannot tell a revoked key from one that never existed.
type reason uint8

const (
	reasonNone reason = iota
	reasonMissing
	reasonUnknown
	reasonExpired
	reasonNotYetValid
	// reasonMalformed: several keys, an oversized one, a bad escape.
	reasonMalformed
	reasonPermission
	// reasonSpoofed: the request carried an identity header of its own
	// and spoofed_identity_headers is "reject".
	reasonSpoofed
	numReasons
)

// slug is the reason's name in metrics and logs.
func (r reason) slug() string {
	switch r {
	case reasonMissing:
		return "missing_key"
	case reasonUnknown:
		return "unknown_key"
	case reasonExpired:
		return "expired_key"
	case reasonNotYetValid:
		return "key_not_yet_valid"
	case reasonMalformed:
		return "malformed_key"
	case reasonPermission:
		return "permission_denied"
	case reasonSpoofed:
		return "spoofed_identity_header"
	}
	return "none"
}

// Client-facing messages: one for every bad key, so that there is no
// oracle.
const (
	msgMissing    = "API key required"
	msgInvalid    = "invalid API key"
	msgPermission = "permission denied"
	msgSpoofed    = "spoofed identity header" // identity.SpoofReason, as jwt-auth says it
)

func (r reason) status() int {
	switch r {
	case reasonPermission:
		return 403
	case reasonSpoofed:
		return 400
	}
	return 401
}

func (r reason) message() string {
	switch r {
	case reasonMissing:
		return msgMissing
	case reasonPermission:
		return msgPermission
	case reasonSpoofed:
		return msgSpoofed
	}
	return msgInvalid
}

// where a key was found.
type keySource uint8

const (
	fromNone keySource = iota
	fromHeader
	fromQuery
)

// outcome is the decision about one request.
type outcome struct {
	reason reason // reasonNone: allowed (or anonymous when consumer < 0)
	// consumer is the key's owner, -1 when no configured key matched.
	consumer int
	key      *apiKey // the matched key, nil when none
	source   keySource
	// need is the missing permission of a 403.
	need string
}

func (o *outcome) allowed() bool   { return o.reason == reasonNone && o.consumer >= 0 }
func (o *outcome) anonymous() bool { return o.reason == reasonNone && o.consumer < 0 }

// authenticate finds the request's key, looks it up and checks the
// permissions the method and the matched rule (ov, nil when none) need.
// now is asked only for a key with a validity window.
func (c *config) authenticate(headers [][2]string, path, method string, ov *ruleOverride, now func() time.Time) outcome {
	out := outcome{consumer: -1}
	value, src, r := c.findKey(headers, path)
	out.source = src
	if r != reasonNone {
		out.reason = r
		return out
	}
	if src == fromNone {
		allowMissing := c.allowMissing
		if ov != nil {
			allowMissing = ov.allowMissing
		}
		if !allowMissing {
			out.reason = reasonMissing
		}
		return out
	}
	k, r := c.lookup(value, now)
	if k != nil {
		out.key, out.consumer = k, k.consumer
	}
	if r != reasonNone {
		out.reason = r
		return out
	}
	cons := &c.consumers[k.consumer]
	if need := c.perms.of(method); need != "" && !cons.has(need) {
		out.reason, out.need = reasonPermission, need
		return out
	}
	if ov != nil {
		for _, need := range ov.require {
			if !cons.has(need) {
				out.reason, out.need = reasonPermission, need
				return out
			}
		}
	}
	return out
}

func (c *consumer) has(perm string) bool {
	for _, p := range c.permissions {
		if p == perm {
			return true
		}
	}
	return false
}

// lookup finds the configured key whose digest is the digest of value.
//
// Comparing the presented key with each configured one would leak, through
// timing, how many leading bytes matched. Here the attacker's input is
// hashed first and the map is searched by digest: the time it takes
// depends on the digest, which the attacker cannot steer towards a
// configured one. The final comparison of the found digest is constant
// time as well (crypto/subtle), so that no short-circuiting comparison of
// secret-derived bytes is left anywhere.
//
// A matched key outside its validity window yields its key (for the log)
// and the reason.
func (c *config) lookup(value string, now func() time.Time) (*apiKey, reason) {
	d := sha256.Sum256([]byte(value))
	k, ok := c.keys[d]
	if !ok || subtle.ConstantTimeCompare(k.digest[:], d[:]) != 1 {
		return nil, reasonUnknown
	}
	if k.notBefore.IsZero() && k.notAfter.IsZero() {
		return k, reasonNone
	}
	t := now()
	switch {
	case !k.notBefore.IsZero() && t.Before(k.notBefore):
		return k, reasonNotYetValid
	case !k.notAfter.IsZero() && !t.Before(k.notAfter):
		return k, reasonExpired
	}
	return k, reasonNone
}

// findKey reads the key from the configured header and, when configured,
// query parameter. A request that carries more than one key (the header
// twice, the parameter twice, or both) is refused as malformed rather than
// guessing which one counts. An empty value counts as no key.
func (c *config) findKey(headers [][2]string, path string) (string, keySource, reason) {
	var value string
	src := fromNone
	n := 0
	for _, h := range headers {
		if h[1] == "" || !strings.EqualFold(h[0], c.header) {
			continue
		}
		value, src = h[1], fromHeader
		n++
	}
	if c.queryParam != "" {
		v, m, ok := queryParam(path, c.queryParam)
		if !ok {
			return "", fromQuery, reasonMalformed
		}
		if m > 0 {
			n += m
			if src == fromNone {
				value, src = v, fromQuery
			}
		}
	}
	switch {
	case n > 1:
		return "", src, reasonMalformed
	case src != fromNone && len(value) > maxKeyBytes:
		return "", src, reasonMalformed
	}
	return value, src, reasonNone
}

// queryParam returns the (unescaped) value of the last non-empty parameter
// name in path's query and how many non-empty ones there are; ok is false
// when a value is badly escaped. Names are compared unescaped, so that
// "api%5Fkey" cannot smuggle a second key past the count.
func queryParam(path, name string) (value string, n int, ok bool) {
	_, query, found := strings.Cut(path, "?")
	if !found {
		return "", 0, true
	}
	for query != "" {
		var pair string
		pair, query, _ = strings.Cut(query, "&")
		k, v, _ := strings.Cut(pair, "=")
		if !paramNameIs(k, name) || v == "" {
			continue
		}
		if len(v) > 3*maxKeyBytes {
			return "", n + 1, false
		}
		if strings.ContainsAny(v, "%+") {
			u, err := url.QueryUnescape(v)
			if err != nil {
				return "", n + 1, false
			}
			v = u
		}
		value = v
		n++
	}
	return value, n, true
}

func paramNameIs(raw, name string) bool {
	if raw == name {
		return true
	}
	if !strings.ContainsAny(raw, "%+") {
		return false
	}
	u, err := url.QueryUnescape(raw)
	return err == nil && u == name
}

// removeQueryParam returns path without every parameter called name (by
// its unescaped name). Every other byte is kept as it was, empty pairs
// included; a query left empty loses its "?", and a path without the
// parameter is returned unchanged.
func removeQueryParam(path, name string) string {
	base, query, ok := strings.Cut(path, "?")
	if !ok {
		return path
	}
	b := make([]byte, 0, len(path))
	b = append(b, base...)
	sep := byte('?')
	removed := false
	for {
		pair, rest, more := strings.Cut(query, "&")
		if k, _, _ := strings.Cut(pair, "="); paramNameIs(k, name) {
			removed = true
		} else {
			b = append(b, sep)
			b = append(b, pair...)
			sep = '&'
		}
		if !more {
			break
		}
		query = rest
	}
	if !removed {
		return path
	}
	if len(b) == len(base)+1 && b[len(base)] == '?' {
		b = b[:len(base)] // only an empty pair was left
	}
	return string(b)
}

// challenge is the WWW-Authenticate value of a 401, in the style of Kong's
// key-auth: `Key realm="api"`, or `Key` without a realm.
func (c *config) challenge() string {
	if c.realm == "" {
		return "Key"
	}
	return `Key realm="` + c.realm + `"`
}

// metricPrefix starts every metric name of this filter.
const metricPrefix = "concierge_key_auth_"

const (
	metricAllowed   = metricPrefix + "allowed_total"
	metricDenied    = metricPrefix + "denied_total"
	metricAnonymous = metricPrefix + "anonymous_total"
	metricShadowed  = metricPrefix + "shadowed_total"
)

// reasonMetric is the per-reason denial counter.
func reasonMetric(r reason) string { return metricPrefix + "denied_" + r.slug() + "_total" }

// consumerMetric counts the requests whose key identified the consumer
// (allowed or refused for permissions): bounded by the configured consumers.
func consumerMetric(name string) string { return metricPrefix + "consumer_" + name + "_requests_total" }

// denialLog is the one log line of a denial. It names the matched key by
// its place in the configuration, never by its value:
//
//	key-auth: denied status=401 reason=expired_key request_id="5f0c…" consumer="acme" key=consumers[0].keys[1] rule=-1
func denialLog(shadow bool, c *config, out *outcome, requestID string, rule int) string {
	b := make([]byte, 0, 160+len(requestID))
	if shadow {
		b = append(b, "shadow: would deny status="...)
	} else {
		b = append(b, "denied status="...)
	}
	b = strconv.AppendInt(b, int64(out.reason.status()), 10)
	b = append(b, " reason="...)
	b = append(b, out.reason.slug()...)
	b = append(b, " request_id="...)
	b = strconv.AppendQuote(b, requestID)
	if out.key != nil {
		b = append(b, " consumer="...)
		b = strconv.AppendQuote(b, c.consumers[out.consumer].name)
		b = append(b, " key="...)
		b = append(b, out.key.path...)
	}
	if out.need != "" {
		b = append(b, " missing_permission="...)
		b = strconv.AppendQuote(b, out.need)
	}
	b = append(b, " rule="...)
	b = strconv.AppendInt(b, int64(rule), 10)
	if shadow {
		b = append(b, "; let through"...)
	}
	return string(b)
}
