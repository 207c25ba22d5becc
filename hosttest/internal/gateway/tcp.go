package gateway

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/concierge-wasm/concierge/hosttest/internal/engine"
)

// tcpListener serves a listener of network wasm filters and tcp_proxy:
// each accepted connection goes through the filters (engine.Conn) to a
// host of the cluster, over real sockets.
type tcpListener struct {
	g       *Gateway
	cfg     *ListenerConfig
	host    *engine.Host // the gateway's engine; nil when the chain has no wasm filter
	chain   int          // the listener's filter chain in it
	cluster *cluster
	ln      net.Listener
	conns   sync.WaitGroup
	cxTotal atomic.Uint64

	mu     sync.Mutex
	active map[*proxy]bool // closed with the listener
	closed bool
}

func (t *tcpListener) listen() error {
	ln, err := net.Listen("tcp", t.cfg.Address)
	if err != nil {
		return err
	}
	t.ln = ln
	go t.serve()
	return nil
}

// bufferLimit is per_connection_buffer_limit_bytes (Envoy's default 1 MiB).
func (t *tcpListener) bufferLimit() int {
	if t.cfg.BufferLimit > 0 {
		return t.cfg.BufferLimit
	}
	return engine.DefaultBufferLimit
}

func (t *tcpListener) boundAddr() string {
	if t.ln != nil {
		return t.ln.Addr().String()
	}
	return t.cfg.Address
}

func (t *tcpListener) serve() {
	for {
		c, err := t.ln.Accept()
		if err != nil {
			return
		}
		t.cxTotal.Add(1)
		t.conns.Add(1)
		go func() { defer t.conns.Done(); t.handle(c) }()
	}
}

func (t *tcpListener) close() {
	if t.ln != nil {
		t.ln.Close()
	}
	t.mu.Lock()
	t.closed = true
	active := t.active
	t.active = nil
	t.mu.Unlock()
	for p := range active {
		p.down.Close()
		p.mu.Lock()
		if p.up != nil {
			p.up.Close()
		}
		p.mu.Unlock()
	}
}

// proxy is one downstream connection and its upstream: the terminal
// filter (tcp_proxy) of the engine's connection.
type proxy struct {
	t        *tcpListener
	ec       *engine.Conn // set once under mu; read through conn()
	down     *net.TCPConn
	downW    *sendQueue
	mu       sync.Mutex
	up       *net.TCPConn
	upW      *sendQueue
	pending  [][]byte // downstream data that passed the filters before the upstream connected
	pendEOS  bool
	downDone bool // the client half-closed
	upDone   bool // the upstream half-closed
	closed   bool
	// ready is closed once the upstream is connected or the connection is
	// over: tcp_proxy disables reading the client until then, so the
	// filters see no downstream data before upstream.address exists.
	ready     chan struct{}
	readyOnce sync.Once
}

func (p *proxy) setReady() { p.readyOnce.Do(func() { close(p.ready) }) }

func (t *tcpListener) handle(c net.Conn) {
	down := c.(*net.TCPConn)
	p := &proxy{t: t, down: down, ready: make(chan struct{})}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		down.Close()
		return
	}
	if t.active == nil {
		t.active = map[*proxy]bool{}
	}
	t.active[p] = true
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		delete(t.active, p)
		t.mu.Unlock()
	}()
	p.downW = newSendQueue(down)
	if t.host == nil {
		p.Connect()
	} else {
		// The worker may call back (Connect) before NewConn returns.
		p.mu.Lock()
		info := engine.ConnInfo{Source: down.RemoteAddr().String(), Destination: down.LocalAddr().String(), Cluster: t.cfg.TCP.Cluster, Chain: t.chain}
		if t.cluster != nil {
			info.ClusterMetadata = orEmpty(t.cluster.cfg.Metadata)
		}
		p.ec = t.host.NewConn(info, p)
		p.mu.Unlock()
	}
	<-p.ready
	p.mu.Lock()
	over := p.closed
	p.mu.Unlock()
	if over {
		return
	}
	limit := t.bufferLimit()
	buf := make([]byte, 32<<10)
	for {
		p.mu.Lock()
		upW := p.upW
		p.mu.Unlock()
		if upW != nil {
			upW.waitBelow(limit)
		}
		n, err := down.Read(buf)
		if n > 0 {
			p.fromDownstream(buf[:n], false)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				p.fromDownstream(nil, true)
				p.mu.Lock()
				p.downDone = true
				both := p.upDone
				p.mu.Unlock()
				if both {
					p.shut(engine.PeerRemote)
				}
				return
			}
			p.shut(engine.PeerRemote)
			return
		}
	}
}

func (p *proxy) fromDownstream(b []byte, eos bool) {
	if ec := p.conn(); ec != nil {
		p.mu.Lock()
		upW := p.upW
		p.mu.Unlock()
		ec.Downstream(b, eos)
		if n := len(b); upW != nil && n > 0 {
			// Counted until the filters have run on it (Then): data they
			// hold or that waits in the worker's queue counts too.
			upW.reserve(n)
			ec.Then(func() { upW.release(n) })
		}
		return
	}
	p.ToUpstream(append([]byte(nil), b...), eos)
}

func (p *proxy) conn() *engine.Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ec
}

// shut closes both sides once; the filters hear of it with peer.
func (p *proxy) shut(peer engine.PeerType) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	ec := p.ec
	p.mu.Unlock()
	p.setReady()
	if ec == nil {
		p.closeSockets()
		return
	}
	ec.Closed(peer)
	ec.Then(p.closeSockets)
}

// closeSockets closes both sides once what was queued has been written.
func (p *proxy) closeSockets() {
	p.mu.Lock()
	up, upW := p.up, p.upW
	p.mu.Unlock()
	p.downW.closeAfterFlush()
	if upW != nil {
		upW.closeAfterFlush()
	} else if up != nil {
		up.Close()
	}
}

// Connect is tcp_proxy's onNewConnection: pick a host of the cluster and
// dial it; a failure closes the downstream connection, as Envoy does.
func (p *proxy) Connect() {
	go func() {
		c := p.t.cluster
		h := c.pick()
		if h == nil {
			c.noHealthy.Add(1)
			p.t.g.log.Warnf("tcp", "listener %s: no healthy host in cluster %s", p.t.cfg.Name, c.cfg.Name)
			p.shut(engine.PeerLocal)
			return
		}
		timeout := c.cfg.ConnectTimeout
		if timeout <= 0 {
			timeout = 5 * time.Second
		}
		conn, err := net.DialTimeout("tcp", h.addr, timeout)
		if err != nil {
			c.cxFail.Add(1)
			p.t.g.log.Warnf("tcp", "listener %s: connecting to %s: %v", p.t.cfg.Name, h.addr, err)
			p.shut(engine.PeerLocal)
			return
		}
		up := conn.(*net.TCPConn)
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			up.Close()
			return
		}
		p.up, p.upW = up, newSendQueue(up)
		for _, b := range p.pending {
			p.upW.send(b, false)
		}
		if p.pendEOS {
			p.upW.send(nil, true)
		}
		p.pending = nil
		ec := p.ec
		p.mu.Unlock()
		if ec != nil {
			ec.UpstreamConnected(up.RemoteAddr().String())
		}
		p.setReady()
		p.readUpstream(up)
	}()
}

func (p *proxy) readUpstream(up *net.TCPConn) {
	limit := p.t.bufferLimit()
	buf := make([]byte, 32<<10)
	for {
		p.downW.waitBelow(limit)
		n, err := up.Read(buf)
		if n > 0 {
			p.fromUpstream(buf[:n], false)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				p.fromUpstream(nil, true)
				p.mu.Lock()
				p.upDone = true
				both := p.downDone
				p.mu.Unlock()
				if both {
					p.shut(engine.PeerLocal)
				}
				return
			}
			p.shut(engine.PeerLocal)
			return
		}
	}
}

func (p *proxy) fromUpstream(b []byte, eos bool) {
	if ec := p.conn(); ec != nil {
		ec.Upstream(b, eos)
		if n := len(b); n > 0 {
			p.downW.reserve(n)
			ec.Then(func() { p.downW.release(n) })
		}
		return
	}
	p.ToDownstream(append([]byte(nil), b...), eos)
}

func (p *proxy) ToUpstream(b []byte, eos bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.upW == nil {
		p.pending = append(p.pending, b)
		p.pendEOS = p.pendEOS || eos
		return
	}
	p.upW.send(b, eos)
}

func (p *proxy) ToDownstream(b []byte, eos bool) { p.downW.send(b, eos) }

// CloseConn: a filter closed the connection; Envoy closes it with
// FlushWrite, and tcp_proxy closes the upstream.
func (p *proxy) CloseConn() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.setReady()
	p.closeSockets()
}

// sendQueue writes to a socket from its own goroutine, so that the
// engine's worker never blocks on a slow peer.
type sendQueue struct {
	c        *net.TCPConn
	mu       sync.Mutex
	cond     *sync.Cond
	chunks   [][]byte
	queued   int // bytes not yet written
	inflight int // bytes read from the other side, still in the filters' hands
	eos      bool
	close    bool
	done     bool
}

// waitBelow blocks the reader of the other side while more than limit
// bytes wait to be written here: Envoy's per-connection buffer watermark
// (readDisable on the source connection) keeps a fast peer from filling
// the proxy's memory when the other peer reads slowly.
func (q *sendQueue) waitBelow(limit int) {
	q.mu.Lock()
	for q.queued+q.inflight > limit && !q.done {
		q.cond.Wait()
	}
	q.mu.Unlock()
}

func (q *sendQueue) reserve(n int) { q.mu.Lock(); q.inflight += n; q.mu.Unlock() }

func (q *sendQueue) release(n int) {
	q.mu.Lock()
	q.inflight -= n
	q.mu.Unlock()
	q.cond.Broadcast()
}

func newSendQueue(c *net.TCPConn) *sendQueue {
	q := &sendQueue{c: c}
	q.cond = sync.NewCond(&q.mu)
	go q.run()
	return q
}

func (q *sendQueue) send(b []byte, eos bool) {
	q.mu.Lock()
	if len(b) > 0 {
		q.chunks = append(q.chunks, b)
		q.queued += len(b)
	}
	q.eos = q.eos || eos
	q.mu.Unlock()
	q.cond.Broadcast()
}

func (q *sendQueue) closeAfterFlush() {
	q.mu.Lock()
	q.close = true
	q.mu.Unlock()
	q.cond.Broadcast()
}

// finish marks the writer gone, releasing any waitBelow.
func (q *sendQueue) finish() {
	q.mu.Lock()
	q.done = true
	q.mu.Unlock()
	q.cond.Broadcast()
	q.c.Close()
}

func (q *sendQueue) run() {
	halfClosed := false
	for {
		q.mu.Lock()
		for len(q.chunks) == 0 && !(q.eos && !halfClosed) && !q.close {
			q.cond.Wait()
		}
		chunks := q.chunks
		q.chunks = nil
		eos, closing := q.eos, q.close
		q.mu.Unlock()
		for _, b := range chunks {
			_, err := q.c.Write(b)
			q.mu.Lock()
			q.queued -= len(b)
			q.mu.Unlock()
			q.cond.Broadcast()
			if err != nil {
				q.finish()
				return
			}
		}
		if eos && !halfClosed {
			halfClosed = true
			q.c.CloseWrite()
		}
		if closing {
			q.mu.Lock()
			rest := len(q.chunks)
			q.mu.Unlock()
			if rest == 0 {
				q.finish()
				return
			}
		}
	}
}

// describeTCP is Describe's part for TCP listeners and WasmServices.
func (g *Gateway) describeTCP(b *strings.Builder) {
	for _, t := range g.tcp {
		fmt.Fprintf(b, "listener %s on %s (TCP)\n", t.cfg.Name, t.boundAddr())
		for i, f := range t.cfg.TCP.Filters {
			fmt.Fprintf(b, "  filter %d %s: %s (root_id %q, vm_id %q, %d bytes of configuration, %s), %d worker VMs + main: started\n",
				i+1, f.HTTPName, f.CodePath, f.Engine.RootID, f.Engine.VMID, len(f.Engine.Configuration), policyName(f.Engine.FailurePolicy), g.opts.Workers)
		}
		fmt.Fprintf(b, "  filter %d envoy.filters.network.tcp_proxy: stat_prefix %s, cluster %s\n", len(t.cfg.TCP.Filters)+1, t.cfg.TCP.StatPrefix, t.cfg.TCP.Cluster)
	}
	for _, s := range g.cfg.Services {
		kind := fmt.Sprintf("%d worker VMs + main", g.opts.Workers)
		if s.Singleton {
			kind = "singleton on the main thread"
		}
		fmt.Fprintf(b, "wasm service %s: %s (root_id %q, vm_id %q), %s: started\n", s.Filter.Engine.Name, s.Filter.CodePath, s.Filter.Engine.RootID, s.Filter.Engine.VMID, kind)
	}
}
