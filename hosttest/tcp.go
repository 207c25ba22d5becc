package hosttest

import (
	"sync"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/concierge-wasm/concierge/hosttest/internal/engine"
)

// Dial opens a TCP connection through the host's filters used as network
// filters (Envoy's envoy.filters.network.wasm, in chain order, before a
// tcp_proxy) to an in-memory upstream the test plays, already connected:
// the filters see source.address 127.0.0.1:40000, destination.address
// 127.0.0.1:10000, upstream.address 127.0.0.1:9000 and, once the chain has
// reached tcp_proxy, xds.cluster_name "upstream" with the metadata that
// options give (TCPClusterMetadata). Each Conn method returns once the
// filters have run, including what they deferred.
func (h *Host) Dial(opts ...DialOption) *Conn {
	info := engine.ConnInfo{Source: "127.0.0.1:40000", Destination: "127.0.0.1:10000", Cluster: "upstream"}
	md := &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{}}
	for _, o := range opts {
		o(&info, md)
	}
	info.ClusterMetadata = md
	c := &Conn{}
	c.c = h.e.NewConn(info, (*connSink)(c))
	c.c.UpstreamConnected("127.0.0.1:9000")
	c.c.Sync()
	return c
}

// DialOption shapes what the filters of a Dial connection see.
type DialOption func(*engine.ConnInfo, *corev3.Metadata)

// TCPCluster names tcp_proxy's cluster (xds.cluster_name; default
// "upstream").
func TCPCluster(name string) DialOption {
	return func(i *engine.ConnInfo, _ *corev3.Metadata) { i.Cluster = name }
}

// TCPClusterMetadata adds the cluster's metadata.filter_metadata[filter]
// (xds.cluster_metadata), as Request.ClusterMetadata does for a request.
func TCPClusterMetadata(filter string, fields map[string]any) DialOption {
	return func(_ *engine.ConnInfo, md *corev3.Metadata) {
		md.FilterMetadata[filter] = mustStruct("xds.cluster_metadata", fields)
	}
}

// Conn is a connection opened by Dial: the test writes as the client
// (Send, CloseWrite, Close) and as the upstream (Reply, ReplyClose), and
// reads what each side received.
type Conn struct {
	c          *engine.Conn
	mu         sync.Mutex
	connected  bool
	up, down   []byte
	upEOS      bool
	downEOS    bool
	closedByUs bool
}

type connSink Conn

func (s *connSink) Connect() { s.mu.Lock(); s.connected = true; s.mu.Unlock() }
func (s *connSink) ToUpstream(b []byte, eos bool) {
	s.mu.Lock()
	s.up, s.upEOS = append(s.up, b...), s.upEOS || eos
	s.mu.Unlock()
}
func (s *connSink) ToDownstream(b []byte, eos bool) {
	s.mu.Lock()
	s.down, s.downEOS = append(s.down, b...), s.downEOS || eos
	s.mu.Unlock()
}
func (s *connSink) CloseConn() { s.mu.Lock(); s.closedByUs = true; s.mu.Unlock() }

// Send writes data as the client.
func (c *Conn) Send(data string) { c.c.Downstream([]byte(data), false); c.c.Sync() }

// CloseWrite half-closes the client side (end of stream downstream).
func (c *Conn) CloseWrite() { c.c.Downstream(nil, true); c.c.Sync() }

// Close closes the connection from the client (a remote close for the
// filters), which ends the filter contexts.
func (c *Conn) Close() { c.c.Closed(engine.PeerRemote); c.c.Sync() }

// Reply writes data as the upstream.
func (c *Conn) Reply(data string) { c.c.Upstream([]byte(data), false); c.c.Sync() }

// ReplyClose half-closes the upstream side (end of stream upstream).
func (c *Conn) ReplyClose() { c.c.Upstream(nil, true); c.c.Sync() }

// Upstream is what reached the upstream so far, and whether the filters
// let it open the upstream connection at all (tcp_proxy's connect).
func (c *Conn) Upstream() (data string, connected bool) {
	c.c.Sync()
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.up), c.connected
}

// Downstream is what the client received so far.
func (c *Conn) Downstream() string {
	c.c.Sync()
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.down)
}

// ClosedByFilter reports whether a filter closed the connection
// (proxy_close_stream).
func (c *Conn) ClosedByFilter() bool {
	c.c.Sync()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closedByUs
}

// Done reports whether the filter contexts are gone (on_delete ran).
func (c *Conn) Done() bool { c.c.Sync(); return c.c.Finished() }
