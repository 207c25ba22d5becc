package main

// Cache-Control parsing (RFC 9111 §5.2). The header comes from clients and
// origins alike, so the parser accepts any bytes, never panics, and when a
// directive is malformed or repeated with conflicting values it takes the
// reading that caches less: a bad max-age makes the response stale, a
// duplicate keeps the smaller value.

import "strings"

// directives are the Cache-Control directives a shared cache acts on.
// Delta-seconds fields are -1 when absent.
type directives struct {
	noStore, noCache, private, public    bool
	mustRevalidate, proxyRevalidate      bool
	onlyIfCached, noTransform, immutable bool
	maxStaleAny                          bool // max-stale without a value
	maxAge, sMaxAge, maxStale, minFresh  int64
	staleWhileRevalidate, staleIfError   int64
	// invalid is set when a directive the cache relies on had a value it
	// could not read; the response is then treated as having no freshness.
	invalid bool
}

// maxDelta caps delta-seconds: RFC 9111 §1.2.2 says a cache receiving a
// larger value uses 2^31.
const maxDelta = 1 << 31

func noDirectives() directives {
	return directives{maxAge: -1, sMaxAge: -1, maxStale: -1, minFresh: -1, staleWhileRevalidate: -1, staleIfError: -1}
}

// parseCacheControl reads every Cache-Control field value of a message
// (a message may carry the header several times; they form one list).
func parseCacheControl(values ...string) directives {
	d := noDirectives()
	for _, v := range values {
		d.parse(v)
	}
	return d
}

func (d *directives) parse(s string) {
	for len(s) > 0 {
		// One directive: token [ "=" ( token / quoted-string ) ], then ','.
		s = trimOWS(s)
		if len(s) == 0 {
			return
		}
		if s[0] == ',' {
			s = s[1:]
			continue
		}
		i := 0
		for i < len(s) && s[i] != '=' && s[i] != ',' {
			i++
		}
		name := strings.TrimRight(s[:i], " \t")
		s = s[i:]
		value, hasValue := "", false
		if len(s) > 0 && s[0] == '=' {
			hasValue = true
			s = trimOWS(s[1:])
			if len(s) > 0 && s[0] == '"' {
				value, s = readQuoted(s)
			} else {
				j := 0
				for j < len(s) && s[j] != ',' {
					j++
				}
				value, s = strings.TrimRight(s[:j], " \t"), s[j:]
			}
		}
		// Skip whatever is left up to the next comma (garbage after a
		// quoted string, say).
		if k := strings.IndexByte(s, ','); k >= 0 {
			s = s[k:]
		} else {
			s = ""
		}
		d.apply(name, value, hasValue)
	}
}

// readQuoted reads a quoted-string at the start of s and returns its
// unescaped content and the rest. An unterminated string runs to the end.
func readQuoted(s string) (string, string) {
	var b strings.Builder
	escaped := false
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case escaped:
			b.WriteByte(c)
			escaped = false
		case c == '\\':
			escaped = true
		case c == '"':
			return b.String(), s[i+1:]
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), ""
}

func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	return s
}

func (d *directives) apply(name, value string, hasValue bool) {
	switch strings.ToLower(name) {
	case "no-store":
		d.noStore = true
	case "no-cache":
		// The qualified form (no-cache="set-cookie") lets a cache reuse the
		// rest of the response; revalidating every time is the safe reading.
		d.noCache = true
	case "private":
		// Likewise private="field": treated as private.
		d.private = true
	case "public":
		d.public = true
	case "must-revalidate":
		d.mustRevalidate = true
	case "proxy-revalidate":
		d.proxyRevalidate = true
	case "only-if-cached":
		d.onlyIfCached = true
	case "no-transform":
		d.noTransform = true
	case "immutable":
		d.immutable = true
	case "max-age":
		d.maxAge = d.delta(d.maxAge, value, hasValue, 0)
	case "s-maxage":
		d.sMaxAge = d.delta(d.sMaxAge, value, hasValue, 0)
	case "min-fresh":
		d.minFresh = d.delta(d.minFresh, value, hasValue, maxDelta)
	case "stale-while-revalidate":
		d.staleWhileRevalidate = d.delta(d.staleWhileRevalidate, value, hasValue, 0)
	case "stale-if-error":
		d.staleIfError = d.delta(d.staleIfError, value, hasValue, 0)
	case "max-stale":
		if !hasValue {
			d.maxStaleAny = true
			return
		}
		// A bad max-stale value accepts no staleness at all.
		d.maxStale = d.delta(d.maxStale, value, true, 0)
	}
}

// delta reads delta-seconds, keeping the smaller of duplicates. A missing or
// malformed value yields onBad (0 for lifetimes: stale at once).
func (d *directives) delta(prev int64, value string, hasValue bool, onBad int64) int64 {
	n, ok := parseDelta(value)
	if !hasValue || !ok {
		d.invalid = true
		n = onBad
	}
	if prev >= 0 && prev < n {
		return prev
	}
	return n
}

// parseDelta reads 1*DIGIT, saturating at maxDelta.
func parseDelta(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if n < maxDelta {
			n = n*10 + int64(c-'0')
		}
	}
	return min(n, maxDelta), true
}
