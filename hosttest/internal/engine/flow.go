package engine

import "sync"

// flowGauge counts the body bytes of one direction that wait for a slower
// side: held by a filter that paused the headers, or not yet taken by the
// upstream (request) or the client (response). It is Envoy's watermark
// flow control: above the high watermark (the buffer limit) the sender
// stops until the count falls to the low one (half of it), so a slow side
// costs memory up to the limit, not the whole body.
type flowGauge struct {
	mu    sync.Mutex
	cond  sync.Cond // on mu
	bytes int
	ended bool
}

func (g *flowGauge) init() { g.cond.L = &g.mu }

func (g *flowGauge) add(n int) {
	if n == 0 {
		return
	}
	g.mu.Lock()
	g.bytes += n
	g.mu.Unlock()
	if n < 0 {
		g.cond.Broadcast()
	}
}

// end releases every waiter for good: the stream is over.
func (g *flowGauge) end() {
	g.mu.Lock()
	g.ended = true
	g.mu.Unlock()
	g.cond.Broadcast()
}

// await blocks while the count is above high, until it is at most high/2
// or the stream ends.
func (g *flowGauge) await(high int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.bytes <= high {
		return
	}
	for g.bytes > high/2 && !g.ended {
		g.cond.Wait()
	}
}

func (s *Stream) endFlow() {
	s.flow[dec].end()
	s.flow[enc].end()
}

// full reports whether more than high bytes wait.
func (g *flowGauge) full(high int) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.bytes > high && !g.ended
}

// RequestBacklogged reports whether AwaitRequestRoom would wait now.
func (s *Stream) RequestBacklogged() bool { return s.flow[dec].full(s.bufferLimit()) }

// AwaitRequestRoom blocks while more request body than the buffer limit
// waits inside the stream (held by paused filters, or not yet read by the
// upstream), until half of that is left or the stream ends. A client
// reader calls it before each read, as Envoy stops reading a downstream
// connection above its high watermark.
func (s *Stream) AwaitRequestRoom() { s.flow[dec].await(s.bufferLimit()) }

// ResponseDrained tells the stream that a Sink wrote n body bytes to its
// client. Until it does, bytes given to Sink.Data count against the
// buffer limit, and the upstream is not read past it.
func (s *Stream) ResponseDrained(n int) { s.flow[enc].add(-n) }
