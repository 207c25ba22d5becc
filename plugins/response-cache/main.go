// Command response-cache is a proxy-wasm HTTP filter: an RFC 9111 shared
// cache kept in proxy-wasm shared data, so every worker serves the same
// entries. Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -o response-cache.wasm ./plugins/response-cache
//
// This file is the wiring only: contexts, callbacks, host calls, metrics
// and logs. The rules live in plain files: cachecontrol.go, freshness.go,
// key.go, entry.go, store.go, serve.go and config.go. README.md is the
// reference.
package main

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/concierge-wasm/concierge/shared/identity"
	"github.com/concierge-wasm/concierge/shared/reply"
	"github.com/concierge-wasm/concierge/shared/rules"
	"github.com/concierge-wasm/concierge/shared/shareddata"
)

func main() {}

// init only registers the plugin: hosts refuse other host calls while Go's
// init functions run.
func init() {
	proxywasm.SetPluginContext(func(id uint32) types.PluginContext { return &plugin{id: id} })
}

type plugin struct {
	types.DefaultPluginContext
	id      uint32
	cfg     *config
	store   *store
	replier reply.Replier
	m       metrics
	// Background revalidations (stale-while-revalidate): queued by
	// streams, dispatched from the root context on the next tick (the SDK
	// drops a callout's answer once the stream that made it is gone), at
	// most maxRefreshes in flight per VM, one per key.
	queued   []*refresh
	inFlight map[string]bool
	tickMs   uint32
	// Coalescing (coalesce_timeout): the in-flight leases shared by all
	// workers, and this VM's requests paused until an answer is stored.
	leases  *leases
	waiting []*stream
}

func (p *plugin) OnPluginStart(int) types.OnPluginStartStatus {
	data, _ := proxywasm.GetPluginConfiguration()
	cfg, err := parseConfig(data)
	if err != nil {
		proxywasm.LogError(err.Error())
		return types.OnPluginStartStatusFailed
	}
	p.cfg = &cfg
	p.store = newStore(hostShared{}, shareddata.Namespace(), cfg.maxEntries, cfg.maxTotalBytes, int64(cfg.maxEntryBytes))
	p.replier = reply.Replier{Format: cfg.errorFormat}
	p.m = defineMetrics()
	p.m.freed(p.store.startFreed)
	p.inFlight = map[string]bool{}
	p.leases = newLeases(hostShared{}, shareddata.Namespace())
	return types.OnPluginStartStatusOK
}

func (p *plugin) NewHttpContext(id uint32) types.HttpContext { return &stream{p: p, id: id} }

// hostShared is the host's shared data.
type hostShared struct{}

func (hostShared) get(key string) ([]byte, uint32, bool) {
	v, cas, err := proxywasm.GetSharedData(key)
	if err != nil {
		return nil, 0, false
	}
	return v, cas, true
}

func (hostShared) set(key string, value []byte, cas uint32) error {
	err := proxywasm.SetSharedData(key, value, cas)
	if errors.Is(err, types.ErrorStatusCasMismatch) {
		return errCASMismatch
	}
	return err
}

// phase is what a stream is doing with the cache.
type phase uint8

const (
	phaseOff        phase = iota // rules switched the filter off: touch nothing
	phaseBypass                  // not cacheable: forwarded, headers say why
	phaseMiss                    // forwarded; the response may be stored
	phaseRevalidate              // forwarded with validators of a stale entry
	phaseLocal                   // answered by this filter (hit, 304, 504, purge)
	phaseInvalidate              // unsafe method: invalidate on success
)

type stream struct {
	types.DefaultHttpContext
	p      *plugin
	id     uint32
	phase  phase
	shadow bool
	pol    policy
	req    headerList
	head   bool // a HEAD request, answered from GET entries
	// bypass says why the request skipped the cache (Cache-Status detail).
	bypass string
	// fwd is the Cache-Status fwd parameter of a forwarded request.
	fwd         string
	primary     []byte
	key         []byte
	uri         []byte
	scheme      string
	authority   string
	requestTime time.Time
	identity    bool
	// stale is the stored entry the request found stale: revalidated
	// (phaseRevalidate) or kept to stand in for an origin error.
	stale  *entry
	reqCC  directives
	pragma bool
	// Coalescing: the lease this request holds (owner != 0), or the one
	// it waits on until deadline.
	leaseHash, leaseOwner uint64
	deadline              time.Time
	// storing: the response is being copied for the cache.
	storing  bool
	pending  entry
	varyKey  []string
	body     []byte
	bodySize int
}

func (s *stream) OnHttpRequestHeaders(_ int, _ bool) types.Action {
	cfg := s.p.cfg
	req, err := proxywasm.GetHttpRequestHeaders()
	if err != nil {
		return types.ActionContinue
	}
	s.req = headerList(req)
	s.requestTime = time.Now()
	method := s.req.get(":method")
	s.scheme, s.authority = s.req.get(":scheme"), s.req.get(":authority")
	if s.scheme == "" {
		s.scheme = "http"
	}
	path := s.req.get(":path")
	if cfg.purge != nil && method == cfg.purge.method {
		return s.purge(path)
	}
	rr := rules.Request{Host: s.authority, Path: path, Method: method, Header: s.reqHeaderOK}
	if cfg.rules.UsesRoute() {
		if b, err := proxywasm.GetProperty([]string{"xds", "route_name"}); err == nil {
			rr.Route = string(b)
		}
	}
	d := cfg.rules.Decide(&rr)
	if !d.Enabled {
		s.phase = phaseOff
		return types.ActionContinue
	}
	s.shadow = d.Shadow
	s.pol = cfg.policy
	if d.Override != nil {
		s.pol = *d.Override
	}
	s.uri = uriOf(s.scheme, s.authority, path)
	switch method {
	case "GET", "HEAD":
	case "OPTIONS", "TRACE":
		return s.skip("method")
	default:
		s.phase = phaseInvalidate
		return types.ActionContinue
	}
	s.head = method == "HEAD"
	if !contains(cfg.methods, method) {
		return s.skip("method")
	}
	cc := parseCacheControl(s.req.all("cache-control")...)
	s.reqCC = cc
	if cc.noStore {
		return s.skip("no-store")
	}
	if s.req.has("range") {
		return s.skip("range")
	}
	var idBytes []byte
	if cfg.key.identity {
		if id, ok, err := identity.Get(); err != nil {
			proxywasm.LogWarnf("unreadable identity, caching as anonymous: %v", err)
		} else if ok {
			idBytes = identity.Encode(&id)
			s.identity = true
		}
	}
	credentialed := s.req.has("authorization") || s.req.has("cookie")
	s.pol = s.pol.forRequest(credentialed, s.identity)
	s.primary = primaryKey(nil, &cfg.key, &keyRequest{scheme: s.scheme, authority: s.authority, path: path, header: s.reqHeader, identity: idBytes})
	s.key = s.primary
	e, found := s.lookup()
	pragma := !s.req.has("cache-control") && containsToken(s.req.all("pragma"), "no-cache")
	s.pragma = pragma
	s.phase, s.fwd = phaseMiss, "miss"
	if !found {
		if e.kind == kindVaried {
			s.fwd = "vary-miss"
		} else {
			s.fwd = "uri-miss"
		}
		if cc.onlyIfCached {
			return s.onlyIfCached()
		}
		return s.missOrWait()
	}
	now := time.Now()
	st := e.state(now)
	if !s.shadow && e.staleWhileRevalidating(&st, &cc, pragma) && s.refreshInBackground(&e, path) {
		s.p.m.staleWhileRevalidate.Increment(1)
		return s.serve(&e, st.age, true, "detail=stale-while-revalidate")
	}
	switch reuse(&cc, pragma, &st) {
	case useFresh:
		if s.shadow {
			s.p.m.shadowHits.Increment(1)
			s.p.m.misses.Increment(1)
			return types.ActionContinue
		}
		return s.serve(&e, st.age, st.age >= st.lifetime)
	case useRevalidate:
		if cc.onlyIfCached {
			return s.onlyIfCached()
		}
		s.fwd = "stale"
		if cc.noCache || cc.maxAge >= 0 || pragma {
			s.fwd = "request"
		}
		s.stale = &e
		// A client's own conditionals are its business: forward them as
		// they are and treat the answer as a miss.
		if s.req.has("if-none-match") || s.req.has("if-modified-since") || s.shadow {
			s.p.m.misses.Increment(1)
			return types.ActionContinue
		}
		s.phase = phaseRevalidate
		if et := e.header("etag"); et != "" {
			proxywasm.ReplaceHttpRequestHeader("if-none-match", et) //nolint:errcheck // the request is ours while its headers are
		}
		if lm := e.header("last-modified"); lm != "" {
			proxywasm.ReplaceHttpRequestHeader("if-modified-since", lm) //nolint:errcheck
		}
		s.p.m.revalidations.Increment(1)
		return types.ActionContinue
	default:
		if cc.onlyIfCached {
			return s.onlyIfCached()
		}
		if cc.noCache || cc.maxAge >= 0 || pragma {
			s.fwd = "request"
		} else {
			s.fwd = "stale"
		}
		s.stale = &e
		return s.missOrWait()
	}
}

// lookup finds the entry for the request, following a Vary marker to the
// variant the request's headers select. A marker without a matching
// variant is returned with found false, so the miss can say vary-miss.
func (s *stream) lookup() (entry, bool) {
	e, _, ok := s.p.store.lookup(s.primary)
	if !ok {
		return entry{}, false
	}
	if e.kind != kindVaried {
		return e, e.kind == kindEntry
	}
	s.varyKey = e.vary
	s.key = variantKey(nil, s.primary, e.vary, s.reqHeader)
	v, _, ok := s.p.store.lookup(s.key)
	if !ok || v.kind != kindEntry {
		return entry{kind: kindVaried}, false
	}
	return v, true
}

// reqHeader is what keys read of a request header: all its field lines.
func (s *stream) reqHeader(name string) string { return s.req.joined(name) }

func (s *stream) reqHeaderOK(name string) (string, bool) {
	for _, p := range s.req {
		if p[0] == name {
			return p[1], true
		}
	}
	return "", false
}

func (s *stream) skip(reason string) types.Action {
	s.phase, s.bypass = phaseBypass, reason
	s.p.m.bypass(reason)
	return types.ActionContinue
}

func (s *stream) onlyIfCached() types.Action {
	s.phase = phaseLocal
	s.p.m.misses.Increment(1)
	if _, err := s.p.replier.Send(504, "not in cache (only-if-cached)",
		[2]string{"cache-status", cacheStatus(s.p.cfg.statusName, "fwd=miss", "detail=only-if-cached")},
		[2]string{"x-cache", "MISS"}); err != nil {
		proxywasm.LogErrorf("sending 504: %v", err)
	}
	return types.ActionPause
}

// serve answers from the cache: 304 for a satisfied conditional, else the
// stored response (headers only for HEAD).
func (s *stream) serve(e *entry, age time.Duration, stale bool, params ...string) types.Action {
	s.phase = phaseLocal
	s.p.m.hits.Increment(1)
	xcache := "HIT"
	if stale {
		// Stale but allowed by the client's max-stale.
		xcache = "STALE"
	}
	extra := [][2]string{
		{"age", ageValue(age)},
		{"cache-status", cacheStatus(s.p.cfg.statusName, append([]string{"hit"}, params...)...)},
		{"x-cache", xcache},
	}
	if e.notModified(s.req) {
		h := append(e.notModifiedHeaders(), extra...)
		if err := proxywasm.SendHttpResponse(304, h, nil, -1); err != nil {
			proxywasm.LogErrorf("sending 304: %v", err)
		}
		return types.ActionPause
	}
	s.reply(e, extra)
	return types.ActionPause
}

// reply sends an entry as a local response.
func (s *stream) reply(e *entry, extra [][2]string) {
	h := make([][2]string, 0, len(e.headers)+len(extra)+1)
	h = append(h, e.headers...)
	h = append(h, extra...)
	body := e.body
	if s.head {
		// Envoy sends no body for HEAD; the length is the GET's.
		h = append(h, [2]string{"content-length", strconv.Itoa(len(body))})
		body = nil
	}
	if err := proxywasm.SendHttpResponse(uint32(e.status), h, body, -1); err != nil {
		proxywasm.LogErrorf("sending a cached response: %v", err)
	}
}

func (s *stream) OnHttpResponseHeaders(_ int, endOfStream bool) types.Action {
	switch s.phase {
	case phaseOff, phaseLocal:
		return types.ActionContinue
	case phaseInvalidate:
		s.invalidate()
		return types.ActionContinue
	case phaseBypass:
		s.mark("BYPASS", "fwd=bypass", "detail="+s.bypass)
		return types.ActionContinue
	}
	hs, err := proxywasm.GetHttpResponseHeaders()
	if err != nil {
		return types.ActionContinue
	}
	h := headerList(hs)
	status, _ := strconv.Atoi(h.get(":status"))
	now := time.Now()
	if s.phase == phaseRevalidate && status == 304 {
		return s.refreshed(h, now)
	}
	if s.stale != nil && !s.shadow && s.stale.staleOnError(status, &s.reqCC, now) {
		return s.serveStaleOnError(status, now)
	}
	xcache := "MISS"
	resp := responseOf(status, h)
	if h.has("surrogate-control") {
		// Surrogate-Control is for surrogates; this is the last one.
		proxywasm.RemoveHttpResponseHeader("surrogate-control") //nolint:errcheck // headers are writable here
	}
	method := "GET"
	if s.head {
		method = "HEAD"
	}
	info := requestInfo{method: method, cc: parseCacheControl(s.req.all("cache-control")...),
		authorization: s.req.has("authorization"), identityKeyed: s.identity,
		unkeyed: unkeyedHeader(s.req.has, s.p.cfg.key.headers)}
	lifetime := freshnessLifetime(&resp, &s.pol, now)
	why := storability(&info, &resp, &s.pol, lifetime)
	if why == storable && status < 500 {
		if cl, err := strconv.Atoi(h.get("content-length")); err == nil && cl > s.p.cfg.maxEntryBytes {
			why = "too_large"
		}
	}
	fwdStatus := "fwd-status=" + strconv.Itoa(status)
	if why != storable {
		s.releaseLease()
		s.p.m.notStored(string(why))
		s.mark(xcache, "fwd="+s.fwd, fwdStatus, "detail="+string(why))
		return types.ActionContinue
	}
	names, _ := varyNames(resp.vary)
	key := s.primary
	if len(names) > 0 {
		key = variantKey(nil, s.primary, names, s.reqHeader)
	}
	s.varyKey = names
	s.pending = newEntry(key, s.uri, &resp, h, &s.pol, s.requestTime, now)
	s.storing = true
	if endOfStream {
		s.commit()
		s.mark(xcache, "fwd="+s.fwd, fwdStatus, "stored")
		return types.ActionContinue
	}
	s.mark(xcache, "fwd="+s.fwd, fwdStatus)
	return types.ActionContinue
}

// mark adds this cache's Cache-Status member (after any from caches
// nearer the origin, RFC 9211 §2) and X-Cache.
func (s *stream) mark(xcache string, params ...string) {
	if s.shadow {
		return
	}
	proxywasm.AddHttpResponseHeader("cache-status", cacheStatus(s.p.cfg.statusName, params...)) //nolint:errcheck // headers are writable here
	proxywasm.ReplaceHttpResponseHeader("x-cache", xcache)                                      //nolint:errcheck
}

// refreshed handles the origin's 304 to a revalidation: the stored entry
// takes the new headers and freshness, and the client gets the stored
// response (or its own 304 when its conditionals match).
func (s *stream) refreshed(h headerList, now time.Time) types.Action {
	e := s.stale
	e.refresh(h, &s.pol, s.requestTime, now)
	s.put(e)
	s.phase = phaseLocal
	extra := [][2]string{
		{"age", ageValue(seconds(e.initialAge))},
		{"cache-status", cacheStatus(s.p.cfg.statusName, "fwd=stale", "fwd-status=304")},
		{"x-cache", "REVALIDATED"},
	}
	s.reply(e, extra)
	return types.ActionPause
}

// serveStaleOnError answers with the stale entry instead of the origin's
// error (stale-if-error). The error's headers are being encoded, so Envoy
// sends this reply directly to the client.
func (s *stream) serveStaleOnError(status int, now time.Time) types.Action {
	e := s.stale
	s.phase = phaseLocal
	s.p.m.staleOnError.Increment(1)
	st := e.state(now)
	s.reply(e, [][2]string{
		{"age", ageValue(st.age)},
		{"cache-status", cacheStatus(s.p.cfg.statusName, "hit", "fwd=stale", "fwd-status="+strconv.Itoa(status))},
		{"x-cache", "STALE"},
	})
	return types.ActionPause
}

func (s *stream) OnHttpResponseBody(bodySize int, endOfStream bool) types.Action {
	if !s.storing {
		return types.ActionContinue
	}
	// The body streams on: each frame is copied, never held. Without
	// buffering the buffer holds only the current frame.
	if bodySize > 0 {
		if len(s.body)+bodySize > s.p.cfg.maxEntryBytes {
			s.storing, s.body = false, nil
			s.releaseLease()
			s.p.m.notStored("too_large")
			return types.ActionContinue
		}
		chunk, err := proxywasm.GetHttpResponseBody(0, bodySize)
		if err != nil {
			s.storing, s.body = false, nil
			return types.ActionContinue
		}
		if s.body == nil {
			s.body = make([]byte, 0, bodySize)
		}
		s.body = append(s.body, chunk...)
	}
	if endOfStream {
		s.pending.body = s.body
		s.commit()
	}
	return types.ActionContinue
}

func (s *stream) OnHttpResponseTrailers(int) types.Action {
	// Entries do not keep trailers; a response that has them is not stored.
	if s.storing {
		s.storing, s.body = false, nil
		s.releaseLease()
		s.p.m.notStored("trailers")
	}
	return types.ActionContinue
}

// commit stores the pending entry (and a Vary marker at the primary key).
func (s *stream) commit() {
	s.storing = false
	if len(s.varyKey) > 0 {
		marker := entry{kind: kindVaried, key: s.primary, uri: s.uri, vary: s.varyKey, responseTime: s.pending.responseTime, staleIfError: -1, staleWhileRevalidate: -1,
			lifetime: s.pending.lifetime, initialAge: s.pending.initialAge}
		s.put(&marker)
	}
	s.put(&s.pending)
	s.body = nil
	s.releaseLease()
}

func (s *stream) put(e *entry) { s.p.put(e) }

func (p *plugin) put(e *entry) {
	res, err := p.store.put(e.key, hash64(e.uri), e, e.staleAt())
	if err != nil {
		if errors.Is(err, errConflict) {
			p.m.conflicts.Increment(1)
		}
		proxywasm.LogWarnf("not stored: %v", err)
		return
	}
	if e.kind == kindEntry {
		p.m.stores.Increment(1)
	}
	if res.evicted > 0 {
		p.m.evictions.Increment(uint64(res.evicted))
	}
	if res.delta != 0 {
		p.m.bytes.Add(res.delta)
	}
}

// invalidate drops the target URI and same-origin Location and
// Content-Location after a successful unsafe request (RFC 9111 §4.4).
func (s *stream) invalidate() {
	st, _ := proxywasm.GetHttpResponseHeader(":status")
	code, _ := strconv.Atoi(st)
	if code < 200 || code >= 400 {
		return
	}
	uris := [][]byte{s.uri}
	for _, name := range [...]string{"location", "content-location"} {
		v, err := proxywasm.GetHttpResponseHeader(name)
		if err != nil {
			continue
		}
		if p, ok := sameOriginPath(v, s.scheme, s.authority); ok {
			uris = append(uris, uriOf(s.scheme, s.authority, p))
		}
	}
	for _, u := range uris {
		n, freed, err := s.p.store.invalidate(hash64(u))
		s.p.m.freed(freed)
		if err != nil {
			proxywasm.LogWarnf("invalidation: %v", err)
			s.p.m.conflicts.Increment(1)
		}
		if n > 0 {
			s.p.m.invalidations.Increment(uint64(n))
		}
	}
}

// purge answers a purge request: the token's SHA-256 must match; the
// request's URI is dropped in every variant.
func (s *stream) purge(path string) types.Action {
	s.phase = phaseLocal
	tok := s.req.get(purgeTokenHeader)
	if tok == "" {
		s.p.m.purgeDenied.Increment(1)
		s.p.replier.Send(401, "missing purge token") //nolint:errcheck // logged by the host if it fails
		return types.ActionPause
	}
	sum := sha256.Sum256([]byte(tok))
	if subtle.ConstantTimeCompare(sum[:], s.p.cfg.purge.tokenSHA256[:]) != 1 {
		s.p.m.purgeDenied.Increment(1)
		s.p.replier.Send(403, "invalid purge token") //nolint:errcheck
		return types.ActionPause
	}
	var n int
	var freed int64
	var err error
	uri := uriOf(s.scheme, s.authority, path)
	origin, p := splitURI(uri)
	switch {
	case s.req.has(purgeTagHeader):
		for _, tag := range purgeTags(s.req.all(purgeTagHeader)) {
			k, f, e := s.p.store.dropEntries(tagBloom(tag), func(en *entry) bool { return contains(en.tags, tag) })
			n, freed = n+k, freed+f
			if e != nil {
				err = e
			}
		}
	case s.req.get(purgeMatchHeader) == "prefix":
		prefix := strings.TrimSuffix(p, "/")
		if prefix == "" {
			prefix = "/"
		}
		n, freed, err = s.p.store.dropEntries(prefixBloom(origin, prefix), func(en *entry) bool {
			o, ep := splitURI(en.uri)
			return string(o) == string(origin) && underPrefix(ep, prefix)
		})
	default:
		n, freed, err = s.p.store.invalidate(hash64(uri))
	}
	s.p.m.freed(freed)
	if err != nil {
		s.p.replier.Send(503, "purge conflicted with concurrent writes; retry") //nolint:errcheck
		return types.ActionPause
	}
	s.p.m.purges.Increment(1)
	proxywasm.LogInfof("purged %d entries for %s%s", n, s.authority, path)
	status := uint32(200)
	if n == 0 {
		status = 404
	}
	body := `{"purged":` + strconv.Itoa(n) + "}"
	proxywasm.SendHttpResponse(status, [][2]string{{"content-type", "application/json"}}, []byte(body), -1) //nolint:errcheck
	return types.ActionPause
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// containsToken reports whether a comma-separated list holds tok.
func containsToken(values []string, tok string) bool {
	for _, v := range values {
		if parseCacheControl(v).noCache && tok == "no-cache" {
			return true
		}
	}
	return false
}

var (
	_ types.PluginContext = (*plugin)(nil)
	_ types.HttpContext   = (*stream)(nil)
)
