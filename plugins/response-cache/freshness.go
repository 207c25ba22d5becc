package main

// What a shared cache may store, for how long, and how old a stored
// response is (RFC 9111 §3, §4.2). Plain functions over header values, so
// the RFC's rules are tested natively and the wiring only gathers headers.

import (
	"strings"
	"time"
)

// response is what the storability and freshness rules read of an origin
// response (all header names lower-case, values as received).
type response struct {
	status       int
	cc           directives
	date         string
	expires      string
	hasExpires   bool
	lastModified string
	etag         string
	age          string
	// ageInvalid: Age is not exactly one non-negative integer (two field
	// lines, a list, a fraction, a suffix); the response is then taken as
	// stale rather than guessed at.
	ageInvalid bool
	// sc are the Surrogate-Control directives addressed to every
	// surrogate (Edge Architecture 1.0), which take precedence over
	// Cache-Control for this cache.
	sc           directives
	vary         []string // every Vary field value
	setCookie    bool
	contentRange bool
}

// requestInfo is what they read of the request that got the response.
type requestInfo struct {
	method        string
	cc            directives
	authorization bool
	// identityKeyed: the key includes a verified identity, so responses
	// meant for one user (private, or to an Authorization request) can be
	// stored for that user alone.
	identityKeyed bool
	rangeRequest  bool
	// unkeyed names a poisoning header the request carries (unkeyedHeader).
	unkeyed string
}

// policy is the part of the configuration the rules depend on.
type policy struct {
	defaultTTL        time.Duration
	maxTTL            time.Duration
	heuristicFraction float64
	storeSetCookie    bool
}

// notStored says why a response was not stored; "" means storable.
type notStored string

const (
	storable          notStored = ""
	reasonMethod      notStored = "method"
	reasonStatus      notStored = "status"
	reasonNoStore     notStored = "no_store"
	reasonPrivate     notStored = "private"
	reasonAuthz       notStored = "authorization"
	reasonSetCookie   notStored = "set_cookie"
	reasonVaryStar    notStored = "vary_star"
	reasonNoFreshness notStored = "no_freshness"
	reasonRange       notStored = "range"
	reasonUnkeyed     notStored = "unkeyed_header"
)

// statusUnderstood lists the final statuses the cache stores at all (RFC
// 9111 §3: a cache must understand the status code); heuristic lists those
// it may also store without explicit freshness (RFC 9110 §15.1). 206 is left
// out: the cache neither stores nor combines partial content.
func statusUnderstood(code int) (ok, heuristic bool) {
	switch code {
	case 200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501:
		return true, true
	case 302, 303, 307:
		return true, false
	}
	return false, false
}

// storability applies RFC 9111 §3 for a shared cache, plus the filter's own
// rules (Set-Cookie). method is the request method the response answers;
// only GET responses are stored (HEAD is served from them).
func storability(req *requestInfo, resp *response, pol *policy, lifetime time.Duration) notStored {
	if req.method != "GET" {
		return reasonMethod
	}
	if req.rangeRequest || resp.contentRange || resp.status == 206 {
		return reasonRange
	}
	if req.unkeyed != "" {
		return reasonUnkeyed
	}
	understood, heuristic := statusUnderstood(resp.status)
	if !understood {
		return reasonStatus
	}
	if req.cc.noStore || resp.sc.noStore || (resp.cc.noStore && resp.sc.maxAge < 0) {
		return reasonNoStore
	}
	if resp.cc.private && !req.identityKeyed {
		return reasonPrivate
	}
	if req.authorization && !req.identityKeyed && !resp.cc.public && resp.cc.sMaxAge < 0 && !resp.cc.mustRevalidate {
		return reasonAuthz
	}
	if resp.setCookie && !pol.storeSetCookie {
		return reasonSetCookie
	}
	for _, v := range resp.vary {
		for _, f := range strings.Split(v, ",") {
			if strings.TrimSpace(f) == "*" {
				return reasonVaryStar
			}
		}
	}
	explicit := resp.sc.maxAge >= 0 || resp.cc.sMaxAge >= 0 || resp.cc.maxAge >= 0 || resp.hasExpires
	if !explicit && !resp.cc.public && !heuristic {
		return reasonNoFreshness
	}
	// Nothing to gain from a response that is stale at once and cannot be
	// revalidated.
	if lifetime <= 0 && resp.etag == "" && resp.lastModified == "" {
		return reasonNoFreshness
	}
	return storable
}

// freshnessLifetime is RFC 9111 §4.2.1 for a shared cache: s-maxage, then
// max-age, then Expires − Date, then (for heuristically cacheable statuses
// with Last-Modified) a fraction of the time since the last modification,
// then the configured default_ttl. Every lifetime is capped by max_ttl.
func freshnessLifetime(resp *response, pol *policy, responseTime time.Time) time.Duration {
	var d time.Duration
	switch {
	case resp.ageInvalid:
		d = 0
	case resp.sc.maxAge >= 0:
		d = seconds(resp.sc.maxAge)
	case resp.cc.sMaxAge >= 0:
		d = seconds(resp.cc.sMaxAge)
	case resp.cc.maxAge >= 0:
		d = seconds(resp.cc.maxAge)
	case resp.hasExpires:
		exp, ok := parseHTTPDate(resp.expires)
		if !ok {
			return 0 // an invalid Expires, "0" included, is in the past
		}
		date, ok := parseHTTPDate(resp.date)
		if !ok {
			date = responseTime
		}
		d = exp.Sub(date)
	default:
		_, heuristic := statusUnderstood(resp.status)
		if lm, ok := parseHTTPDate(resp.lastModified); ok && heuristic && pol.heuristicFraction > 0 {
			date, ok := parseHTTPDate(resp.date)
			if !ok {
				date = responseTime
			}
			if since := date.Sub(lm); since > 0 {
				d = time.Duration(float64(since) * pol.heuristicFraction).Truncate(time.Second)
			}
		}
		if d <= 0 && pol.defaultTTL > 0 {
			d = pol.defaultTTL
		}
	}
	if d < 0 {
		d = 0
	}
	if pol.maxTTL > 0 && d > pol.maxTTL {
		d = pol.maxTTL
	}
	return d
}

func seconds(n int64) time.Duration { return time.Duration(n) * time.Second }

// initialAge is RFC 9111 §4.2.3's corrected_initial_age: how old the
// response already was when it reached the cache.
func initialAge(resp *response, requestTime, responseTime time.Time) time.Duration {
	var apparent time.Duration
	if date, ok := parseHTTPDate(resp.date); ok {
		apparent = max(0, responseTime.Sub(date))
	}
	ageValue := time.Duration(0)
	if n, ok := parseDelta(strings.TrimSpace(resp.age)); ok {
		ageValue = seconds(n)
	}
	delay := max(0, responseTime.Sub(requestTime))
	return max(apparent, ageValue+delay)
}

// currentAge is corrected_initial_age + resident_time.
func currentAge(initial time.Duration, responseTime, now time.Time) time.Duration {
	return initial + max(0, now.Sub(responseTime))
}

// HTTP-date formats (RFC 9110 §5.6.7): IMF-fixdate, then the obsolete RFC
// 850 and asctime forms recipients must accept.
var httpDateLayouts = [...]string{
	"Mon, 02 Jan 2006 15:04:05 GMT",
	"Monday, 02-Jan-06 15:04:05 GMT",
	"Mon Jan _2 15:04:05 2006",
}

func parseHTTPDate(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, false
	}
	for _, l := range httpDateLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func formatHTTPDate(t time.Time) string {
	return t.UTC().Format(httpDateLayouts[0])
}

// use is what a request may do with a stored response (RFC 9111 §4 and
// the request directives of §5.2.1).
type use uint8

const (
	useFresh      use = iota // serve it
	useRevalidate            // ask the origin with validators
	useMiss                  // go to the origin as if nothing were stored
)

// stored is what the reuse decision reads of an entry.
type stored struct {
	lifetime       time.Duration
	age            time.Duration // current age
	noCache        bool          // response no-cache: revalidate every time
	mustRevalidate bool          // must-revalidate, proxy-revalidate or s-maxage: never serve stale
	hasValidators  bool
}

// reuse decides how a request may use a stored response.
func reuse(req *directives, pragmaNoCache bool, e *stored) use {
	revalidateOrMiss := useMiss
	if e.hasValidators {
		revalidateOrMiss = useRevalidate
	}
	// Pragma: no-cache counts only when there is no Cache-Control (RFC
	// 9111 §5.4); noDirectives has everything absent.
	if req.noCache || e.noCache || pragmaNoCache {
		return revalidateOrMiss
	}
	if req.maxAge >= 0 && e.age > seconds(req.maxAge) {
		return revalidateOrMiss
	}
	remaining := e.lifetime - e.age
	if req.minFresh >= 0 && remaining < seconds(req.minFresh) {
		return revalidateOrMiss
	}
	if remaining > 0 {
		return useFresh
	}
	// Stale: max-stale lets the client accept it unless the origin forbade
	// serving it stale.
	if !e.mustRevalidate && (req.maxStaleAny || (req.maxStale >= 0 && -remaining <= seconds(req.maxStale))) {
		return useFresh
	}
	return revalidateOrMiss
}

// forRequest narrows a policy for one request. Freshness the filter
// invents (default_ttl, heuristics) is for anonymous content: a request
// with credentials (Authorization, Cookie) whose key does not hold the
// verified identity is cached only when the origin said so explicitly.
// Otherwise a route with default_ttl would store /api/users/me.css, answered
// for one user's cookie, and serve it to the next (web cache deception).
func (p policy) forRequest(credentialed, identityKeyed bool) policy {
	if credentialed && !identityKeyed {
		p.defaultTTL, p.heuristicFraction = 0, 0
	}
	return p
}

// parseSurrogateControl reads Surrogate-Control values, leaving out the
// directives targeted at a named device (`max-age=60;edge1`).
func parseSurrogateControl(values []string) directives {
	d := noDirectives()
	for _, v := range values {
		for _, member := range strings.Split(v, ",") {
			if !strings.Contains(member, ";") {
				d.parse(member)
			}
		}
	}
	return d
}

// validAge reports whether Age values are exactly one non-negative integer.
func validAge(values []string) bool {
	if len(values) != 1 {
		return len(values) == 0
	}
	_, ok := parseDelta(strings.TrimSpace(values[0]))
	return ok
}
