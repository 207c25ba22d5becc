package engine

import (
	"encoding/binary"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/proto"

	"github.com/concierge-wasm/concierge/hosttest/internal/abi"
)

// Property values use Envoy's encodings: strings raw, integers 8-byte
// little-endian, booleans 1 byte, timestamps and durations int64 ns, maps
// as serialised pairs.

func int64Bytes(v int64) []byte {
	b := make([]byte, 8)
	binary.LittleEndian.PutUint64(b, uint64(v))
	return b
}

func hcGetProperty(vm *VM, s []uint64) abi.Status {
	raw, ok := vm.readString(u32(s[0]), u32(s[1]))
	if !ok {
		return abi.InvalidMemoryAccess
	}
	v, st := vm.property(strings.Split(raw, "\x00"), raw)
	if st != abi.OK {
		return st
	}
	return okIf(vm.copyOut(v, u32(s[2]), u32(s[3])))
}

// hcSetProperty stores filter state "wasm.<path>", visible to every later
// filter of the same stream and to no other stream. Without a stream
// (root context) there is no stream info: NOT_FOUND.
func hcSetProperty(vm *VM, s []uint64) abi.Status {
	path, ok := vm.readString(u32(s[0]), u32(s[1]))
	val, ok2 := vm.read(u32(s[2]), u32(s[3]))
	if !ok || !ok2 {
		return abi.InvalidMemoryAccess
	}
	f := vm.active
	if f == nil {
		return abi.NotFound
	}
	if f.s.filterState == nil { // made on first write: most streams have none
		f.s.filterState = map[string][]byte{}
	}
	f.s.filterState["wasm."+path] = val
	return abi.OK
}

func (vm *VM) property(path []string, raw string) ([]byte, abi.Status) {
	if len(path) == 0 || path[0] == "" {
		return nil, abi.NotFound
	}
	switch raw {
	case "plugin_name":
		return []byte(vm.plug.cfg.PluginName), abi.OK
	case "plugin_root_id":
		return []byte(vm.plug.cfg.RootID), abi.OK
	case "plugin_vm_id":
		return []byte(vm.base.VMID), abi.OK
	}
	// The node comes from the server's local info: root contexts read it
	// too.
	if len(path) >= 2 && path[0] == "xds" && path[1] == "node" {
		if vm.host.opts.Node == nil {
			return nil, abi.NotFound
		}
		return protoProperty(vm.host.opts.Node, path[2:])
	}
	if removedProps[path[0]] {
		vm.warnRemovedProp(path[0])
		return nil, abi.NotFound
	}
	f := vm.active
	if f == nil && vm.conn != nil {
		return vm.conn.property(path)
	}
	if f == nil {
		return nil, abi.NotFound // a root context has no stream info
	}
	s := f.s
	if v, ok := s.req.Attributes[strings.Join(path, ".")]; ok {
		return v, abi.OK
	}
	if path[0] == "metadata" {
		// Dynamic metadata: only Envoy's own filters write it (no host
		// call sets it), and the chain has none before the router.
		return protoProperty(&corev3.Metadata{}, path[1:])
	}
	// Message-valued attributes are all xds.* or upstream.locality.
	if len(path) >= 2 && (path[0] == "xds" || path[0] == "upstream") {
		key := path[0] + "." + path[1]
		if m, ok := s.req.Messages[key]; ok && m != nil {
			return protoProperty(m, path[2:])
		}
		if m := s.upstreamHostMessage(key); m != nil {
			return protoProperty(m, path[2:])
		}
	}
	if v, ok := s.filterState["wasm."+raw]; ok {
		return v, abi.OK
	}
	if path[0] == "filter_state" && len(path) == 2 {
		if v, ok := s.filterState[path[1]]; ok {
			return v, abi.OK
		}
		return nil, abi.NotFound
	}
	v, ok := s.attribute(path)
	if !ok {
		return nil, abi.NotFound
	}
	return v, abi.OK
}

func (s *Stream) reqHeader(key string) (string, bool) {
	if s.headers[dec] == nil {
		return "", false
	}
	return s.headers[dec].get(key)
}

// attribute computes the Envoy attributes hosttest knows
// (https://www.envoyproxy.io/docs/envoy/latest/intro/arch_overview/advanced/attributes).
func (s *Stream) attribute(path []string) ([]byte, bool) {
	str := func(v string, ok bool) ([]byte, bool) {
		if !ok {
			return nil, false
		}
		return []byte(v), true
	}
	if len(path) == 1 {
		switch path[0] {
		case "connection_id":
			return int64Bytes(int64(s.id)), true
		}
		return nil, false
	}
	key := path[0] + "." + path[1]
	switch key {
	case "request.path":
		return str(s.reqHeader(":path"))
	case "request.url_path":
		p, ok := s.reqHeader(":path")
		if i := strings.IndexByte(p, '?'); i >= 0 {
			p = p[:i]
		}
		return str(p, ok)
	case "request.query":
		p, ok := s.reqHeader(":path")
		q := ""
		if i := strings.IndexByte(p, '?'); i >= 0 {
			q = p[i+1:]
		}
		return str(q, ok)
	case "request.host":
		return str(s.reqHeader(":authority"))
	case "request.scheme":
		return str(s.reqHeader(":scheme"))
	case "request.method":
		return str(s.reqHeader(":method"))
	case "request.referer":
		return str(s.reqHeader("referer"))
	case "request.useragent":
		return str(s.reqHeader("user-agent"))
	case "request.id":
		return str(s.reqHeader("x-request-id"))
	case "request.protocol":
		if s.req.Protocol != "" {
			return []byte(s.req.Protocol), true
		}
		return []byte("HTTP/1.1"), true
	case "request.time":
		return int64Bytes(s.started.UnixNano()), true
	case "request.duration":
		if !s.finished && !s.sentHeaders {
			return nil, false
		}
		return int64Bytes(int64(s.host.clock.Now().Sub(s.started))), true
	case "request.size":
		// Envoy: the content-length header if there is one (nothing if
		// it is not a number), else the bytes received.
		if cl, ok := s.reqHeader("content-length"); ok {
			n, err := strconv.ParseInt(cl, 10, 64)
			return int64Bytes(n), err == nil
		}
		return int64Bytes(int64(s.reqBytes)), true
	case "request.total_size":
		return int64Bytes(int64(s.reqBytes + headerBytes(s.headers[dec]))), true
	case "request.headers":
		if len(path) == 3 {
			return str(allValues(s.headers[dec], strings.ToLower(path[2])))
		}
		if s.headers[dec] == nil {
			return nil, false
		}
		return abi.EncodePairs(s.headers[dec].pairs), true
	case "response.code":
		if !s.encodeStarted || s.headers[enc] == nil {
			return nil, false
		}
		v, _ := s.headers[enc].get(":status")
		n, _ := strconv.Atoi(v)
		return int64Bytes(int64(n)), true
	case "response.grpc_status":
		return s.grpcStatus()
	case "response.code_details":
		if !s.encodeStarted {
			return nil, false
		}
		d := s.result.Details
		return []byte(d), true
	case "response.headers":
		if !s.encodeStarted || s.headers[enc] == nil {
			return nil, false
		}
		if len(path) == 3 {
			return str(allValues(s.headers[enc], strings.ToLower(path[2])))
		}
		return abi.EncodePairs(s.headers[enc].pairs), true
	case "response.trailers":
		if s.trailers[enc] == nil {
			return nil, false
		}
		return abi.EncodePairs(s.trailers[enc].pairs), true
	case "response.size":
		if !s.encodeStarted {
			return nil, false
		}
		return int64Bytes(int64(s.respBytes)), true
	case "response.total_size":
		if !s.encodeStarted {
			return nil, false
		}
		return int64Bytes(int64(s.respBytes + headerBytes(s.headers[enc]) + headerBytes(s.trailers[enc]))), true
	case "response.flags":
		return int64Bytes(int64(s.flags)), true
	case "upstream.address":
		return str(s.upstreamHost, s.upstreamHost != "")
	case "upstream.port":
		if s.upstreamHost == "" {
			return nil, false
		}
		return portOf(s.upstreamHost)
	case "upstream.transport_failure_reason":
		// Present, maybe empty, once the router picked a host.
		return str(s.transportFailure, s.upstreamHost != "")
	case "source.address":
		return []byte(s.req.Source), true
	case "source.port":
		return portOf(s.req.Source)
	case "destination.address":
		return []byte(s.req.Destination), true
	case "destination.port":
		return portOf(s.req.Destination)
	case "upstream.num_endpoints":
		cluster, ok := s.req.Attributes["xds.cluster_name"]
		if !ok || s.host.opts.ClusterEndpoints == nil {
			return nil, false
		}
		n, ok := s.host.opts.ClusterEndpoints(string(cluster))
		return int64Bytes(int64(n)), ok
	case "upstream.request_attempt_count":
		// Envoy: attemptCount().value_or(0); the gateway's router makes
		// one attempt.
		if s.upstreamHost == "" {
			return int64Bytes(0), true
		}
		return int64Bytes(1), true
	case "connection.mtls":
		return []byte{0}, true
	case "connection.requested_server_name":
		return []byte{}, true // no TLS: no SNI, present and empty
	case "connection.id":
		return int64Bytes(int64(s.id)), true
	case "request.headers_bytes":
		return int64Bytes(int64(headerBytes(s.headers[dec]))), true
	case "response.headers_bytes":
		return int64Bytes(int64(headerBytes(s.headers[enc]))), true
	}
	return nil, false
}

// removedProps are the top-level attributes Envoy 1.33 removed in favour
// of xds.<name> (its release notes: "Remove previously deprecated xDS
// attributes from get_property"). They are NOT_FOUND, as there; plugins
// written for older Envoys read them, so the host says why, once per filter.
var removedProps = map[string]bool{
	"node": true, "cluster_name": true, "cluster_metadata": true, "listener_direction": true,
	"listener_metadata": true, "route_name": true, "route_metadata": true, "upstream_host_metadata": true,
}

func (vm *VM) warnRemovedProp(name string) {
	if _, seen := vm.host.removedPropsWarned.LoadOrStore(vm.plug.cfg.Name+"\x00"+name, true); seen {
		return
	}
	vm.host.log(LogEntry{Time: time.Now(), Level: LevelWarn, Filter: vm.plug.cfg.Name, Worker: vm.w.index,
		Message: fmt.Sprintf("get_property(%s): NOT_FOUND: Envoy 1.33 removed the top-level %s; read xds.%s", name, name, name)})
}

// upstreamHostMessage is xds.upstream_host_metadata,
// xds.upstream_host_locality_metadata or upstream.locality of the endpoint the router picked, nil before it picked one.
func (s *Stream) upstreamHostMessage(attr string) proto.Message {
	if attr != "xds.upstream_host_metadata" && attr != "upstream.locality" && attr != "xds.upstream_host_locality_metadata" {
		return nil
	}
	lookup := s.host.opts.UpstreamHost
	if lookup == nil || s.upstreamHost == "" {
		return nil
	}
	h, ok := lookup(string(s.req.Attributes["xds.cluster_name"]), s.upstreamHost)
	if !ok {
		return nil
	}
	switch attr {
	case "upstream.locality":
		return h.Locality
	case "xds.upstream_host_locality_metadata":
		return h.LocalityMetadata
	}
	return h.Metadata
}

// grpcStatus is Envoy's Grpc::Common::getGrpcStatus: grpc-status from the
// trailers, else from the headers (-1 when not a known code), else mapped
// from the HTTP status as gRPC's http-grpc-status-mapping does.
func (s *Stream) grpcStatus() ([]byte, bool) {
	for _, m := range []*headerMap{s.trailers[enc], s.headers[enc]} {
		if m == nil {
			continue
		}
		if v, ok := m.get("grpc-status"); ok && v != "" {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil || n > 16 {
				return int64Bytes(-1), true
			}
			return int64Bytes(int64(n)), true
		}
	}
	if !s.encodeStarted || s.headers[enc] == nil {
		return nil, false
	}
	code, _ := s.headers[enc].get(":status")
	switch code {
	case "400":
		return int64Bytes(13), true // INTERNAL
	case "401":
		return int64Bytes(16), true // UNAUTHENTICATED
	case "403":
		return int64Bytes(7), true // PERMISSION_DENIED
	case "404":
		return int64Bytes(12), true // UNIMPLEMENTED
	case "429", "502", "503", "504":
		return int64Bytes(14), true // UNAVAILABLE
	}
	return int64Bytes(2), true // UNKNOWN
}

// allValues is one header as Envoy's attributes give it: every value,
// comma-joined (GetAllOfHeaderAsString), where the get_header_map_value
// call gives only the first.
func allValues(m *headerMap, key string) (string, bool) {
	if m == nil {
		return "", false
	}
	var out string
	found := false
	for _, p := range m.pairs {
		if p.Key != key {
			continue
		}
		if found {
			out += ","
		}
		out, found = out+p.Value, true
	}
	return out, found
}

// headerBytes approximates a header map's size on the wire, as Envoy's
// byteSize() does: keys and values.
func headerBytes(m *headerMap) int {
	if m == nil {
		return 0
	}
	n := 0
	for _, p := range m.pairs {
		n += len(p.Key) + len(p.Value)
	}
	return n
}

func portOf(addr string) ([]byte, bool) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, false
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return nil, false
	}
	return int64Bytes(int64(n)), true
}
