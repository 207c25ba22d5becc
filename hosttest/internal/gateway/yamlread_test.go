package gateway

import (
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
)

// envoyStyle is a bootstrap written as Envoy's own examples and the
// proxy-wasm SDK's are: lower-case enums, typed_configs in TypedStruct.
const envoyStyle = `
static_resources:
  listeners:
  - name: main
    address: { socket_address: { address: 127.0.0.1, port_value: 18000 } }
    filter_chains:
    - filters:
      - name: envoy.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress_http
          codec_type: auto
          route_config:
            virtual_hosts:
            - name: local
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                route: { cluster: web }
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/udpa.type.v1.TypedStruct
              type_url: type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
              value: { suppress_envoy_headers: true }
  clusters:
  - name: web
    connect_timeout: 1s
    type: static
    lb_policy: round_robin
    load_assignment:
      cluster_name: web
      endpoints: [ { lb_endpoints: [ { endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 8099 } } } } ] } ]
`

// TestParseReadsAsEnvoyDoes: enums in any case and TypedStruct wrappers
// give the same bootstrap as the canonical spelling.
func TestParseReadsAsEnvoyDoes(t *testing.T) {
	canonical := strings.NewReplacer(
		"codec_type: auto", "codec_type: AUTO",
		"type: static", "type: STATIC",
		"lb_policy: round_robin", "lb_policy: ROUND_ROBIN",
		`"@type": type.googleapis.com/udpa.type.v1.TypedStruct
              type_url: type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
              value: { suppress_envoy_headers: true }`,
		`"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
              suppress_envoy_headers: true`,
	).Replace(envoyStyle)
	want, err := Parse([]byte(canonical))
	if err != nil {
		t.Fatalf("Parse(canonical) = %v", err)
	}
	for name, doc := range map[string]string{
		"udpa TypedStruct": envoyStyle,
		"xds TypedStruct":  strings.Replace(envoyStyle, "udpa.type.v1.TypedStruct", "xds.type.v3.TypedStruct", 1),
		"camelCase keys":   strings.Replace(envoyStyle, "type_url:", "typeUrl:", 1),
	} {
		t.Run(name, func(t *testing.T) {
			got, err := Parse([]byte(doc))
			if err != nil {
				t.Fatalf("Parse = %v, want the bootstrap Envoy reads", err)
			}
			if !proto.Equal(got, want) {
				t.Errorf("Parse = %v\nwant %v", got, want)
			}
			c := got.GetStaticResources().GetClusters()[0]
			if c.GetType() != clusterv3.Cluster_STATIC || c.GetLbPolicy() != clusterv3.Cluster_ROUND_ROBIN {
				t.Errorf("cluster type, lb_policy = %v, %v", c.GetType(), c.GetLbPolicy())
			}
			hcm := &hcmv3.HttpConnectionManager{}
			if err := got.GetStaticResources().GetListeners()[0].GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(hcm); err != nil {
				t.Fatal(err)
			}
			if hcm.GetCodecType() != hcmv3.HttpConnectionManager_AUTO {
				t.Errorf("codec_type = %v, want AUTO", hcm.GetCodecType())
			}
		})
	}
}

// TestParseErrorsPointAtTheYAML: a mistake is reported with its line in
// the file and the field path, not a position in converted JSON.
func TestParseErrorsPointAtTheYAML(t *testing.T) {
	hcmPath := "static_resources.listeners[0].filter_chains[0].filters[0].typed_config"
	for _, tc := range []struct {
		name, from, to, want string
	}{
		{"misspelt field", `match: { prefix: "/" }`, `match: { prefx: "/" }`,
			"line 18: " + hcmPath + ".route_config.virtual_hosts[0].routes[0].match.prefx: unknown field (did you mean prefix?)"},
		{"YAML boolean as a name", "- name: local", "- name: on",
			`line 15: ` + hcmPath + `.route_config.virtual_hosts[0].name: YAML reads on as a boolean, and a string is expected: quote it ("on")`},
		{"unknown enum value", "codec_type: auto", "codec_type: http9",
			"line 12: " + hcmPath + ".codec_type: unknown value \"http9\"; one of AUTO, HTTP1, HTTP2, HTTP3"},
		{"unknown Any type", "udpa.type.v1.TypedStruct", "envoy.extensions.filters.http.nope.v3.Nope",
			"line 23: " + hcmPath + ".http_filters[0].typed_config.@type: type.googleapis.com/envoy.extensions.filters.http.nope.v3.Nope is not a type this gateway knows"},
		{"misspelt field inside a TypedStruct", "suppress_envoy_headers: true", "suppress_envoy_header: true",
			"line 25: " + hcmPath + ".http_filters[0].typed_config.suppress_envoy_header: unknown field (did you mean suppress_envoy_headers?)"},
		{"a list where a mapping belongs", "socket_address: { address: 127.0.0.1, port_value: 18000 }", "socket_address: [ 127.0.0.1 ]",
			"line 5: static_resources.listeners[0].address.socket_address: expected a mapping (SocketAddress), got a list"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := strings.Replace(envoyStyle, tc.from, tc.to, 1)
			if doc == envoyStyle {
				t.Fatalf("%q is not in the document", tc.from)
			}
			_, err := Parse([]byte(doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse error = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}
