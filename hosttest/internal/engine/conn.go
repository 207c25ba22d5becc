package engine

import (
	"net"
	"strconv"
	"sync/atomic"

	"github.com/tetratelabs/wazero/api"
	"google.golang.org/protobuf/proto"

	"github.com/concierge-wasm/concierge/hosttest/internal/abi"
)

// Network (TCP) filters: Envoy's envoy.filters.network.wasm. A Conn is one
// downstream connection through the host's filter chain, in Envoy's
// network filter manager order: read (downstream) data goes through the
// filters first to last, write (upstream) data last to first, each as both
// a read and a write filter, and a terminal filter (tcp_proxy, the ConnSink)
// after them.

// PeerType is proxy-wasm's close type for on_*_connection_close.
type PeerType uint32

const (
	PeerUnknown PeerType = 0
	PeerLocal   PeerType = 1 // the proxy closed the connection
	PeerRemote  PeerType = 2 // the peer closed it
)

// ConnSink is the terminal filter (tcp_proxy). Its methods run on the
// connection's worker goroutine and must not block.
type ConnSink interface {
	// Connect: every filter let the new connection through (Envoy calls
	// tcp_proxy's onNewConnection, which opens the upstream connection).
	Connect()
	// ToUpstream: downstream data that passed every filter.
	ToUpstream(data []byte, eos bool)
	// ToDownstream: upstream data that passed every filter.
	ToDownstream(data []byte, eos bool)
	// CloseConn: a filter closed the connection (proxy_close_stream):
	// flush what was written downstream, then close both sides.
	CloseConn()
}

// ConnInfo is what a filter can read about the connection.
type ConnInfo struct {
	Source      string // downstream peer "ip:port"
	Destination string // local address the connection was accepted on
	// Cluster and ClusterMetadata are tcp_proxy's cluster, served as
	// xds.cluster_name and xds.cluster_metadata once the chain has reached
	// tcp_proxy (Envoy sets the upstream cluster in the connection's
	// stream info there, so a filter's on_new_connection, which runs
	// before it, finds neither).
	Cluster         string
	ClusterMetadata proto.Message
	// Chain is the filter chain the connection runs (Options.Chains).
	Chain int
}

// Conn is one connection through the network filter chain.
type Conn struct {
	h       *Host
	w       *worker
	id      uint64
	info    ConnInfo
	sink    ConnSink
	filters []*connFilter

	upstreamAddr string
	termInit     bool
	down, up     []byte // data held by a paused filter (Envoy's read buffer / upstream read buffer)
	downEOS      bool
	upEOS        bool
	closed       bool
	finished     atomic.Bool
}

type connFilter struct {
	c           *Conn
	vm          *VM
	plug        *plugin
	ctxID       uint32
	initialized bool // on_new_connection has run
	skipped     bool // failed VM under fail-open
	inData      abi.BufferType
	readPaused  bool
}

// netExports are the network-filter callbacks of a module.
type netExports struct {
	newConnection, downstreamData, upstreamData, downstreamClose, upstreamClose api.Function
}

func (vm *VM) lookupNetworkExports() {
	f := vm.mod.ExportedFunction
	vm.net = netExports{
		newConnection:   f("proxy_on_new_connection"),
		downstreamData:  f("proxy_on_downstream_data"),
		upstreamData:    f("proxy_on_upstream_data"),
		downstreamClose: f("proxy_on_downstream_connection_close"),
		upstreamClose:   f("proxy_on_upstream_connection_close"),
	}
}

// NewConn accepts a connection on a worker: every filter's context is
// created (parent: its root context) and on_new_connection runs down the
// chain; sink.Connect follows when no filter paused. A FAIL_RELOAD filter
// whose VM failed is reloaded first once its backoff has passed, as for
// an HTTP stream: Envoy's network wasm filter creates each connection's
// context through the same PluginConfig::createContext, whose
// maybeReloadHandleIfNeeded does it.
func (h *Host) NewConn(info ConnInfo, sink ConnSink) *Conn {
	c := &Conn{h: h, w: h.pickWorker(), id: h.streams.Add(1), info: info, sink: sink}
	c.w.post(func() {
		for _, i := range h.chain(info.Chain) {
			p := h.reloadIfNeeded(c.w, i)
			vm := p.vm
			f := &connFilter{c: c, vm: vm, plug: p}
			c.filters = append(c.filters, f)
			if vm.failed {
				f.skipped = p.cfg.FailurePolicy == FailOpen
				if !f.skipped {
					c.closeLocal()
					return
				}
				continue
			}
			f.ctxID = vm.newContextID()
			vm.conns[f.ctxID] = f
			if _, ok := c.invoke(f, vm.fn.contextCreate, exContextCreate, uint64(f.ctxID), uint64(p.rootID)); !ok {
				if !c.onTrap(f) {
					return
				}
			}
		}
		c.runRead(0)
	})
	return c
}

// ID is the connection id (Envoy's connection_id property).
func (c *Conn) ID() uint64 { return c.id }

// Downstream delivers bytes read from the client; eos is its half-close.
func (c *Conn) Downstream(data []byte, eos bool) {
	data = append([]byte(nil), data...)
	c.w.post(func() {
		if c.closed {
			return
		}
		c.down = append(c.down, data...)
		c.downEOS = c.downEOS || eos
		c.runRead(0)
	})
}

// Upstream delivers bytes read from the upstream; eos is its half-close.
func (c *Conn) Upstream(data []byte, eos bool) {
	data = append([]byte(nil), data...)
	c.w.post(func() {
		if c.closed {
			return
		}
		c.up = append(c.up, data...)
		c.upEOS = c.upEOS || eos
		c.runWrite()
	})
}

// UpstreamConnected records the upstream host's address (upstream.address).
func (c *Conn) UpstreamConnected(addr string) {
	c.w.post(func() { c.upstreamAddr = addr })
}

// Closed reports that the downstream connection closed: PeerRemote when
// the client closed it, PeerLocal when the proxy did (upstream gone,
// connect failure).
func (c *Conn) Closed(peer PeerType) {
	c.w.post(func() { c.finish(peer) })
}

// Then runs fn on the connection's worker after every event posted so
// far has been through the filters (a proxy closes its sockets only once
// the data before the close has been written).
func (c *Conn) Then(fn func()) { c.w.post(fn) }

// Sync waits until the worker has run everything posted so far,
// including actions deferred by the callbacks.
func (c *Conn) Sync() {
	for i := 0; i < 4; i++ { // deferred actions post again, boundedly
		c.w.call(func() {})
	}
}

// Finished reports whether the filter contexts are gone (on_delete ran).
func (c *Conn) Finished() bool { return c.finished.Load() }

func (c *Conn) invoke(f *connFilter, fn api.Function, ex export, args ...uint64) (abi.Action, bool) {
	if fn == nil {
		return abi.Continue, true
	}
	vm := f.vm
	vm.plug, vm.active, vm.conn, vm.activeID = f.plug, nil, f, f.ctxID
	r, ok := vm.call(fn, ex, args...)
	vm.enterRoot(f.plug)
	return abi.Action(uint32(r)), ok
}

// onTrap: a trapped filter is skipped under fail-open; otherwise the
// connection is closed, as Envoy closes a connection whose filter failed.
func (c *Conn) onTrap(f *connFilter) bool {
	if f.plug.cfg.FailurePolicy == FailOpen {
		f.skipped = true
		return true
	}
	c.closeLocal()
	return false
}

// runRead iterates the read filters from index from, as Envoy's
// onContinueReading: a filter not yet initialized gets on_new_connection
// first; on_downstream_data runs when there is data or end of stream.
// A new chunk restarts from the first filter with the whole held buffer.
func (c *Conn) runRead(from int) {
	for i := from; i < len(c.filters); i++ {
		if c.closed {
			return
		}
		f := c.filters[i]
		f.readPaused = false
		if f.skipped {
			continue
		}
		if !f.initialized {
			f.initialized = true
			a, ok := c.invoke(f, f.vm.net.newConnection, exNewConnection, uint64(f.ctxID))
			if !ok {
				if !c.onTrap(f) {
					return
				}
				continue
			}
			if a == abi.Pause {
				f.readPaused = true
				return
			}
		}
		if len(c.down) == 0 && !c.downEOS {
			continue
		}
		f.inData = abi.DownstreamData
		a, ok := c.invoke(f, f.vm.net.downstreamData, exDownstreamData, uint64(f.ctxID), uint64(len(c.down)), boolArg(c.downEOS))
		f.inData = 0
		if !ok {
			if !c.onTrap(f) {
				return
			}
			continue
		}
		if a == abi.Pause {
			f.readPaused = true
			return
		}
	}
	if c.closed {
		return
	}
	if !c.termInit {
		c.termInit = true
		c.sink.Connect()
	}
	if len(c.down) > 0 || c.downEOS {
		data, eos := c.down, c.downEOS
		c.down = nil
		c.sink.ToUpstream(data, eos)
	}
}

// runWrite iterates the write filters last to first (Envoy adds write
// filters at the front). A pause holds the data until more arrives:
// continuing the upstream direction is UNIMPLEMENTED in Envoy.
func (c *Conn) runWrite() {
	for i := len(c.filters) - 1; i >= 0; i-- {
		if c.closed {
			return
		}
		f := c.filters[i]
		if f.skipped || !f.initialized {
			continue
		}
		f.inData = abi.UpstreamData
		a, ok := c.invoke(f, f.vm.net.upstreamData, exUpstreamData, uint64(f.ctxID), uint64(len(c.up)), boolArg(c.upEOS))
		f.inData = 0
		if !ok {
			if !c.onTrap(f) {
				return
			}
			continue
		}
		if c.upEOS {
			// Envoy reports the upstream close on seeing end of stream
			// from it, with an unknown peer (its Context::onWrite).
			if _, ok := c.invoke(f, f.vm.net.upstreamClose, exUpstreamClose, uint64(f.ctxID), uint64(PeerUnknown)); !ok && !c.onTrap(f) {
				return
			}
		}
		if a == abi.Pause {
			return
		}
	}
	if c.closed {
		return
	}
	data, eos := c.up, c.upEOS
	c.up = nil
	c.sink.ToDownstream(data, eos)
}

func (c *Conn) closeLocal() {
	if c.closed {
		return
	}
	c.sink.CloseConn()
	c.finish(PeerLocal)
}

// finish runs the close callbacks and destroys the contexts: for a
// connection Envoy runs on_done, on_log, on_delete (an HTTP stream logs
// first).
func (c *Conn) finish(peer PeerType) {
	if c.closed {
		return
	}
	c.closed = true
	c.down, c.up = nil, nil
	for _, f := range c.filters {
		if f.skipped || f.ctxID == 0 || f.vm.failed {
			continue
		}
		c.invoke(f, f.vm.net.downstreamClose, exDownstreamClose, uint64(f.ctxID), uint64(peer))
	}
	for _, f := range c.filters {
		if f.ctxID == 0 {
			continue
		}
		for _, cb := range []struct {
			fn api.Function
			ex export
		}{{f.vm.fn.done, exDone}, {f.vm.fn.log, exLog}, {f.vm.fn.delete, exDelete}} {
			if !f.vm.failed {
				c.invoke(f, cb.fn, cb.ex, uint64(f.ctxID))
			}
		}
		delete(f.vm.conns, f.ctxID)
	}
	c.finished.Store(true)
}

// Host calls on a connection context.

func (vm *VM) connBuffer(t abi.BufferType) (*[]byte, bool, abi.Status) {
	f := vm.conn
	if f == nil || vm.active != nil {
		return nil, false, abi.NotFound
	}
	// Envoy keeps the buffer reachable while the filter holds it paused.
	switch {
	case t == abi.DownstreamData && (f.inData == t || f.readPaused):
		return &f.c.down, true, abi.OK
	case t == abi.UpstreamData && f.inData == t:
		return &f.c.up, true, abi.OK
	}
	return nil, false, abi.NotFound
}

// connContinue is proxy_continue_stream(DOWNSTREAM): Envoy's
// continueReading, run once the current callback has returned.
func (vm *VM) connContinue() abi.Status {
	f := vm.conn
	if f == nil || vm.active != nil {
		return abi.OK // an HTTP stream or root context has no connection to resume
	}
	c := f.c
	c.w.post(func() {
		if c.closed || !f.readPaused {
			return
		}
		i := 0
		for i < len(c.filters) && c.filters[i] != f {
			i++
		}
		f.readPaused = false
		c.runRead(i + 1)
	})
	return abi.OK
}

// connClose is proxy_close_stream on a connection: either direction
// closes the downstream connection (Envoy: close(FlushWrite)), after the
// current callback.
func (vm *VM) connClose() abi.Status {
	c := vm.conn.c
	c.w.post(c.closeLocal)
	return abi.OK
}

func (vm *VM) setEffectiveConn(id uint32) bool {
	f, ok := vm.conns[id]
	if !ok {
		return false
	}
	vm.plug, vm.active, vm.conn, vm.activeID = f.plug, nil, f, id
	return true
}

// connProperty answers the connection attributes of Envoy's attribute
// vocabulary that a TCP proxy knows.
func (f *connFilter) property(path []string) ([]byte, abi.Status) {
	c := f.c
	addr := func(a string, part int) ([]byte, abi.Status) {
		if a == "" {
			return nil, abi.NotFound
		}
		if part == 0 {
			return []byte(a), abi.OK
		}
		_, p, err := net.SplitHostPort(a)
		n, err2 := strconv.Atoi(p)
		if err != nil || err2 != nil {
			return nil, abi.NotFound
		}
		return int64Bytes(int64(n)), abi.OK
	}
	key := path[0]
	if len(path) > 1 {
		key += "." + path[1]
	}
	switch key {
	case "connection_id", "connection.id":
		return int64Bytes(int64(c.id)), abi.OK
	case "source.address":
		return addr(c.info.Source, 0)
	case "source.port":
		return addr(c.info.Source, 1)
	case "destination.address":
		return addr(c.info.Destination, 0)
	case "destination.port":
		return addr(c.info.Destination, 1)
	case "upstream.address":
		return addr(c.upstreamAddr, 0)
	case "upstream.port":
		return addr(c.upstreamAddr, 1)
	case "xds.cluster_name":
		if c.termInit && c.info.Cluster != "" {
			return []byte(c.info.Cluster), abi.OK
		}
	case "xds.cluster_metadata":
		if c.termInit && c.info.ClusterMetadata != nil {
			return protoProperty(c.info.ClusterMetadata, path[2:])
		}
	}
	return nil, abi.NotFound
}
