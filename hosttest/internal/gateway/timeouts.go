package gateway

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/concierge-wasm/concierge/hosttest/internal/engine"
)

// Timeouts are the HTTP connection manager's timers, with Envoy's
// defaults. Zero disables one.
type Timeouts struct {
	// Idle is common_http_protocol_options.idle_timeout (1h): a connection
	// with no request in flight for this long is closed.
	Idle time.Duration
	// MaxConnection is common_http_protocol_options.max_connection_duration
	// (none): a connection this old is drained — closed when idle, after
	// its current response (with connection: close) otherwise.
	MaxConnection time.Duration
	// StreamIdle is stream_idle_timeout (5m): a request with no bytes
	// either way for this long is answered 408 (504 once the request is
	// complete) "stream timeout", or reset once the response has started.
	StreamIdle time.Duration
	// Request is request_timeout (none): the whole request must arrive in
	// this time, or 408 "request timeout".
	Request time.Duration
	// RequestHeaders is request_headers_timeout (none): from the first
	// byte of a request to the end of its headers, or 408 "request header
	// timeout".
	RequestHeaders time.Duration
}

// Envoy's defaults (HttpConnectionManager and HttpProtocolOptions docs).
const (
	defaultIdleTimeout       = time.Hour
	defaultStreamIdleTimeout = 5 * time.Minute
)

func compileTimeouts(c *checker, m *hcmv3.HttpConnectionManager, at string) Timeouts {
	t := Timeouts{
		Idle:           defaultIdleTimeout,
		StreamIdle:     dur(m.GetStreamIdleTimeout(), defaultStreamIdleTimeout),
		Request:        dur(m.GetRequestTimeout(), 0),
		RequestHeaders: dur(m.GetRequestHeadersTimeout(), 0),
	}
	if o := m.GetCommonHttpProtocolOptions(); o != nil {
		// Checked with the codec options (compileCodecOptions).
		t.Idle = dur(o.GetIdleTimeout(), defaultIdleTimeout)
		t.MaxConnection = dur(o.GetMaxConnectionDuration(), 0)
	}
	return t
}

// headerDeadline is how long a request may take from its first byte to
// the end of its headers, and what Envoy answers then: the earlier of
// request_headers_timeout and stream_idle_timeout (the stream exists, and
// its idle timer runs, from the first byte).
func (t Timeouts) headerDeadline() (d time.Duration, body, details string) {
	switch {
	case t.RequestHeaders > 0 && (t.StreamIdle == 0 || t.RequestHeaders <= t.StreamIdle):
		return t.RequestHeaders, "request header timeout", "request_header_timeout"
	case t.StreamIdle > 0:
		return t.StreamIdle, "stream timeout", "stream_idle_timeout"
	}
	return 0, "", ""
}

// timedListener hands out downstreamConns.
type timedListener struct {
	net.Listener
	l *listener
}

func (tl timedListener) Accept() (net.Conn, error) {
	c, err := tl.Listener.Accept()
	if err != nil {
		return nil, err
	}
	dc := &downstreamConn{Conn: c, l: tl.l, awaiting: true}
	dc.start()
	return dc, nil
}

// downstreamConn is one client connection with the connection manager's
// connection timers (idle, max duration) and the part of the stream timers
// that runs before net/http hands a request over: the time from a
// request's first byte to the end of its headers. net/http reports the rest
// through ConnState (connState below).
type downstreamConn struct {
	net.Conn
	l *listener

	mu       sync.Mutex
	awaiting bool // between requests: the next byte starts one
	started  bool // bytes of the next request have arrived
	h2       bool // HTTP/2 (prior knowledge): per-stream timers only
	gone     bool
	idle     *time.Timer
	header   *time.Timer
	maxAge   *time.Timer
	draining atomic.Bool
	sawBytes atomic.Bool
}

func (c *downstreamConn) start() {
	t := c.l.hcm.Timeouts
	c.mu.Lock()
	defer c.mu.Unlock()
	c.armIdle()
	if t.MaxConnection > 0 {
		c.maxAge = time.AfterFunc(t.MaxConnection, c.onMaxDuration)
	}
}

// armIdle (mu held) starts the idle timer: Envoy's runs while the
// connection has no stream, from the accept on.
func (c *downstreamConn) armIdle() {
	if d := c.l.hcm.Timeouts.Idle; d > 0 && !c.gone {
		if c.idle != nil {
			c.idle.Stop()
		}
		c.idle = time.AfterFunc(d, c.onIdle)
	}
}

func (c *downstreamConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.sawBytes.Swap(true) {
		if bytes.HasPrefix(p[:n], []byte("PRI * HTTP/2.0")) {
			c.mu.Lock()
			c.h2 = true
			c.mu.Unlock()
		}
	}
	if n > 0 {
		c.requestBytes()
	}
	return n, err
}

// requestBytes notes bytes from the client: the first ones of a request
// create Envoy's stream, which stops the connection's idle timer and
// starts the header deadline.
func (c *downstreamConn) requestBytes() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.awaiting || c.started || c.gone {
		return
	}
	c.started = true
	if c.idle != nil {
		c.idle.Stop()
	}
	if c.h2 {
		return
	}
	if d, _, _ := c.l.hcm.Timeouts.headerDeadline(); d > 0 {
		c.header = time.AfterFunc(d, c.onHeaderTimeout)
	}
}

// active: net/http has read a request's headers and runs it.
func (c *downstreamConn) active() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.awaiting, c.started = false, false
	if c.idle != nil {
		c.idle.Stop()
	}
	if c.header != nil {
		c.header.Stop()
		c.header = nil
	}
}

// idleAgain: the connection has no request in flight.
func (c *downstreamConn) idleAgain() {
	c.mu.Lock()
	c.awaiting, c.started = true, false
	draining := c.draining.Load()
	if !draining {
		c.armIdle()
	}
	c.mu.Unlock()
	if draining {
		c.Close()
	}
}

func (c *downstreamConn) onIdle() {
	c.mu.Lock()
	idle := c.awaiting && !c.started && !c.gone
	c.mu.Unlock()
	if idle {
		c.l.cxIdleTimeout.Add(1)
		c.l.g.log.Debugf("http", "%s: closing the connection: idle_timeout", c.RemoteAddr())
		c.Close()
	}
}

func (c *downstreamConn) onMaxDuration() {
	c.l.cxMaxDuration.Add(1)
	c.draining.Store(true)
	c.mu.Lock()
	idle := c.awaiting && !c.started
	c.mu.Unlock()
	if idle {
		c.l.g.log.Debugf("http", "%s: closing the connection: max_connection_duration", c.RemoteAddr())
		c.Close()
	}
}

// onHeaderTimeout answers a request whose headers did not arrive in time.
// Envoy creates no filter chain before the headers, so the reply goes
// straight to the client, and the connection closes after it.
func (c *downstreamConn) onHeaderTimeout() {
	c.mu.Lock()
	if !c.started || c.gone {
		c.mu.Unlock()
		return
	}
	c.gone = true
	c.mu.Unlock()
	_, body, details := c.l.hcm.Timeouts.headerDeadline()
	if details == "request_header_timeout" {
		c.l.rqHeaderTimeout.Add(1)
	} else {
		c.l.rqIdleTimeout.Add(1)
	}
	c.l.count(http.StatusRequestTimeout)
	c.l.g.log.Debugf("http", "%s: 408 %s", c.RemoteAddr(), details)
	fmt.Fprintf(c.Conn, "HTTP/1.1 408 Request Timeout\r\ncontent-length: %d\r\ncontent-type: text/plain\r\nserver: %s\r\ndate: %s\r\nconnection: close\r\n\r\n%s",
		len(body), c.l.hcm.ServerName, time.Now().UTC().Format(http.TimeFormat), body)
	c.Close()
}

func (c *downstreamConn) Close() error {
	c.mu.Lock()
	c.gone = true
	for _, t := range []*time.Timer{c.idle, c.header, c.maxAge} {
		if t != nil {
			t.Stop()
		}
	}
	c.mu.Unlock()
	return c.Conn.Close()
}

// SyscallConn and CloseWrite reach the TCP connection: peerClosed polls
// it, and net/http half-closes it.
func (c *downstreamConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, fmt.Errorf("not a syscall.Conn")
}

func (c *downstreamConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// connState follows net/http's view of each connection.
func connState(nc net.Conn, st http.ConnState) {
	c, ok := nc.(*downstreamConn)
	if !ok {
		return
	}
	switch st {
	case http.StateActive:
		c.active()
	case http.StateIdle:
		c.idleAgain()
	case http.StateHijacked, http.StateClosed:
		c.mu.Lock()
		c.gone = true
		for _, t := range []*time.Timer{c.idle, c.header, c.maxAge} {
			if t != nil {
				t.Stop()
			}
		}
		c.mu.Unlock()
	}
}

// streamTimers are one request's stream_idle_timeout and request_timeout.
// Activity is a timestamp the request and response paths store; the idle
// timer looks at it when it fires rather than being re-armed per chunk.
type streamTimers struct {
	s        *engine.Stream
	l        *listener
	idle     time.Duration
	last     atomic.Int64
	idleT    *time.Timer
	requestT *time.Timer
}

func (l *listener) startStreamTimers(s *engine.Stream, rt *Route) *streamTimers {
	t := &streamTimers{s: s, l: l, idle: l.hcm.Timeouts.StreamIdle}
	if rt != nil && rt.IdleTimeout != nil {
		t.idle = *rt.IdleTimeout
	}
	t.touch()
	if t.idle > 0 {
		t.idleT = time.AfterFunc(t.idle, t.checkIdle)
	}
	if d := l.hcm.Timeouts.Request; d > 0 {
		t.requestT = time.AfterFunc(d, func() {
			l.rqTimeout.Add(1)
			s.Expire(engine.RequestTimeout)
		})
	}
	return t
}

// touch records activity on the stream: bytes either way.
func (t *streamTimers) touch() { t.last.Store(time.Now().UnixNano()) }

func (t *streamTimers) checkIdle() {
	quiet := time.Since(time.Unix(0, t.last.Load()))
	if quiet < t.idle {
		t.idleT.Reset(t.idle - quiet)
		return
	}
	t.l.rqIdleTimeout.Add(1)
	t.s.Expire(engine.StreamIdleTimeout)
}

// requestDone disarms request_timeout: the whole request has arrived.
func (t *streamTimers) requestDone() {
	if t.requestT != nil {
		t.requestT.Stop()
	}
}

func (t *streamTimers) stop() {
	for _, x := range []*time.Timer{t.idleT, t.requestT} {
		if x != nil {
			x.Stop()
		}
	}
}

// timeoutStats are the connection manager's timeout and overload counters, named as
// Envoy's http.<stat_prefix>.* stats.
func (l *listener) timeoutStats() []struct {
	name string
	v    uint64
} {
	return []struct {
		name string
		v    uint64
	}{
		{"downstream_cx_idle_timeout", l.cxIdleTimeout.Load()},
		{"downstream_cx_max_duration_reached", l.cxMaxDuration.Load()},
		{"downstream_rq_idle_timeout", l.rqIdleTimeout.Load()},
		{"downstream_rq_timeout", l.rqTimeout.Load()},
		{"downstream_rq_header_timeout", l.rqHeaderTimeout.Load()},
		{"downstream_rq_overload_close", l.rqOverload.Load()},
	}
}
