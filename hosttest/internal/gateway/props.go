package gateway

import (
	"encoding/binary"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/proto"

	"github.com/concierge-wasm/concierge/hosttest/internal/engine"
)

// streamProps are the attributes Envoy's stream info holds when the HTTP
// filters run (the connection manager has matched the route and set the
// upstream cluster): computed once per route, shared read-only by its
// requests.
type streamProps struct {
	attrs map[string][]byte
	msgs  map[string]proto.Message
}

func orEmpty(md *corev3.Metadata) *corev3.Metadata {
	if md == nil {
		return &corev3.Metadata{}
	}
	return md
}

// listenerProps are what a request sees on this listener before (or
// without) a route: the listener's metadata, direction and filter chain.
func (l *listener) listenerProps() streamProps {
	p := streamProps{attrs: map[string][]byte{}, msgs: map[string]proto.Message{}}
	p.attrs["xds.listener_direction"] = int64LE(int64(l.cfg.Direction))
	p.attrs["xds.filter_chain_name"] = []byte(l.cfg.FilterChainName)
	p.msgs["xds.listener_metadata"] = orEmpty(l.cfg.Metadata)
	return p
}

// routeProps adds the route's: its name and metadata, its virtual host's,
// and, for a route to a cluster, the cluster's name and metadata.
func (l *listener) routeProps(rt *Route) streamProps {
	p := l.listenerProps()
	p.attrs["xds.route_name"] = []byte(rt.Name)
	p.attrs["xds.virtual_host_name"] = []byte(rt.vh.Name)
	p.msgs["xds.route_metadata"] = orEmpty(rt.Metadata)
	p.msgs["xds.virtual_host_metadata"] = orEmpty(rt.vh.Metadata)
	if rt.Cluster != "" {
		p.attrs["xds.cluster_name"] = []byte(rt.Cluster)
		if c := l.g.clusters[rt.Cluster]; c != nil {
			p.msgs["xds.cluster_metadata"] = orEmpty(c.cfg.Metadata)
		}
	}
	return p
}

// initProps computes the listener's and each route's properties.
func (l *listener) initProps() {
	l.props = l.listenerProps()
	if l.hcm == nil || l.hcm.Routes == nil {
		return
	}
	for _, vh := range l.hcm.Routes.VirtualHosts {
		for _, rt := range vh.Routes {
			rt.props = l.routeProps(rt)
		}
	}
}

// node is the bootstrap's node as Envoy's local info holds it, with
// Envoy's user agent name (xds.node.user_agent_name).
func (g *Gateway) node() proto.Message {
	n := &corev3.Node{}
	if bn := g.cfg.Bootstrap.GetNode(); bn != nil {
		n = proto.Clone(bn).(*corev3.Node)
	}
	n.UserAgentName = "envoy"
	return n
}

// upstreamHost serves xds.upstream_host_metadata,
// xds.upstream_host_locality_metadata and upstream.locality for the
// endpoint the router picked.
func (g *Gateway) upstreamHost(cluster, address string) (engine.UpstreamHostInfo, bool) {
	c := g.clusters[cluster]
	if c == nil {
		return engine.UpstreamHostInfo{}, false
	}
	for _, h := range c.snapshot() {
		if h.addr == address {
			loc := h.ep.Locality
			if loc == nil {
				loc = &corev3.Locality{}
			}
			return engine.UpstreamHostInfo{Metadata: orEmpty(h.ep.Metadata), Locality: loc, LocalityMetadata: orEmpty(h.ep.LocalityMetadata)}, true
		}
	}
	return engine.UpstreamHostInfo{}, false
}

func int64LE(v int64) []byte { return binary.LittleEndian.AppendUint64(nil, uint64(v)) }
