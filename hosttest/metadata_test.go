package hosttest_test

import (
	"encoding/binary"
	"encoding/hex"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/concierge-wasm/concierge/hosttest"
)

const wasmFilter = "envoy.filters.http.wasm"

var routeFields = map[string]any{
	"auth": "cookie", "n": 2.0, "ok": true,
	"nested": map[string]any{"a": "b"}, "list": []any{"x", "y"},
}

// TestMetadataProperties: route and cluster metadata and the node reach
// the plugin under xds.*, encoded as Envoy encodes them (a whole Metadata
// is its proto bytes, a Struct is proxy-wasm pairs, a Value its raw
// string, 8-byte double or 1-byte bool); the attributes Envoy 1.33
// removed (route_metadata, node, ...) are NOT_FOUND.
func TestMetadataProperties(t *testing.T) {
	h := probeHost(t, `,"start_props":["xds.node.id","xds.node.metadata.region","xds.route_name","node"]`,
		hosttest.Node("gw-1", "edge", map[string]any{"region": "eu-west-1"}))
	if !containsLog(h, "start-prop xds.node.id=gw-1") || !containsLog(h, "start-prop xds.node.metadata.region=eu-west-1") {
		t.Errorf("root context: xds.node not served; logs %v", h.LogsContaining("start-prop"))
	}
	for _, l := range []string{"start-prop xds.route_name=NOTFOUND", "start-prop node=NOTFOUND"} {
		if !containsLog(h, l) {
			t.Errorf("root context: want %q; logs %v", l, h.LogsContaining("start-prop"))
		}
	}

	if n := len(h.LogsContaining("Envoy 1.33 removed the top-level node; read xds.node")); n != 1 {
		t.Errorf("the removed node attribute explained %d times, want once", n)
	}

	wasm := "xds/route_metadata/filter_metadata/" + wasmFilter + "/"
	resp := h.Do(hosttest.GET("/one").
		RouteMetadata(wasmFilter, routeFields).
		RouteMetadata("istio", map[string]any{"team": "payments"}).
		ClusterMetadata("istio", map[string]any{"version": "v2"}).
		Header("x-p", script(
			"get-prop-segs:"+wasm+"auth", "get-prop-segs:"+wasm+"n", "get-prop-segs:"+wasm+"ok",
			"get-prop-segs:"+wasm+"nested/a", "get-prop-segs:"+wasm+"list/1", "get-prop-segs:"+wasm+"list/2",
			"get-prop-segs:"+wasm+"missing", "get-prop-segs:"+strings.TrimSuffix(wasm, "/"),
			"get-prop:xds.route_metadata", "get-prop-segs:xds/route_metadata/filter_metadata/istio/team",
			"get-prop-segs:xds/route_metadata/no_such_field",
			"get-prop-segs:xds/cluster_metadata/filter_metadata/istio/version",
			"get-prop-segs:route_metadata/filter_metadata/"+wasmFilter+"/auth",
			"get-prop:xds.node.id", "get-prop:xds.node.cluster", "get-prop:xds.node.user_agent_name",
			"get-prop:node.id", "get-prop:xds.upstream_host_metadata")))
	wantStatus(t, resp, 200)
	up := resp.Upstream
	prop := func(path string) string { return up.Header("x-p-prop-" + path) }
	wp := strings.ReplaceAll(wasm, "/", ".")
	for path, want := range map[string]string{
		wp + "auth":     "cookie",
		wp + "n":        "hex:" + hex.EncodeToString(float64LE(2)),
		wp + "ok":       "hex:01",
		wp + "nested.a": "b",
		wp + "list.1":   "y",
		wp + "list.2":   "NOTFOUND",
		wp + "missing":  "NOTFOUND",
		"xds.route_metadata.filter_metadata.istio.team":          "payments",
		"xds.route_metadata.no_such_field":                       "NOTFOUND",
		"xds.cluster_metadata.filter_metadata.istio.version":     "v2",
		"route_metadata.filter_metadata." + wasmFilter + ".auth": "NOTFOUND", // removed in Envoy 1.33
		"xds.node.id":                "gw-1",
		"xds.node.cluster":           "edge",
		"xds.node.user_agent_name":   "envoy",
		"node.id":                    "NOTFOUND", // removed in Envoy 1.33
		"xds.upstream_host_metadata": "NOTFOUND",
	} {
		wantHeader(t, path, prop(path), want)
	}

	if !containsLog(h, "get_property(route_metadata): NOT_FOUND: Envoy 1.33 removed the top-level route_metadata; read xds.route_metadata") {
		t.Errorf("reading route_metadata: no hint at xds.route_metadata; logs %v", h.LogsContaining("removed"))
	}

	// The whole Metadata: its proto wire bytes.
	want := &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{}}
	want.FilterMetadata[wasmFilter], _ = structpb.NewStruct(routeFields)
	want.FilterMetadata["istio"], _ = structpb.NewStruct(map[string]any{"team": "payments"})
	var got corev3.Metadata
	if err := proto.Unmarshal(hexValue(t, prop("xds.route_metadata")), &got); err != nil || !proto.Equal(&got, want) {
		t.Errorf("xds.route_metadata = %v (err %v), want %v", &got, err, want)
	}

	// A Struct: pairs, each value encoded by its kind.
	pairs := decodePairs(t, hexValue(t, prop(strings.TrimSuffix(wp, "."))))
	wantPairs := map[string]string{
		"auth": "cookie", "n": string(float64LE(2)), "ok": "\x01",
		"nested": string(encodePairs([][2]string{{"a", "b"}})),
		"list":   string(encodePairs([][2]string{{"x", ""}, {"y", ""}})),
	}
	if len(pairs) != len(wantPairs) {
		t.Errorf("struct pairs = %q, want %q", pairs, wantPairs)
	}
	for _, p := range pairs {
		if wantPairs[p[0]] != p[1] {
			t.Errorf("struct pair %q = %q, want %q", p[0], p[1], wantPairs[p[0]])
		}
	}

	// Without metadata given, there is none to read. Dynamic metadata is
	// present and empty (no filter of the chain writes it).
	resp = h.Do(hosttest.GET("/").Header("x-p", "get-prop:xds.route_metadata get-prop:metadata get-prop:metadata.filter_metadata.x"))
	wantHeader(t, "no route metadata", resp.Upstream.Header("x-p-prop-xds.route_metadata"), "NOTFOUND")
	if got := resp.Upstream.HeaderValues("x-p-prop-metadata"); len(got) != 1 || got[0] != "" {
		t.Errorf("metadata = %q, want present and empty", got)
	}
	wantHeader(t, "metadata.filter_metadata.x", resp.Upstream.Header("x-p-prop-metadata.filter_metadata.x"), "NOTFOUND")

	// Without Node, the node is Envoy's default one.
	h = probeHost(t, "")
	resp = h.Do(hosttest.GET("/").Header("x-p", "get-prop:xds.node.user_agent_name get-prop:xds.node.id"))
	wantHeader(t, "default node user agent", resp.Upstream.Header("x-p-prop-xds.node.user_agent_name"), "envoy")
	if got := resp.Upstream.HeaderValues("x-p-prop-xds.node.id"); len(got) != 1 || got[0] != "" {
		t.Errorf("default xds.node.id = %q, want present and empty", got)
	}
}

func float64LE(f float64) []byte {
	b := make([]byte, 8)
	binary.LittleEndian.PutUint64(b, math.Float64bits(f))
	return b
}

func hexValue(t testing.TB, v string) []byte {
	t.Helper()
	if v == "" {
		return nil
	}
	if !strings.HasPrefix(v, "hex:") {
		return []byte(v)
	}
	b, err := hex.DecodeString(strings.TrimPrefix(v, "hex:"))
	if err != nil {
		t.Fatalf("%q: %v", v, err)
	}
	return b
}

// decodePairs reads proxy-wasm's pairs encoding: a count, each key and
// value length, then each key and value NUL-terminated.
func decodePairs(t testing.TB, b []byte) [][2]string {
	t.Helper()
	if len(b) < 4 {
		t.Fatalf("pairs too short: %x", b)
	}
	n := int(binary.LittleEndian.Uint32(b))
	if n > len(b)/8 {
		t.Fatalf("pairs: count %d in %d bytes: %x", n, len(b), b)
	}
	sizes, data := b[4:], b[4+8*n:]
	out := make([][2]string, n)
	for i := range n {
		k, v := int(binary.LittleEndian.Uint32(sizes[8*i:])), int(binary.LittleEndian.Uint32(sizes[8*i+4:]))
		if k+v+2 > len(data) {
			t.Fatalf("pairs: entry %d overruns: %x", i, b)
		}
		out[i] = [2]string{string(data[:k]), string(data[k+1 : k+1+v])}
		data = data[k+v+2:]
	}
	return out
}

func encodePairs(pairs [][2]string) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(pairs)))
	for _, p := range pairs {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p[0])))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p[1])))
	}
	for _, p := range pairs {
		b = append(append(append(append(b, p[0]...), 0), p[1]...), 0)
	}
	return b
}

// TestHeaderAttributeJoinsValues: request.headers.<name> is every value
// of the header, comma-joined, as Envoy's attribute is (the header map
// call gives only the first).
func TestHeaderAttributeJoinsValues(t *testing.T) {
	h := probeHost(t, "")
	resp := h.Do(hosttest.GET("/").Header("x-multi", "a").Header("x-multi", "b").
		Header("x-p", "get-prop:request.headers.x-multi get-prop:request.headers.x-none"))
	wantHeader(t, "request.headers.x-multi", resp.Upstream.Header("x-p-prop-request.headers.x-multi"), "a,b")
	wantHeader(t, "request.headers.x-none", resp.Upstream.Header("x-p-prop-request.headers.x-none"), "NOTFOUND")
}

// TestGrpcStatusAttribute: response.grpc_status is the response's
// grpc-status, else the HTTP status mapped as Envoy maps it.
func TestGrpcStatusAttribute(t *testing.T) {
	h := probeHost(t, "")
	for _, tc := range []struct {
		grpcStatus string
		status     int
		want       string
	}{
		{"5", 200, "hex:0500000000000000"},
		{"99", 200, "hex:ffffffffffffffff"}, // not a known code: InvalidCode (-1)
		{"", 404, "hex:0c00000000000000"},   // UNIMPLEMENTED
		{"", 503, "hex:0e00000000000000"},   // UNAVAILABLE
		{"", 200, "hex:0200000000000000"},   // UNKNOWN
	} {
		grpcStatus, status := tc.grpcStatus, tc.status
		resp := h.Do(hosttest.GET("/").Header("x-p", "get-prop-resp:response.grpc_status").
			Upstream(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if grpcStatus != "" {
					w.Header().Set("grpc-status", grpcStatus)
				}
				w.WriteHeader(status)
			})))
		wantHeader(t, "grpc_status for "+grpcStatus+"/"+strconv.Itoa(status), resp.Header("x-p-prop-response.grpc_status"), tc.want)
	}
}
