package hosttest

import (
	"fmt"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// Node sets the bootstrap's node, which plugins read as xds.node
// (xds.node.id, xds.node.cluster, xds.node.metadata.<key>), from the root
// context too. metadata holds JSON-like values (string, float64, bool,
// nil, []any, map[string]any); anything else panics.
func Node(id, cluster string, metadata map[string]any) Option {
	n := &corev3.Node{Id: id, Cluster: cluster, UserAgentName: "envoy"}
	if metadata != nil {
		n.Metadata = mustStruct("Node", metadata)
	}
	return func(s *settings) { s.opts.Node = n }
}

// RouteMetadata adds the matched route's metadata.filter_metadata[filter],
// which plugins read as xds.route_metadata (a serialised
// envoy.config.core.v3.Metadata; xds.route_metadata.filter_metadata.<filter>.<key>
// is one value). fields are JSON-like values, as for Node.
func (r *Request) RouteMetadata(filter string, fields map[string]any) *Request {
	return r.filterMetadata("xds.route_metadata", filter, fields)
}

// ClusterMetadata adds the upstream cluster's metadata.filter_metadata[filter]
// (xds.cluster_metadata).
func (r *Request) ClusterMetadata(filter string, fields map[string]any) *Request {
	return r.filterMetadata("xds.cluster_metadata", filter, fields)
}

func (r *Request) filterMetadata(attr, filter string, fields map[string]any) *Request {
	if r.metadata == nil {
		r.metadata = map[string]*corev3.Metadata{}
	}
	md := r.metadata[attr]
	if md == nil {
		md = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{}}
		r.metadata[attr] = md
	}
	md.FilterMetadata[filter] = mustStruct(attr, fields)
	return r
}

func mustStruct(what string, fields map[string]any) *structpb.Struct {
	s, err := structpb.NewStruct(fields)
	if err != nil {
		panic(fmt.Sprintf("hosttest: %s: %v", what, err))
	}
	return s
}
