package main

// Background revalidation for stale-while-revalidate: the client gets the
// stale entry at once, and the root context asks the route's cluster for a
// fresh copy, which replaces (200) or refreshes (304) the entry.

import (
	"strconv"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
)

const (
	// maxRefreshes bounds the background revalidations in flight per VM
	// (each holds a copy of its stale entry until the answer).
	maxRefreshes = 16
	// refreshTimeout bounds one background revalidation.
	refreshTimeoutMs = 30000
)

// refresh is one queued background revalidation.
type refresh struct {
	cluster string
	headers [][2]string
	stale   entry
	primary []byte
	req     headerList
	info    requestInfo
	pol     policy
}

// refreshInBackground queues a revalidation of e for this request; false
// when it cannot (no cluster known, too many in flight), and the request
// then goes the ordinary way. A refresh already in flight for the key
// counts as queued.
func (s *stream) refreshInBackground(e *entry, path string) bool {
	key := string(e.key)
	if s.p.inFlight[key] {
		return true
	}
	if len(s.p.inFlight) >= maxRefreshes {
		return false
	}
	cluster, err := proxywasm.GetProperty([]string{"xds", "cluster_name"})
	if err != nil || len(cluster) == 0 {
		return false
	}
	headers := [][2]string{{":method", "GET"}, {":path", path}, {":authority", s.authority}, {":scheme", s.scheme}}
	for _, h := range s.req {
		switch h[0] {
		case "if-none-match", "if-modified-since", "if-match", "if-unmodified-since", "if-range", "range",
			"content-length", "transfer-encoding", "connection", "keep-alive", "te", "upgrade", "proxy-connection":
			continue
		}
		if len(h[0]) > 0 && h[0][0] != ':' {
			headers = append(headers, h)
		}
	}
	if et := e.header("etag"); et != "" {
		headers = append(headers, [2]string{"if-none-match", et})
	}
	if lm := e.header("last-modified"); lm != "" {
		headers = append(headers, [2]string{"if-modified-since", lm})
	}
	cp := *e
	cp.body = append([]byte(nil), e.body...)
	s.p.inFlight[key] = true
	s.p.queued = append(s.p.queued, &refresh{
		cluster: string(cluster), headers: headers, stale: cp, primary: append([]byte(nil), s.primary...), req: s.req,
		info: requestInfo{method: "GET", cc: s.reqCC, authorization: s.req.has("authorization"), identityKeyed: s.identity,
			unkeyed: unkeyedHeader(s.req.has, s.p.cfg.key.headers)},
		pol: s.pol,
	})
	s.p.schedule()
	return true
}

func (p *plugin) OnTick() {
	for _, r := range p.queued {
		p.dispatch(r)
	}
	clear(p.queued)
	p.queued = p.queued[:0]
	p.wake(time.Now())
	p.schedule()
}

func (p *plugin) dispatch(r *refresh) {
	key := string(r.stale.key)
	sent := time.Now()
	p.m.revalidations.Increment(1)
	_, err := proxywasm.DispatchHttpCall(r.cluster, r.headers, nil, nil, refreshTimeoutMs, func(numHeaders, bodySize, _ int) {
		delete(p.inFlight, key)
		if numHeaders == 0 {
			return // reset or timeout: the stale entry stays as it is
		}
		hs, err := proxywasm.GetHttpCallResponseHeaders()
		if err != nil {
			return
		}
		h := headerList(hs)
		status, _ := strconv.Atoi(h.get(":status"))
		p.refreshed(r, status, h, bodySize, sent, time.Now())
	})
	if err != nil {
		delete(p.inFlight, key)
		proxywasm.LogWarnf("background revalidation through cluster %q: %v", r.cluster, err)
	}
}

// refreshed stores what a background revalidation brought back.
func (p *plugin) refreshed(r *refresh, status int, h headerList, bodySize int, sent, now time.Time) {
	if status == 304 {
		e := r.stale
		e.refresh(h, &r.pol, sent, now)
		p.put(&e)
		return
	}
	resp := responseOf(status, h)
	lifetime := freshnessLifetime(&resp, &r.pol, now)
	if why := storability(&r.info, &resp, &r.pol, lifetime); why != storable {
		p.m.notStored(string(why))
		return
	}
	if bodySize > p.cfg.maxEntryBytes {
		p.m.notStored("too_large")
		return
	}
	var body []byte
	if bodySize > 0 {
		b, err := proxywasm.GetHttpCallResponseBody(0, bodySize)
		if err != nil {
			return
		}
		body = b
	}
	names, _ := varyNames(resp.vary)
	key := r.primary
	if len(names) > 0 {
		key = variantKey(nil, r.primary, names, r.req.joined)
		marker := entry{kind: kindVaried, key: r.primary, uri: r.stale.uri, vary: names, responseTime: now.Unix(),
			lifetime: int64(lifetime / time.Second), staleIfError: -1, staleWhileRevalidate: -1}
		p.put(&marker)
	}
	e := newEntry(key, r.stale.uri, &resp, h, &r.pol, sent, now)
	e.body = body
	p.put(&e)
}
