package engine

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/concierge-wasm/concierge/hosttest/internal/abi"
)

// callout is one proxy_http_call in flight.
type callout struct {
	owner  *plugin // the root context that gets the response
	token  uint32
	timer  *timer
	cancel context.CancelFunc
}

// calloutResult is what on_http_call_response can read. A nil result
// means the call failed (reset): the callback gets (0, 0, 0).
type calloutResult struct {
	headers  []abi.Pair
	body     []byte
	trailers []abi.Pair
}

// httpCall implements proxy_http_call's checks in Envoy's order, then runs
// the cluster's handler off the worker and posts the response back.
func (vm *VM) httpCall(cluster string, headers []abi.Pair, body []byte, trailers []abi.Pair, timeoutMs uint32) (uint32, abi.Status) {
	cl, ok := vm.host.opts.Clusters[cluster]
	if !ok {
		return 0, abi.BadArgument
	}
	var method, path, authority string
	hasAuthority := false
	for i := range headers {
		headers[i].Key = strings.ToLower(headers[i].Key)
		switch headers[i].Key {
		case ":method":
			method = headers[i].Value
		case ":path":
			path = headers[i].Value
		case ":authority", "host":
			authority, hasAuthority = headers[i].Value, true
		}
	}
	// Envoy routes a callout by its cluster and sends :authority as the
	// Host header whatever it holds ("localhost:18000-canary", or nothing):
	// only a missing one is refused.
	if method == "" || path == "" || !hasAuthority {
		return 0, abi.BadArgument
	}
	h := vm.host
	h.mu.Lock()
	h.callSeq++
	token := h.callSeq
	h.mu.Unlock()

	ctx, cancel := context.WithCancel(h.ctx)
	c := &callout{owner: vm.plug, token: token, cancel: cancel}
	vm.calls[token] = c
	if timeoutMs > 0 {
		c.timer = h.clock.afterFunc(time.Duration(timeoutMs)*time.Millisecond, vm.w, func() {
			vm.deliverCallout(token, &calloutResult{
				headers: []abi.Pair{{Key: ":status", Value: "504"}, {Key: "content-length", Value: "24"}, {Key: "content-type", Value: "text/plain"}},
				body:    []byte("upstream request timeout"),
			})
		})
	}
	req := &exchange{method: method, path: path, authority: authority, headers: headers, body: body, trailers: trailers}
	go func() {
		res := serve(ctx, cl, req)
		vm.w.post(func() { vm.deliverCallout(token, res) })
	}()
	return token, abi.OK
}

func (vm *VM) deliverCallout(token uint32, res *calloutResult) {
	c, ok := vm.calls[token]
	if !ok {
		return // already answered (timeout raced the handler); deliver each token once
	}
	delete(vm.calls, token)
	c.cancel()
	vm.host.clock.cancel(c.timer)
	if vm.failed || vm.fn.callResponse == nil {
		return
	}
	vm.callResp = res
	p := c.owner
	vm.enterRoot(p)
	var nh, nb, nt int
	if res != nil {
		nh, nb, nt = len(res.headers), len(res.body), len(res.trailers)
	}
	vm.call(vm.fn.callResponse, exCallResponse, uint64(p.rootID), uint64(token), uint64(nh), uint64(nb), uint64(nt))
	vm.callResp = nil
	vm.flushTouched()
}

// exchange is one HTTP request leaving the host (callout or upstream).
type exchange struct {
	method, path, authority string
	headers                 []abi.Pair
	body                    []byte
	trailers                []abi.Pair
}

func (x *exchange) httpRequest(ctx context.Context) (*http.Request, error) {
	// An empty body is http.NoBody, as net/http's server gives a handler.
	var body io.Reader = http.NoBody
	if len(x.body) > 0 {
		body = bytes.NewReader(x.body)
	}
	r, err := http.NewRequestWithContext(ctx, x.method, "http://"+x.authority+x.path, body)
	if err != nil {
		// An authority that is no URL host (a callout's is free text):
		// the request is addressed by its cluster, and the authority
		// travels as the Host header alone.
		r, err = http.NewRequestWithContext(ctx, x.method, "http://cluster.invalid"+x.path, body)
		if err != nil {
			return nil, err
		}
	}
	r.RequestURI = x.path
	r.Host = x.authority
	// One backing array for every value instead of a slice per header.
	n := 0
	for _, p := range x.headers {
		if !strings.HasPrefix(p.Key, ":") && p.Key != "host" {
			n++
		}
	}
	values := make([]string, 0, n)
	for _, p := range x.headers {
		if strings.HasPrefix(p.Key, ":") || p.Key == "host" {
			continue
		}
		k := http.CanonicalHeaderKey(p.Key)
		if vs, ok := r.Header[k]; ok {
			r.Header[k] = append(vs, p.Value)
			continue
		}
		values = append(values, p.Value)
		r.Header[k] = values[len(values)-1 : len(values) : len(values)]
	}
	r.ContentLength = int64(len(x.body))
	if len(x.trailers) > 0 {
		r.Trailer = http.Header{}
		for _, p := range x.trailers {
			r.Trailer.Add(p.Key, p.Value)
		}
	}
	r.RemoteAddr = "127.0.0.1:0"
	return r, nil
}

// serve runs a cluster's handler (or proxies to its address) and records
// the response. A handler that panics, or a transport error, is a reset.
func serve(ctx context.Context, cl Cluster, x *exchange) (res *calloutResult) {
	req, err := x.httpRequest(ctx)
	if err != nil {
		return nil
	}
	if cl.Address != "" {
		req.URL.Host = cl.Address
		req.RequestURI = ""
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			return nil
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return nil
		}
		out := &calloutResult{headers: []abi.Pair{{Key: ":status", Value: strconv.Itoa(resp.StatusCode)}}, body: body}
		out.headers = appendHeader(out.headers, resp.Header)
		out.trailers = appendHeader(nil, resp.Trailer)
		return out
	}
	defer func() {
		if p := recover(); p != nil {
			res = nil
		}
	}()
	rec := newRecorder()
	cl.Handler.ServeHTTP(rec, req)
	return rec.result()
}

func appendHeader(dst []abi.Pair, h http.Header) []abi.Pair {
	for k, vs := range h {
		for _, v := range vs {
			dst = append(dst, abi.Pair{Key: strings.ToLower(k), Value: v})
		}
	}
	return dst
}

// recorder is an http.ResponseWriter that keeps each Write as one chunk,
// so a test upstream can produce a body in many pieces.
type recorder struct {
	header      http.Header
	status      int
	wroteHeader bool
	chunks      [][]byte
	snapshot    http.Header
}

func newRecorder() *recorder { return &recorder{header: http.Header{}} }

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.wroteHeader {
		return
	}
	r.wroteHeader, r.status = true, code
	r.snapshot = r.header.Clone()
}

func (r *recorder) Write(p []byte) (int, error) {
	if !r.wroteHeader {
		r.WriteHeader(http.StatusOK)
	}
	if len(p) > 0 {
		r.chunks = append(r.chunks, append([]byte(nil), p...))
	}
	return len(p), nil
}

func (r *recorder) Flush() {
	if !r.wroteHeader {
		r.WriteHeader(http.StatusOK)
	}
}

func (r *recorder) statusAndHeaders() []abi.Pair {
	if !r.wroteHeader {
		r.WriteHeader(http.StatusOK)
	}
	out := []abi.Pair{{Key: ":status", Value: strconv.Itoa(r.status)}}
	return appendSorted(out, r.snapshot, func(k string) bool {
		return k != "Trailer" && !strings.HasPrefix(k, http.TrailerPrefix)
	})
}

// trailers are the values set after the body under keys announced with the
// "Trailer" header or prefixed with http.TrailerPrefix, as net/http does.
func (r *recorder) trailers() []abi.Pair { return trailersOf(r.header, r.snapshot.Values("Trailer")) }

// trailersOf is what a handler sent as trailers: the keys its Trailer
// header announced, and those with http.TrailerPrefix.
func trailersOf(header http.Header, announcement []string) []abi.Pair {
	var out []abi.Pair
	var announced map[string]bool
	for _, v := range announcement {
		if announced == nil {
			announced = map[string]bool{}
		}
		for _, k := range strings.Split(v, ",") {
			announced[http.CanonicalHeaderKey(strings.TrimSpace(k))] = true
		}
	}
	for k, vs := range header {
		name := k
		if strings.HasPrefix(k, http.TrailerPrefix) {
			name = strings.TrimPrefix(k, http.TrailerPrefix)
		} else if !announced[k] {
			continue
		}
		for _, v := range vs {
			out = append(out, abi.Pair{Key: strings.ToLower(name), Value: v})
		}
	}
	return out
}

func (r *recorder) result() *calloutResult {
	hdrs := r.statusAndHeaders()
	var body []byte
	for _, c := range r.chunks {
		body = append(body, c...)
	}
	return &calloutResult{headers: hdrs, body: body, trailers: r.trailers()}
}

func appendSorted(dst []abi.Pair, h http.Header, keep func(string) bool) []abi.Pair {
	keys := make([]string, 0, len(h))
	for k := range h {
		if keep(k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range h[k] {
			dst = append(dst, abi.Pair{Key: strings.ToLower(k), Value: v})
		}
	}
	return dst
}
