package main

// Building the responses the cache answers with, and the entries it
// stores, from header lists. Plain Go; main.go only moves headers and
// bodies between these functions and the host.

import (
	"strconv"
	"strings"
	"time"
)

// headerList is a header list as proxy-wasm gives it: lower-case names,
// duplicates kept, pseudo-headers first.
type headerList [][2]string

// get returns the first value of name.
func (h headerList) get(name string) string {
	for _, p := range h {
		if p[0] == name {
			return p[1]
		}
	}
	return ""
}

func (h headerList) has(name string) bool {
	for _, p := range h {
		if p[0] == name {
			return true
		}
	}
	return false
}

// joined returns every value of name joined with ", ", as one list (RFC
// 9110 §5.3): two field lines must not key like one.
func (h headerList) joined(name string) string {
	var b []byte
	n := 0
	for _, p := range h {
		if p[0] == name {
			if n > 0 {
				b = append(b, ", "...)
			}
			b = append(b, p[1]...)
			n++
		}
	}
	if n == 1 {
		return h.get(name)
	}
	return string(b)
}

// all returns every value of name.
func (h headerList) all(name string) []string {
	var out []string
	for _, p := range h {
		if p[0] == name {
			out = append(out, p[1])
		}
	}
	return out
}

// notReplayed are the response headers a stored entry does not keep:
// hop-by-hop fields (RFC 9110 §7.6.1), what the cache recomputes (Age,
// Content-Length, its own X-Cache), and Set-Cookie, which belongs to the
// client that caused the store even when store_set_cookie lets the rest of
// the response be stored.
func notReplayed(name string) bool {
	switch name {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer",
		"proxy-authenticate", "proxy-authorization",
		"age", "content-length", "x-cache", "set-cookie", "set-cookie2", "surrogate-control":
		return true
	}
	return len(name) == 0 || name[0] == ':'
}

// storedHeaders keeps the response headers an entry replays, and the
// connection-nominated ones out too.
func storedHeaders(h headerList) [][2]string {
	var nominated []string
	for _, v := range h.all("connection") {
		for _, n := range strings.Split(v, ",") {
			nominated = append(nominated, strings.ToLower(strings.TrimSpace(n)))
		}
	}
	out := make([][2]string, 0, len(h))
outer:
	for _, p := range h {
		if notReplayed(p[0]) {
			continue
		}
		for _, n := range nominated {
			if p[0] == n {
				continue outer
			}
		}
		out = append(out, p)
	}
	return out
}

// tagsOf lists the Surrogate-Key (space-separated) and Cache-Tag
// (comma-separated) values of a response, for tag purges.
func tagsOf(h headerList) []string {
	var tags []string
	for _, v := range h.all("surrogate-key") {
		tags = append(tags, strings.Fields(v)...)
	}
	for _, v := range h.all("cache-tag") {
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				tags = append(tags, t)
			}
		}
	}
	return tags
}

// responseOf gathers what the storage rules read of response headers.
func responseOf(status int, h headerList) response {
	r := response{
		status:       status,
		cc:           parseCacheControl(h.all("cache-control")...),
		date:         h.get("date"),
		lastModified: h.get("last-modified"),
		etag:         h.get("etag"),
		age:          h.get("age"),
		ageInvalid:   !validAge(h.all("age")),
		sc:           parseSurrogateControl(h.all("surrogate-control")),
		vary:         h.all("vary"),
		setCookie:    h.has("set-cookie") || h.has("set-cookie2"),
		contentRange: h.has("content-range"),
	}
	if h.has("expires") {
		r.hasExpires, r.expires = true, h.get("expires")
	}
	return r
}

// newEntry builds the entry stored for a response.
func newEntry(key, uri []byte, resp *response, h headerList, pol *policy, requestTime, responseTime time.Time) entry {
	lifetime := freshnessLifetime(resp, pol, responseTime)
	e := entry{
		kind:                 kindEntry,
		key:                  key,
		uri:                  uri,
		responseTime:         responseTime.Unix(),
		initialAge:           int64(initialAge(resp, requestTime, responseTime) / time.Second),
		lifetime:             int64(lifetime / time.Second),
		staleIfError:         resp.cc.staleIfError,
		staleWhileRevalidate: resp.cc.staleWhileRevalidate,
		status:               uint16(resp.status),
		headers:              storedHeaders(h),
		tags:                 tagsOf(h),
	}
	if resp.cc.noCache {
		e.flags |= flagNoCache
	}
	// s-maxage implies proxy-revalidate for a shared cache (RFC 9111
	// §5.2.2.10).
	if resp.cc.mustRevalidate || resp.cc.proxyRevalidate || resp.cc.sMaxAge >= 0 {
		e.flags |= flagMustRevalidate
	}
	return e
}

// staleAt is when an entry goes stale, in Unix seconds, for eviction order.
func (e *entry) staleAt() uint32 {
	t := e.responseTime + e.lifetime - e.initialAge
	return uint32(min(max(t, 0), 1<<32-1))
}

func (e *entry) header(name string) string { return headerList(e.headers).get(name) }

// state is what the reuse decision reads of an entry at time now.
func (e *entry) state(now time.Time) stored {
	return stored{
		lifetime:       seconds(e.lifetime),
		age:            currentAge(seconds(e.initialAge), time.Unix(e.responseTime, 0), now),
		noCache:        e.flags&flagNoCache != 0,
		mustRevalidate: e.flags&flagMustRevalidate != 0,
		hasValidators:  e.header("etag") != "" || e.header("last-modified") != "",
	}
}

// refresh applies a 304's headers to a stored entry (RFC 9111 §3.2): each
// header the 304 carries replaces the stored ones of that name, except the
// ones the entry never replays; freshness is then computed afresh from the
// combined headers.
func (e *entry) refresh(h304 headerList, pol *policy, requestTime, responseTime time.Time) {
	var updated [][2]string
	for _, p := range storedHeaders(h304) {
		switch p[0] {
		// The stored body depends on these: a 304 cannot change them.
		case "content-encoding", "content-md5", "content-range", "etag":
			continue
		}
		updated = append(updated, p)
	}
	merged := make([][2]string, 0, len(e.headers)+len(updated))
	for _, p := range e.headers {
		if !headerList(updated).has(p[0]) {
			merged = append(merged, p)
		}
	}
	merged = append(merged, updated...)
	e.headers = merged
	resp := responseOf(int(e.status), headerList(merged))
	// The Age of the 304 describes the 304.
	resp.age = h304.get("age")
	resp.ageInvalid = !validAge(h304.all("age"))
	resp.sc = parseSurrogateControl(h304.all("surrogate-control"))
	e.responseTime = responseTime.Unix()
	e.initialAge = int64(initialAge(&resp, requestTime, responseTime) / time.Second)
	e.lifetime = int64(freshnessLifetime(&resp, pol, responseTime) / time.Second)
	e.staleIfError = resp.cc.staleIfError
	e.staleWhileRevalidate = resp.cc.staleWhileRevalidate
	e.flags = 0
	if resp.cc.noCache {
		e.flags |= flagNoCache
	}
	if resp.cc.mustRevalidate || resp.cc.proxyRevalidate || resp.cc.sMaxAge >= 0 {
		e.flags |= flagMustRevalidate
	}
	e.tags = tagsOf(headerList(merged))
}

// notModified reports whether the client's conditional request is
// satisfied by the entry, so that a 304 answers it (RFC 9110 §13.2.2:
// If-None-Match first, If-Modified-Since only without it).
func (e *entry) notModified(req headerList) bool {
	if e.status != 200 {
		return false
	}
	if inm := req.all("if-none-match"); len(inm) > 0 {
		etag := e.header("etag")
		if etag == "" {
			return false
		}
		for _, v := range inm {
			for _, t := range strings.Split(v, ",") {
				t = strings.TrimSpace(t)
				if t == "*" || weakEqual(t, etag) {
					return true
				}
			}
		}
		return false
	}
	ims, ok := parseHTTPDate(req.get("if-modified-since"))
	if !ok {
		return false
	}
	// Without Last-Modified, the stored Date, else the time it was stored
	// (RFC 9111 §4.3.2).
	lm, ok := parseHTTPDate(e.header("last-modified"))
	if !ok {
		if lm, ok = parseHTTPDate(e.header("date")); !ok {
			lm = time.Unix(e.responseTime, 0)
		}
	}
	return !lm.After(ims)
}

func weakEqual(a, b string) bool {
	return strings.TrimPrefix(a, "W/") == strings.TrimPrefix(b, "W/")
}

// notModifiedHeaders are the stored headers a 304 carries (RFC 9110
// §15.4.5).
func (e *entry) notModifiedHeaders() [][2]string {
	var out [][2]string
	for _, p := range e.headers {
		switch p[0] {
		case "cache-control", "content-location", "date", "etag", "expires", "vary", "last-modified":
			out = append(out, p)
		}
	}
	return out
}

// cacheStatus formats one Cache-Status member (RFC 9211).
func cacheStatus(name string, params ...string) string {
	if len(params) == 0 {
		return name
	}
	return name + "; " + strings.Join(params, "; ")
}

func ageValue(age time.Duration) string {
	return strconv.FormatInt(int64(max(age, 0)/time.Second), 10)
}

// sameOriginPath returns the path of a Location or Content-Location value
// when it names the same authority (or is relative), for invalidation
// (RFC 9111 §4.4 only invalidates same-origin URIs, against poisoning
// another origin's entries).
func sameOriginPath(v, scheme, authority string) (string, bool) {
	v = strings.TrimSpace(v)
	switch {
	case v == "":
		return "", false
	case strings.HasPrefix(v, "//"):
		return "", false
	case v[0] == '/':
		return v, true
	}
	rest, ok := strings.CutPrefix(strings.ToLower(v[:min(len(v), len(scheme)+3)]), strings.ToLower(scheme)+"://")
	if !ok || rest != "" {
		return "", false
	}
	hostPath := v[len(scheme)+3:]
	host, path, found := strings.Cut(hostPath, "/")
	if !strings.EqualFold(host, authority) {
		return "", false
	}
	if !found {
		return "/", true
	}
	return "/" + path, true
}

// staleOnError reports whether a stale entry may stand in for an origin
// error (RFC 5861 stale-if-error, from the response or the request), now
// that the entry is age old: only for 500, 502, 503 and 504, never past
// must-revalidate, and only within the window.
func (e *entry) staleOnError(status int, req *directives, now time.Time) bool {
	switch status {
	case 500, 502, 503, 504:
	default:
		return false
	}
	st := e.state(now)
	if st.mustRevalidate {
		return false
	}
	window := max(e.staleIfError, req.staleIfError)
	if window < 0 {
		return false
	}
	return st.age-st.lifetime <= seconds(window)
}

// purgeTags splits x-purge-tag values (comma- or space-separated).
func purgeTags(values []string) []string {
	var tags []string
	for _, v := range values {
		tags = append(tags, strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })...)
	}
	return tags
}

// staleWhileRevalidating reports whether a stale entry may be served while
// it is revalidated in the background (RFC 5861 stale-while-revalidate):
// only when staleness is the sole reason it cannot be served (the client
// asked for nothing fresher), within the window, never past
// must-revalidate or no-cache.
func (e *entry) staleWhileRevalidating(st *stored, req *directives, pragma bool) bool {
	if e.staleWhileRevalidate < 0 || st.mustRevalidate || st.noCache || req.noCache || pragma ||
		req.maxAge >= 0 || req.minFresh >= 0 || st.age < st.lifetime {
		return false
	}
	return st.age-st.lifetime <= seconds(e.staleWhileRevalidate)
}
