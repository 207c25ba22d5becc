package engine

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/concierge-wasm/concierge/hosttest/internal/abi"
)

// Sink receives the response as the filter chain encodes it, for callers
// that stream it to a real client (the local gateway). Its methods run on
// the worker goroutine and must not block.
type Sink interface {
	Headers(headers []abi.Pair, endOfStream bool)
	Data(chunk []byte, endOfStream bool)
	Trailers(trailers []abi.Pair)
	Reset(reason string)
}

// bodyPipe carries request body frames from the worker to the upstream
// handler. Writes never block: the worker must not wait on a handler.
type bodyPipe struct {
	flow    *flowGauge // what the upstream has not read counts as waiting
	mu      sync.Mutex
	cond    *sync.Cond
	chunks  [][]byte
	closed  bool // the request ended (or was aborted)
	aborted bool
	// trailer is the handler's Request.Trailer. Like net/http's server,
	// the pipe fills it in the goroutine that reads the body to EOF, so
	// the handler never sees the map change under it.
	trailer   http.Header
	trailers  []abi.Pair
	published bool
	// abandoned: the handler returned; what it never read is dropped, as
	// net/http drops what a handler leaves of a request body.
	abandoned bool
}

func newBodyPipe(flow *flowGauge) *bodyPipe {
	p := &bodyPipe{flow: flow}
	p.cond = sync.NewCond(&p.mu)
	return p
}

func (p *bodyPipe) write(b []byte) {
	if len(b) == 0 {
		return
	}
	p.mu.Lock()
	if !p.closed && !p.abandoned {
		p.chunks = append(p.chunks, append([]byte(nil), b...))
		p.flow.add(len(b))
	}
	p.mu.Unlock()
	p.cond.Broadcast()
}

func (p *bodyPipe) close(trailers []abi.Pair, aborted bool) {
	p.mu.Lock()
	if !p.closed {
		p.trailers = trailers
		p.closed, p.aborted = true, aborted
	}
	p.mu.Unlock()
	p.cond.Broadcast()
}

func (p *bodyPipe) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.chunks) == 0 && !p.closed {
		p.cond.Wait()
	}
	if len(p.chunks) == 0 {
		if p.aborted {
			return 0, io.ErrUnexpectedEOF
		}
		if !p.published {
			p.published = true
			for _, t := range p.trailers {
				k := http.CanonicalHeaderKey(t.Key)
				p.trailer[k] = append(p.trailer[k], t.Value)
			}
		}
		return 0, io.EOF
	}
	n := copy(b, p.chunks[0])
	p.flow.add(-n)
	if n == len(p.chunks[0]) {
		p.chunks[0] = nil
		p.chunks = p.chunks[1:]
	} else {
		p.chunks[0] = p.chunks[0][n:]
	}
	return n, nil
}

func (p *bodyPipe) Close() error { return nil }

// abandon drops what the handler did not read, and everything still to
// come, so that it stops counting against flow control.
func (p *bodyPipe) abandon() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.abandoned = true
	for _, c := range p.chunks {
		p.flow.add(-len(c))
	}
	p.chunks = nil
}

// FixedResponse is an upstream that reads the whole request and answers
// every one with the same status and body, no headers: hosttest's default
// upstream. A request without a body is answered without net/http, as
// the handler would answer it; one with a body goes through ServeHTTP.
type FixedResponse struct {
	Status int
	Body   []byte
}

func (f *FixedResponse) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	w.WriteHeader(f.Status)
	w.Write(f.Body)
}

var errRouterTookOver = errors.New("the router answered this request itself")

// upstreamWriter is the http.ResponseWriter the upstream handler writes
// to. Each Write becomes one body frame on the encode path; one frame is
// held back so that the last one can carry end of stream, as a codec
// would. Flush pushes everything written so far.
type upstreamWriter struct {
	s      *Stream
	header http.Header
	// hs is the status and headers as WriteHeader saw them, and announced
	// the Trailer header then: what the handler changes afterwards does
	// not reach the client, as with net/http's server.
	hs          []abi.Pair
	announced   []string
	status      int
	wroteHeader bool
	headersSent bool
	pending     []byte
	hasPending  bool
	// replied: the handler handed the outcome to the router
	// (ReplyFromRouter, FailFromRouter); what it wrote is dropped.
	replied bool
	// upstreamHost is the host the router picked (SetUpstreamHost); it
	// reaches the stream with the response headers.
	upstreamHost string
	link         routerLink
}

func (w *upstreamWriter) Header() http.Header { return w.header }

func (w *upstreamWriter) WriteHeader(code int) {
	if w.wroteHeader || code < 200 {
		return
	}
	w.wroteHeader, w.status = true, code
	w.hs = appendSorted([]abi.Pair{{Key: ":status", Value: statusText(code)}}, w.header,
		// The Trailer announcement is an ordinary header Envoy passes on.
		func(k string) bool { return !strings.HasPrefix(k, http.TrailerPrefix) })
	if vs := w.header["Trailer"]; len(vs) > 0 {
		w.announced = append([]string(nil), vs...)
	}
}

func (w *upstreamWriter) Write(p []byte) (int, error) {
	if w.replied {
		return 0, errRouterTookOver
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if w.hasPending {
		w.postData(w.pending, false)
	}
	w.pending, w.hasPending = append([]byte(nil), p...), true
	return len(p), nil
}

func (w *upstreamWriter) Flush() {
	if w.replied {
		return
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headersSent {
		w.postHeaders(false)
	}
	if w.hasPending {
		w.postData(w.pending, false)
		w.pending, w.hasPending = nil, false
	}
}

func (w *upstreamWriter) statusAndHeaders() []abi.Pair { return w.hs }

// statusTexts holds the decimal form of every status code a handler may
// send, so that a response's :status costs no allocation.
var statusTexts = func() (t [600]string) {
	for i := range t {
		t[i] = strconv.Itoa(i)
	}
	return t
}()

func statusText(code int) string {
	if code >= 0 && code < len(statusTexts) {
		return statusTexts[code]
	}
	return strconv.Itoa(code)
}

func (w *upstreamWriter) postHeaders(eos bool) {
	w.headersSent = true
	hs, s, host := w.statusAndHeaders(), w.s, w.upstreamHost
	s.w.post(func() {
		s.upstreamHost = host
		s.upstreamHeaders(hs, eos)
	})
}

// postData hands a body frame to the worker. With a Sink (a real client)
// the upstream is read no faster than the client takes the response: the
// frame counts as waiting from now until the worker takes it, and the
// handler waits while what waits is over the buffer limit.
//
// Headers not yet sent travel in the same task as the frame, as a codec
// hands over headers and body read together: one hand-off instead of two.
func (w *upstreamWriter) postData(b []byte, eos bool) {
	var hs []abi.Pair
	withHeaders := !w.headersSent
	if withHeaders {
		w.headersSent = true
		hs = w.statusAndHeaders()
	}
	s, host := w.s, w.upstreamHost
	if s.req.Sink == nil {
		s.w.post(func() {
			if withHeaders {
				s.upstreamHost = host
				s.upstreamHeaders(hs, false)
			}
			s.upstreamData(b, eos)
		})
		return
	}
	s.flow[enc].add(len(b))
	s.w.post(func() {
		if withHeaders {
			s.upstreamHost = host
			s.upstreamHeaders(hs, false)
		}
		s.flow[enc].add(-len(b))
		s.upstreamData(b, eos)
	})
	s.flow[enc].await(s.bufferLimit())
}

// finish runs when the handler returns: the last frame carries end of
// stream unless trailers follow.
func (w *upstreamWriter) finish() {
	if w.replied {
		return
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	trailers := trailersOf(w.header, w.announced)
	switch {
	case !w.headersSent && !w.hasPending && len(trailers) == 0:
		w.postHeaders(true)
		return
	case w.hasPending:
		w.postData(w.pending, len(trailers) == 0)
	case len(trailers) == 0:
		w.postData(nil, true)
	}
	if len(trailers) > 0 {
		if !w.headersSent {
			w.postHeaders(false)
		}
		s := w.s
		s.w.post(func() { s.upstreamTrailers(trailers) })
	}
}

// callUpstream starts the upstream request as soon as the request headers
// have passed every filter, as Envoy's router does; the body follows
// through a pipe as frames leave the filter chain.
func (s *Stream) callUpstream() {
	if s.upstreamAsked {
		return
	}
	s.upstreamAsked = true
	up := s.req.Upstream
	if up == nil {
		up = s.host.opts.Upstream
	}
	if up == nil {
		s.flags |= FlagNoHealthyUpstream
		s.sendLocalReply(&localReply{status: 503, body: []byte("no healthy upstream"), details: "no_healthy_upstream", by: "router"})
		return
	}
	if fixed, ok := up.(*FixedResponse); ok && s.hdrEOS[dec] {
		// Nothing to read and nothing to wait for: the answer is one
		// worker task later, as a fast upstream's would be, without a
		// net/http request, a context or a handler goroutine.
		s.w.post(func() {
			s.upstreamHeaders([]abi.Pair{{Key: ":status", Value: statusText(fixed.Status)}}, len(fixed.Body) == 0)
			if len(fixed.Body) > 0 {
				// Nothing writes into a frame in place, and a full slice
				// makes any append copy: the bytes can be shared.
				s.upstreamData(fixed.Body[:len(fixed.Body):len(fixed.Body)], true)
			}
		})
		return
	}
	hs := s.upstreamReq.Headers
	x := &exchange{method: headerValue(hs, ":method"), path: headerValue(hs, ":path"), authority: headerValue(hs, ":authority"), headers: hs}
	ctx, cancel := context.WithCancel(s.host.ctx)
	s.cancelUp = cancel
	w := &upstreamWriter{s: s, header: http.Header{}}
	w.link = routerLink{s: s, w: w} // one allocation for both
	req, err := x.httpRequest(withRouterLink(ctx, &w.link))
	if err != nil {
		s.sendLocalReply(&localReply{status: 400, body: []byte("bad request"), details: "invalid_request", by: "router"})
		return
	}
	if s.hdrEOS[dec] {
		req.Body, req.ContentLength = http.NoBody, 0
	} else {
		s.pipe = newBodyPipe(&s.flow[dec])
		s.pipe.trailer = http.Header{}
		// Announced trailers are known before the body, as net/http's
		// server reports them; a proxying handler needs the keys up front
		// to send them on.
		for _, v := range strings.Split(headerValue(hs, "trailer"), ",") {
			if k := strings.TrimSpace(v); k != "" {
				s.pipe.trailer[http.CanonicalHeaderKey(k)] = nil
			}
		}
		req.Body, req.Trailer = s.pipe, s.pipe.trailer
		req.ContentLength = -1
		if cl, err := strconv.ParseInt(headerValue(hs, "content-length"), 10, 64); err == nil {
			req.ContentLength = cl
		}
	}
	pipe := s.pipe // the worker owns s.pipe
	s.host.handlers.run(func() {
		reset := false
		func() {
			defer func() {
				if p := recover(); p != nil {
					reset = true
				}
			}()
			up.ServeHTTP(w, req)
		}()
		if pipe != nil {
			pipe.abandon()
		}
		switch {
		case w.replied:
		case reset && ctx.Err() != nil:
			// The stream cancelled the exchange itself (a route timeout,
			// a local reply, the client gone): not an upstream failure.
		case reset:
			s.upstreamFailed(UpstreamFailure{Reason: "connection termination", Flags: FlagUpstreamConnectionTermination}, w)
		default:
			w.finish()
		}
	})
}

// requestEnded is the router seeing end of stream: the body pipe closes
// and the route timeout starts (Envoy measures it from the end of the
// request).
func (s *Stream) requestEnded() {
	if s.pipe != nil {
		s.pipe.close(s.upstreamReq.Trailers, false)
	}
	if s.req.Timeout > 0 && s.timeout == nil {
		s.timeout = s.host.clock.afterFunc(s.req.Timeout, s.w, func() {
			if !s.finished && !s.encodeStarted {
				s.flags |= FlagUpstreamRequestTimeout
				s.sendLocalReply(&localReply{status: 504, body: []byte("upstream request timeout"), details: "response_timeout", by: "router"})
			}
		})
	}
}

func (s *Stream) upstreamHeaders(hs []abi.Pair, eos bool) {
	if s.finished || s.encodeStarted {
		return
	}
	s.encodeStarted, s.fromUpstream = true, true
	s.result.Details = "via_upstream"
	s.headers[enc] = newHeaderMapIn(&s.headerSpace[enc], hs)
	s.hdrEOS[enc] = eos
	s.runHeaders(enc, 0)
}

func (s *Stream) upstreamData(b []byte, eos bool) {
	if s.finished || !s.fromUpstream || s.aborted[enc] {
		return
	}
	s.data(enc, 0, b, eos)
}

func (s *Stream) upstreamTrailers(t []abi.Pair) {
	if s.finished || !s.fromUpstream || s.aborted[enc] {
		return
	}
	s.trailers[enc] = newHeaderMap(t)
	s.runTrailers(enc, 0)
}

// Client side: the encode terminal, the Result and the optional Sink.

func (s *Stream) emitHeaders(hs []abi.Pair, eos bool) {
	s.sentHeaders = true
	s.result.Headers = hs
	s.result.Status, _ = strconv.Atoi(headerValue(hs, ":status"))
	if s.req.Sink != nil {
		s.req.Sink.Headers(hs, eos)
	}
}

func (s *Stream) emitData(b []byte, eos bool) {
	if len(b) > 0 {
		s.respBytes += len(b)
		s.result.Chunks++
		if s.req.Sink == nil {
			s.result.Body = append(s.result.Body, b...)
		}
	}
	if s.req.Sink != nil && (len(b) > 0 || eos) {
		s.flow[enc].add(len(b))
		s.req.Sink.Data(b, eos)
	}
}

func (s *Stream) emitTrailers(t []abi.Pair) {
	s.result.Trailers = t
	if s.req.Sink != nil {
		s.req.Sink.Trailers(t)
	}
}
