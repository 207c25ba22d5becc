package gateway

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/proto"
)

// TestMetadataAndNodeProperties: the bootstrap's node, the listener's
// metadata, direction and filter chain name, the matched route's and
// virtual host's metadata, the cluster's and, once the router picked it,
// the endpoint's metadata and locality reach the plugin under xds.* and
// upstream.*, with Envoy's encodings; the top-level names Envoy 1.33
// removed are NOT_FOUND.
func TestMetadataAndNodeProperties(t *testing.T) {
	up := echoServer(t, "up")
	probe := module(t, "hosttest/testdata/probe")
	yaml := fmt.Sprintf(`
node:
  id: gw-7
  cluster: edge
  metadata: { region: eu-west-1, replicas: 3 }
static_resources:
  listeners:
  - name: ingress
    address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
    traffic_direction: OUTBOUND
    metadata: { filter_metadata: { acme: { tier: gold } } }
    filter_chains:
    - name: plain
      filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress_http
          route_config:
            virtual_hosts:
            - name: shop
              domains: ["*"]
              metadata: { filter_metadata: { acme: { owner: web } } }
              routes:
              - name: one
                match: { prefix: /one }
                route: { cluster: web }
                metadata:
                  filter_metadata:
                    envoy.filters.http.wasm: { auth: cookie, weight: 1.5, strict: true }
              - match: { prefix: / }
                route: { cluster: web }
          http_filters:
          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                configuration: { "@type": type.googleapis.com/google.protobuf.StringValue, value: '{"name":"probe"}' }
                vm_config: { runtime: envoy.wasm.runtime.v8, code: { local: { filename: %s } } }
          - name: envoy.filters.http.router
            typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
  clusters:
  - name: web
    type: STATIC
    metadata: { filter_metadata: { istio: { version: v2 } } }
    load_assignment:
      cluster_name: web
      endpoints:
      - locality: { region: eu-west-1, zone: eu-west-1a }
        metadata: { filter_metadata: { acme: { rack: r12 } } }
        lb_endpoints:
        - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: %s } } }
          metadata: { filter_metadata: { istio: { canary: "yes" } } }
`, probe, port(t, up))
	g := start(t, yaml)
	c := client(t)
	base := "http://" + g.Addr("ingress")

	wasm := "xds/route_metadata/filter_metadata/envoy.filters.http.wasm/"
	script := strings.Join([]string{
		"get-prop-segs:" + wasm + "auth", "get-prop-segs:" + wasm + "weight", "get-prop-segs:" + wasm + "strict",
		"get-prop-segs:route_metadata/filter_metadata/envoy.filters.http.wasm/auth",
		"get-prop:xds.virtual_host_metadata.filter_metadata.acme.owner",
		"get-prop:xds.cluster_metadata.filter_metadata.istio.version",
		"get-prop:xds.listener_metadata.filter_metadata.acme.tier",
		"get-prop:xds.listener_direction", "get-prop:xds.filter_chain_name",
		"get-prop:xds.node.id", "get-prop:xds.node.cluster", "get-prop:xds.node.metadata.region",
		"get-prop:xds.node.metadata.replicas", "get-prop:xds.node", "get-prop:node.id",
		"get-prop:xds.upstream_host_metadata", "get-prop:upstream.num_endpoints",
		"get-prop-resp:xds.upstream_host_metadata.filter_metadata.istio.canary",
		"get-prop-resp:upstream.locality.zone", "get-prop-resp:upstream.request_attempt_count",
		"get-prop-resp:xds.upstream_host_locality_metadata.filter_metadata.acme.rack",
	}, " ")
	r := do(t, c, "GET", base+"/one", map[string]string{"x-probe": script}, nil)
	if r.status != 200 {
		t.Fatalf("GET /one: %d %s", r.status, r.body)
	}
	e := r.echo(t)
	req := func(p string) string { return strings.Join(e.Headers["x-probe-prop-"+p], ",") }
	w := strings.ReplaceAll(wasm, "/", ".")
	for path, want := range map[string]string{
		w + "auth":   "cookie",
		w + "weight": "hex:" + hex.EncodeToString(binary.LittleEndian.AppendUint64(nil, 0x3ff8000000000000)), // 1.5
		w + "strict": "hex:01",
		"route_metadata.filter_metadata.envoy.filters.http.wasm.auth": "NOTFOUND", // removed in Envoy 1.33
		"xds.virtual_host_metadata.filter_metadata.acme.owner":        "web",
		"xds.cluster_metadata.filter_metadata.istio.version":          "v2",
		"xds.listener_metadata.filter_metadata.acme.tier":             "gold",
		"xds.listener_direction":                                      "hex:0200000000000000", // OUTBOUND
		"xds.filter_chain_name":                                       "plain",
		"xds.node.id":                                                 "gw-7",
		"xds.node.cluster":                                            "edge",
		"xds.node.metadata.region":                                    "eu-west-1",
		"xds.node.metadata.replicas":                                  "hex:0000000000000840", // 3.0
		"node.id":                                                     "NOTFOUND",
		"xds.upstream_host_metadata":                                  "NOTFOUND", // no host picked yet
		"upstream.num_endpoints":                                      "hex:0100000000000000",
	} {
		if got := req(path); got != want {
			t.Errorf("request: %s = %q, want %q", path, got, want)
		}
	}
	var node corev3.Node
	if err := proto.Unmarshal(hexBytes(t, req("xds.node")), &node); err != nil || node.GetId() != "gw-7" || node.GetUserAgentName() != "envoy" {
		t.Errorf("xds.node = %v (err %v), want the bootstrap's node with user_agent_name envoy", &node, err)
	}
	for path, want := range map[string]string{
		"xds.upstream_host_metadata.filter_metadata.istio.canary":       "yes",
		"upstream.locality.zone":                                        "eu-west-1a",
		"upstream.request_attempt_count":                                "hex:0100000000000000",
		"xds.upstream_host_locality_metadata.filter_metadata.acme.rack": "r12",
	} {
		if got := r.header.Get("x-probe-prop-" + path); got != want {
			t.Errorf("response: %s = %q, want %q", path, got, want)
		}
	}

	// A route without metadata has an empty one: present, no keys.
	r = do(t, c, "GET", base+"/other", map[string]string{"x-probe": "get-prop:xds.route_metadata get-prop:xds.route_metadata.filter_metadata.acme"}, nil)
	e = r.echo(t)
	if got := req("xds.route_metadata"); got != "" || len(e.Headers["x-probe-prop-xds.route_metadata"]) != 1 {
		t.Errorf("xds.route_metadata of a route without metadata = %q, want present and empty", e.Headers["x-probe-prop-xds.route_metadata"])
	}
	if got := req("xds.route_metadata.filter_metadata.acme"); got != "NOTFOUND" {
		t.Errorf("missing filter_metadata key = %q, want NOTFOUND", got)
	}
}

func hexBytes(t testing.TB, v string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.TrimPrefix(v, "hex:"))
	if err != nil {
		t.Fatalf("%q: %v", v, err)
	}
	return b
}

// TestTwoFiltersWithoutConfigName: two envoy.filters.http.wasm without
// config.name (the Go SDK's dispatch_call_on_tick) load and both run, and
// each reads plugin_name as Envoy gives it: config.name, here empty.
func TestTwoFiltersWithoutConfigName(t *testing.T) {
	one := echoServer(t, "one")
	mod := module(t, "hosttest/testdata/probe")
	bare := func(cfg string) string {
		return fmt.Sprintf(`- name: envoy.filters.http.wasm
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
    config:
      configuration: { "@type": type.googleapis.com/google.protobuf.StringValue, value: '%s' }
      vm_config: { runtime: envoy.wasm.runtime.v8, code: { local: { filename: %s } } }
`, cfg, mod)
	}
	routes := `
- match: { prefix: / }
  route: { cluster: one }
`
	g := start(t, bootstrap(bare(`{"name":"a"}`)+bare(`{"name":"b"}`), routes, staticCluster("one", []string{port(t, one)}, "")))
	r := do(t, client(t), "GET", "http://"+g.Addr("ingress")+"/", map[string]string{"x-a": "get-prop:plugin_name", "x-b": "get-prop:plugin_name"}, nil)
	e := r.echo(t)
	for _, h := range []string{"x-a-prop-plugin_name", "x-b-prop-plugin_name"} {
		if got := e.Headers[h]; len(got) != 1 || got[0] != "" {
			t.Errorf("%s = %q, want one empty value (the filter ran; config.name is empty)", h, got)
		}
	}
}

// TestRequestProtocol: request.protocol is the protocol the client spoke.
func TestRequestProtocol(t *testing.T) {
	one := echoServer(t, "one")
	g := start(t, bootstrap(wasmFilter("probe", module(t, "hosttest/testdata/probe"), `{"name":"probe"}`),
		"- match: { prefix: / }\n  route: { cluster: one }", staticCluster("one", []string{port(t, one)}, "")))
	h2 := &http.Transport{Protocols: new(http.Protocols)}
	h2.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(h2.CloseIdleConnections)
	for name, c := range map[string]*http.Client{"HTTP/1.1": client(t), "HTTP/2": {Transport: h2, Timeout: 5 * time.Second}} {
		r := do(t, c, "GET", "http://"+g.Addr("ingress")+"/", map[string]string{"x-probe": "get-prop:request.protocol"}, nil)
		if got := r.echo(t).Headers["x-probe-prop-request.protocol"]; len(got) != 1 || got[0] != name {
			t.Errorf("%s client: request.protocol = %q, want %q", name, got, name)
		}
	}
}
