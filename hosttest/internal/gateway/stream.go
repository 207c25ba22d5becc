package gateway

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/concierge-wasm/concierge/hosttest/internal/abi"
	"github.com/concierge-wasm/concierge/hosttest/internal/engine"
)

// ServeHTTP is the HTTP connection manager for one downstream request:
// header preparation, the initial route (which filters are disabled, the
// attributes Envoy sets), then the filter chain in the engine, with the
// request body streamed in as it arrives and the response streamed out as
// the filters encode it.
func (l *listener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.rqTotal.Add(1)
	l.active.Add(1)
	defer l.active.Add(-1)
	if !l.screenUnderscores(w, r) {
		return
	}
	// Envoy drops a new request under overload as soon as its headers are
	// decoded, before any filter exists.
	if l.g.overload.shed() {
		l.overloadReply(w, r)
		return
	}
	localAddr, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	hs, rej := l.hcm.requestHeaders(r, remoteAddr(r.RemoteAddr), localAddr)
	if rej != nil {
		l.count(rej.status)
		l.g.log.Debugf("http", "%s %s: %d %s", r.Method, r.RequestURI, rej.status, rej.details)
		w.Header().Set("content-type", "text/plain")
		w.WriteHeader(rej.status)
		io.WriteString(w, http.StatusText(rej.status))
		return
	}
	view := pairsView(hs)
	rt := l.hcm.Routes.Match(view)
	local := ""
	if localAddr != nil {
		local = localAddr.String()
	}
	req := engine.Request{Headers: hs, Source: r.RemoteAddr, Destination: local, Upstream: http.HandlerFunc(l.route),
		Disabled: l.hcm.disabledByDefault, BufferLimit: l.cfg.BufferLimit, Chain: l.chain,
		Attributes: l.props.attrs, Messages: l.props.msgs}
	if r.ProtoMajor == 2 {
		req.BufferLimit = l.hcm.H2BufferLimit
		req.Protocol = "HTTP/2"
	} else if r.ProtoMinor == 0 {
		req.Protocol = "HTTP/1.0"
	}
	if rt != nil {
		req.Disabled, req.Timeout = rt.Disabled, rt.Timeout
		req.Attributes, req.Messages = rt.props.attrs, rt.props.msgs
	}
	if dc, ok := r.Context().Value(connKey{}).(*downstreamConn); ok && dc.draining.Load() && r.ProtoMajor == 1 {
		// max_connection_duration passed: Envoy drains an HTTP/1
		// connection by closing it after this response.
		w.Header().Set("connection", "close")
	}
	if l.host == nil {
		l.serveDirect(w, r, hs, req.Timeout)
		return
	}
	l.serveStream(w, r, req, rt)
}

// earlyResponseDrain bounds how long the rest of a request that got its
// response early is read and dropped (Envoy's delayed_close_timeout
// default).
const earlyResponseDrain = time.Second

// serveStream runs one request through the engine. Switching to another
// engine transport touches only this function and clientSink.
func (l *listener) serveStream(w http.ResponseWriter, r *http.Request, req engine.Request, rt *Route) {
	sink := newClientSink()
	req.Sink = sink
	s := l.host.NewStream(req)
	rc := http.NewResponseController(w)
	_ = rc.EnableFullDuplex() // HTTP/1.1: read the request while the response flows
	timers := l.startStreamTimers(s, rt)
	defer timers.stop()
	sink.touch = timers.touch
	if dc, ok := r.Context().Value(connKey{}).(*downstreamConn); ok && r.ProtoMajor == 1 {
		sink.draining = dc.draining.Load
	}

	eos := r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0
	sink.requestOpen.Store(!eos && r.ProtoMajor == 1)
	s.Start(eos)
	readDone := make(chan struct{})
	if eos {
		timers.requestDone()
		close(readDone)
	} else {
		go func() {
			defer close(readDone)
			buf := make([]byte, 32<<10)
			for {
				l.awaitRequestRoom(r, s)
				n, err := r.Body.Read(buf)
				select {
				case <-s.Done():
					if sink.requestOpen.Load() && err == nil {
						// The stream ended (an early response) while the
						// client still sends: drain the rest, until the
						// deadline serveStream sets, so that closing the
						// connection with unread bytes does not reset it
						// before the client has read the response.
						_, _ = io.Copy(io.Discard, r.Body)
					}
					return
				default:
				}
				if n > 0 {
					timers.touch()
				}
				if err == io.EOF {
					sink.requestOpen.Store(false)
					timers.requestDone()
					// net/http fills r.Trailer once the body is read to EOF.
					trailers, reject := l.requestTrailers(r)
					if reject != "" {
						if n > 0 {
							s.SendData(buf[:n], false)
						}
						l.g.log.Debugf("http", "%s %s: rejecting the request: a trailer name contains an underscore (%s)", r.Method, r.RequestURI, reject)
						if r.ProtoMajor == 2 {
							s.Reset(reject)
						} else {
							sink.closeConn.Store(true) // before the reply it marks
							s.CodecError(http.StatusBadRequest, http.StatusText(http.StatusBadRequest), reject)
						}
						return
					}
					if len(trailers) == 0 {
						s.SendData(buf[:n], true)
						return
					}
					if n > 0 {
						s.SendData(buf[:n], false)
					}
					s.SendTrailerPairs(trailers)
					return
				}
				if n > 0 {
					s.SendData(buf[:n], false)
				}
				if err != nil {
					l.g.log.Debugf("http", "%s %s: reading the request body: %v", r.Method, r.RequestURI, err)
					l.reset(s) // the client went away
					return
				}
			}
		}()
	}

	status, reset := sink.write(w, rc, l, r, s)
	// A response that ended before the request did (a filter or the
	// upstream answered early): the rest is read and dropped for at most
	// earlyResponseDrain, then reading stops. Closing a socket with unread
	// bytes makes the kernel send a reset, which can destroy the response
	// before the client reads it; Envoy's delayed close (1 s by default)
	// serves the same purpose.
	select {
	case <-readDone:
	default:
		_ = rc.SetReadDeadline(time.Now().Add(earlyResponseDrain))
		select {
		case <-readDone:
		case <-l.g.closing:
		}
	}
	// Let the stream finish (on_log, on_done) before the handler returns,
	// so that a graceful shutdown waits for it.
	select {
	case <-s.Done(): // usually done already: no timer then
	default:
		t := time.NewTimer(5 * time.Second)
		select {
		case <-s.Done():
		case <-l.g.closing:
		case <-t.C:
		}
		t.Stop()
	}
	l.count(status)
	if reset {
		panic(http.ErrAbortHandler) // Envoy resets the stream: the client sees the connection cut
	}
}

// awaitRequestRoom is flow control: the client is not read while the
// upstream (or a filter that paused the request) is behind. Nothing reads
// the client meanwhile, and net/http notices an HTTP/1 client hanging up
// only by reading, so the connection is watched instead: a hang-up resets
// the stream, as Envoy's Closed event does on a read-disabled connection.
// (HTTP/2 cancels the request context, which the response side watches.)
func (l *listener) awaitRequestRoom(r *http.Request, s *engine.Stream) {
	if !s.RequestBacklogged() {
		return
	}
	if conn, ok := r.Context().Value(connKey{}).(net.Conn); ok && r.ProtoMajor == 1 {
		parked := make(chan struct{})
		defer close(parked)
		go func() {
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-parked:
					return
				case <-tick.C:
				}
				if peerClosed(conn) {
					l.g.log.Debugf("http", "%s %s: the client hung up while its upload was held back", r.Method, r.RequestURI)
					l.reset(s)
					return
				}
			}
		}()
	}
	s.AwaitRequestRoom()
}

// connKey finds a request's client connection in its context.
type connKey struct{}

// reset resets a stream the client gave up on (DC,
// downstream_remote_disconnect).
func (l *listener) reset(s *engine.Stream) {
	select {
	case <-l.g.closing:
	case <-s.Done():
	default:
		s.Reset("downstream_remote_disconnect")
	}
}

func (l *listener) count(status int) {
	if c := status / 100; c >= 1 && c <= 5 {
		l.rqXX[c].Add(1)
	}
}

// clientSink receives the response from the engine's worker (which must
// never block) and hands it to the handler goroutine that writes it.
type clientSink struct {
	mu     sync.Mutex
	events []sinkEvent
	wake   chan struct{}
	touch  func() // activity for stream_idle_timeout
	// draining reports max_connection_duration passed: the response then
	// says connection: close (HTTP/1), as Envoy's drain does.
	draining func() bool
	// closeConn: the HTTP/1 codec failed (a rejected trailer); the
	// connection closes after the response, as Envoy's does.
	closeConn atomic.Bool
	// requestOpen: the client is still sending the request (HTTP/1). A
	// response that starts then says connection: close, as Envoy's
	// connection manager does when it encodes headers before the request
	// is complete: the rest of the request is never read, so the
	// connection cannot carry another one.
	requestOpen atomic.Bool
}

type sinkEvent struct {
	kind    byte // 'h' headers, 'd' data, 't' trailers, 'r' reset
	headers []abi.Pair
	data    []byte
	eos     bool
	reason  string
}

func newClientSink() *clientSink { return &clientSink{wake: make(chan struct{}, 1)} }

func (c *clientSink) push(e sinkEvent) {
	c.mu.Lock()
	c.events = append(c.events, e)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *clientSink) Headers(h []abi.Pair, eos bool) {
	c.push(sinkEvent{kind: 'h', headers: append([]abi.Pair(nil), h...), eos: eos})
}
func (c *clientSink) Data(b []byte, eos bool) {
	c.push(sinkEvent{kind: 'd', data: append([]byte(nil), b...), eos: eos})
}
func (c *clientSink) Trailers(t []abi.Pair) {
	c.push(sinkEvent{kind: 't', headers: append([]abi.Pair(nil), t...)})
}
func (c *clientSink) Reset(reason string) { c.push(sinkEvent{kind: 'r', reason: reason}) }

func (c *clientSink) take() []sinkEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	ev := c.events
	c.events = nil
	return ev
}

// write copies the response to the client as it comes. It returns the
// status sent, and whether the stream was reset instead.
func (c *clientSink) write(w http.ResponseWriter, rc *http.ResponseController, l *listener, r *http.Request, s *engine.Stream) (status int, reset bool) {
	clientGone := r.Context().Done()
	trailers := l.trailersPass(r)
	for {
		select {
		case <-l.g.closing:
			return status, true // the engine is going away with the gateway
		case <-c.wake:
		case <-clientGone:
			clientGone = nil
			l.reset(s) // its Reset event ends the loop
		case <-s.Done():
			// Every ending pushes its last event before Done; drain them.
		}
		// What arrived together goes out in one flush (one write to the
		// socket), not one per event; nothing waits unflushed.
		wrote, drained := false, 0
		for _, e := range c.take() {
			if c.touch != nil {
				c.touch()
			}
			switch e.kind {
			case 'h':
				if c.closeConn.Load() || c.requestOpen.Load() || c.draining != nil && c.draining() {
					w.Header().Set("connection", "close")
				}
				status = l.writeHeaders(w, e.headers)
				if e.eos {
					return status, false
				}
				wrote = true
			case 'd':
				if len(e.data) > 0 {
					if _, err := w.Write(e.data); err != nil {
						l.reset(s)
						return status, true
					}
				}
				if e.eos {
					return status, false
				}
				wrote, drained = true, drained+len(e.data)
			case 't':
				if trailers {
					// Commit the response as chunked before the handler
					// returns: headers and body that arrived in this same
					// batch are still buffered, and net/http would send a
					// buffered response with a Content-Length and no
					// trailers.
					_ = rc.Flush()
					for _, p := range e.headers {
						w.Header().Add(http.TrailerPrefix+p.Key, p.Value)
					}
				}
				return status, false
			case 'r':
				l.g.log.Debugf("http", "stream reset: %s", e.reason)
				return status, true
			}
		}
		if wrote {
			_ = rc.Flush()
			s.ResponseDrained(drained)
		}
		select {
		case <-s.Done():
			c.mu.Lock()
			n := len(c.events)
			c.mu.Unlock()
			if n == 0 {
				return status, status == 0 // ended without a last event: treat as a reset
			}
		default:
		}
	}
}

// writeHeaders sends the response headers the filters produced, with the
// connection manager's own changes (server header).
func (l *listener) writeHeaders(w http.ResponseWriter, hs []abi.Pair) int {
	status := http.StatusBadGateway
	out := w.Header()
	for _, p := range hs {
		switch {
		case p.Key == ":status":
			if n, err := strconv.Atoi(p.Value); err == nil {
				status = n
			}
		case strings.HasPrefix(p.Key, ":"), hopByHop[p.Key]:
		default:
			out.Add(p.Key, p.Value)
		}
	}
	l.serverHeader(out)
	w.WriteHeader(status)
	return status
}

func (l *listener) serverHeader(h http.Header) {
	switch l.hcm.ServerHeader {
	case 0: // OVERWRITE
		h.Set("server", l.hcm.ServerName)
	case 1: // APPEND_IF_ABSENT
		if h.Get("server") == "" {
			h.Set("server", l.hcm.ServerName)
		}
	}
}

// route is the router: the terminal filter. It runs once the request
// headers have passed the filters, re-matching the route on the headers
// as the filters left them (Envoy clears the route cache when a wasm
// filter edits request headers).
func (l *listener) route(w http.ResponseWriter, r *http.Request) {
	t := l.hcm.Routes
	rt := t.Match(httpRequestView(r))
	if rt == nil {
		routerReply(w, r, engine.RouterReply{Status: http.StatusNotFound, Details: "route_not_found", Flags: engine.FlagNoRouteFound})
		return
	}
	if d := rt.Direct; d != nil {
		routerReply(w, r, engine.RouterReply{Status: d.Status, Body: string(d.Body), Details: "direct_response"})
		return
	}
	c := l.g.clusters[rt.Cluster]
	h := c.pick()
	if h == nil {
		c.noHealthy.Add(1)
		routerReply(w, r, engine.RouterReply{Status: http.StatusServiceUnavailable, Body: "no healthy upstream",
			Details: "no_healthy_upstream", Flags: engine.FlagNoHealthyUpstream})
		return
	}
	path, rewritten := rt.rewritePath(r.RequestURI)
	authority := r.Host
	switch {
	case rt.HostRewrite != "":
		authority = rt.HostRewrite
	case rt.AutoHostRewrite:
		authority = h.name
	}
	suppress := l.hcm.SuppressEnvoyHeaders
	levels := rt.levels(t)
	start := time.Now()
	c.forward(w, r, h, upstreamCall{
		path:      path,
		authority: authority,
		edit: func(hd http.Header) {
			if !suppress {
				if rt.Timeout > 0 {
					hd.Set("x-envoy-expected-rq-timeout-ms", strconv.FormatInt(rt.Timeout.Milliseconds(), 10))
				}
				if rewritten {
					hd.Set("x-envoy-original-path", r.RequestURI)
				}
			}
			for _, m := range levels {
				applyHeaderOptions(hd, m.reqRemove, m.reqAdd)
			}
		},
		response: func(resp *http.Response) {
			if !suppress {
				resp.Header.Set("x-envoy-upstream-service-time", strconv.FormatInt(time.Since(start).Milliseconds(), 10))
			}
			for _, m := range levels {
				applyHeaderOptions(resp.Header, m.respRemove, m.respAdd)
			}
		},
	})
}

// serveDirect serves a connection manager without wasm filters: the
// router alone, as Envoy with only envoy.filters.http.router.
func (l *listener) serveDirect(w http.ResponseWriter, r *http.Request, hs []abi.Pair, timeout time.Duration) {
	r2 := r.Clone(r.Context())
	if timeout > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		r2 = r2.WithContext(ctx)
	}
	r2.Header = http.Header{}
	r2, body := l.directBody(r, r2)
	for _, p := range hs {
		switch p.Key {
		case ":authority":
			r2.Host = p.Value
		case ":path":
			r2.RequestURI = p.Value
		case ":method", ":scheme":
		default:
			r2.Header.Add(p.Key, p.Value)
		}
	}
	dw := &directWriter{ResponseWriter: w, l: l, noTrailers: !l.trailersPass(r)}
	defer func() {
		if p := recover(); p != nil {
			if p != http.ErrAbortHandler || dw.status != 0 {
				panic(p)
			}
			if body.rejectTrailers(dw, r) {
				return
			}
			// The exchange ended before a response: the route timeout
			// (Envoy's 504), or the client went away (nobody to answer).
			if errors.Is(r2.Context().Err(), context.DeadlineExceeded) {
				dw.local(http.StatusGatewayTimeout, "upstream request timeout")
			}
		}
		l.count(dw.status)
	}()
	l.route(dw, r2)
	dw.dropTrailers()
}

// routerReply answers as Envoy's router does by itself: through the
// filters when the request came through them, else straight to the client.
func routerReply(w http.ResponseWriter, r *http.Request, rr engine.RouterReply) {
	if engine.ReplyFromRouter(r, rr) {
		return
	}
	if rr.Body != "" {
		w.Header().Set("content-type", "text/plain")
		w.Header().Set("content-length", strconv.Itoa(len(rr.Body)))
	}
	w.WriteHeader(rr.Status)
	io.WriteString(w, rr.Body)
}

// directWriter adds the connection manager's response changes when no
// engine is in between.
type directWriter struct {
	http.ResponseWriter
	l      *listener
	status int
	// noTrailers: the client's codec drops response trailers (HTTP/1
	// without enable_trailers).
	noTrailers bool
}

func (d *directWriter) WriteHeader(code int) {
	if d.status == 0 {
		d.status = code
		d.l.serverHeader(d.Header())
		if d.noTrailers {
			d.Header().Del("Trailer")
		}
	}
	d.ResponseWriter.WriteHeader(code)
}

func (d *directWriter) Write(b []byte) (int, error) {
	if d.status == 0 {
		d.WriteHeader(http.StatusOK)
	}
	return d.ResponseWriter.Write(b)
}

func (d *directWriter) Flush() {
	if d.status == 0 {
		d.WriteHeader(http.StatusOK)
	}
	http.NewResponseController(d.ResponseWriter).Flush()
}

func (d *directWriter) Unwrap() http.ResponseWriter { return d.ResponseWriter }

func (d *directWriter) local(status int, body string) {
	d.Header().Set("content-type", "text/plain")
	d.Header().Set("content-length", strconv.Itoa(len(body)))
	d.WriteHeader(status)
	io.WriteString(d, body)
}

// pairsView lets route matching read request headers given as pairs.
func pairsView(hs []abi.Pair) request {
	r := request{}
	for _, p := range hs {
		switch p.Key {
		case ":authority":
			r.authority = p.Value
		case ":path":
			r.path = p.Value
		case ":method":
			r.method = p.Value
		}
	}
	r.header = func(n string) []string {
		var out []string
		for _, p := range hs {
			if p.Key == n {
				out = append(out, p.Value)
			}
		}
		return out
	}
	return r
}
