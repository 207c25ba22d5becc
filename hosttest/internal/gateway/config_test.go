package gateway

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const oneRoute = "- name: all\n  match: { prefix: / }\n  route: { cluster: c }"

func oneCluster(extra string) string {
	return staticCluster("c", []string{"9"}, extra)
}

// TestUnsupportedFieldsAreRefused: a field that would change routing or
// what the filters see stops the start, naming the field.
func TestUnsupportedFieldsAreRefused(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"EDS cluster", bootstrap("", oneRoute, "- name: c\n  type: EDS\n  eds_cluster_config: { service_name: c }"),
			"clusters[0] (c).type: EDS is not supported"},
		{"ring hash", bootstrap("", oneRoute, "- name: c\n  type: STATIC\n  lb_policy: RING_HASH\n  load_assignment: { cluster_name: c, endpoints: [ { lb_endpoints: [ { endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 9 } } } } ] } ] }"),
			"clusters[0] (c).lb_policy: RING_HASH is not supported"},
		{"redirect route", bootstrap("", "- name: r\n  match: { prefix: / }\n  redirect: { host_redirect: example.com }", oneCluster("")),
			"routes[0] (r).redirect: not supported by concierge-gateway"},
		{"unknown cluster", bootstrap("", "- name: r\n  match: { prefix: / }\n  route: { cluster: nope }", oneCluster("")),
			`routes[0] (r).route.cluster: unknown cluster "nope"`},
		{"weighted clusters", bootstrap("", "- name: r\n  match: { prefix: / }\n  route: { weighted_clusters: { clusters: [ { name: c, weight: 1 } ] } }", oneCluster("")),
			"routes[0] (r).route.weighted_clusters: not supported"},
		{"query parameter matcher", bootstrap("", "- name: r\n  match: { prefix: /, query_parameters: [ { name: a, present_match: true } ] }\n  route: { cluster: c }", oneCluster("")),
			"routes[0] (r).match.query_parameters: not supported"},
		{"header formatter", bootstrap("", oneRoute+"\n  request_headers_to_add: [ { header: { key: x-ip, value: '%DOWNSTREAM_REMOTE_ADDRESS%' } } ]", oneCluster("")),
			"header value formatters"},
		{"cors", strings.Replace(bootstrap("", oneRoute, oneCluster("")), `domains: ["*"]`, `domains: ["*"]
              cors: { allow_origin_string_match: [ { exact: a } ] }`, 1),
			"virtual_hosts[0] (test).cors: not supported"},
		{"endpoint weights", bootstrap("", oneRoute, "- name: c\n  type: STATIC\n  load_assignment: { cluster_name: c, endpoints: [ { lb_endpoints: [ { load_balancing_weight: 3, endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 9 } } } } ] } ] }"),
			"load_balancing_weight: weights are not supported"},
		{"STATIC with a name", bootstrap("", oneRoute, "- name: c\n  type: STATIC\n  load_assignment: { cluster_name: c, endpoints: [ { lb_endpoints: [ { endpoint: { address: { socket_address: { address: users.internal, port_value: 9 } } } } ] } ] }"),
			`STATIC endpoint "users.internal" is not an IP address`},
		{"missing wasm file", bootstrap(wasmFilter("f", "build/no-such-module.wasm", "{}"), oneRoute, oneCluster("")),
			"open build/no-such-module.wasm: no such file or directory (build the modules with `make build`"},
		{"missing wasm file at a production path", bootstrap(wasmFilter("f", "/etc/envoy/wasm/no-such-module.wasm", "{}"), oneRoute, oneCluster("")),
			"no such file or directory (a production path: to check this bootstrap against a checkout, pass --wasm-dir build to read build/no-such-module.wasm after `make build`)"},
		{"router not last", strings.Replace(bootstrap(wasmFilter("f", "x.wasm", "{}"), oneRoute, oneCluster("")), "          - name: envoy.filters.http.router", "          - name: envoy.filters.http.router\n            typed_config:\n              \"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router\n          - name: envoy.filters.http.router2", 1),
			"the router must be the last http filter"},
		{"unknown filter type", strings.Replace(bootstrap("", oneRoute, oneCluster("")), "envoy.extensions.filters.http.router.v3.Router", "envoy.extensions.filters.http.cors.v3.Cors", 1),
			"envoy.extensions.filters.http.cors.v3.Cors"},
		{"unknown field", strings.Replace(bootstrap("", oneRoute, oneCluster("")), "merge_slashes: true", "merge_slashes: true\n          merge_slashez: true", 1),
			`typed_config.merge_slashez: unknown field (did you mean merge_slashes?)`},
		{"listener filter", strings.Replace(bootstrap("", oneRoute, oneCluster("")), "    filter_chains:\n", "    listener_filters: [ { name: envoy.filters.listener.tls_inspector } ]\n    filter_chains:\n", 1),
			"listeners[0] (ingress).listener_filters: not supported"},
		{"both strip modes", strings.Replace(bootstrap("", oneRoute, oneCluster("")), "merge_slashes: true", "merge_slashes: true\n          strip_any_host_port: true\n          strip_matching_host_port: true", 1),
			"only one of strip_matching_host_port or strip_any_host_port can be set"},
		// The router would then ignore the port that the filters' host
		// rules see: refused rather than emulated.
		{"ignore_port_in_host_matching", strings.Replace(bootstrap("", oneRoute, oneCluster("")), "            name: test\n", "            name: test\n            ignore_port_in_host_matching: true\n", 1),
			"route_config.ignore_port_in_host_matching: not supported"},
		{"invalid proto", strings.Replace(bootstrap("", oneRoute, oneCluster("")), "port_value: 9 }", "port_value: 99999 }", 1),
			"invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := compileErr(t, tc.yaml)
			if got == "" || !strings.Contains(got, tc.want) {
				t.Errorf("Compile error = %q, want it to contain %q", got, tc.want)
			}
			// One mistake, one message: a refused cluster specifier is not
			// also an empty cluster name.
			if strings.Contains(got, `unknown cluster ""`) {
				t.Errorf("Compile error = %q, with a spurious complaint about an empty cluster name", got)
			}
		})
	}
}

// TestMachineryFieldsWarn: a field that only tunes Envoy's machinery is
// accepted with one warning naming it.
func TestMachineryFieldsWarn(t *testing.T) {
	y := bootstrap("", oneRoute, oneCluster(`
outlier_detection: { consecutive_5xx: 5 }
circuit_breakers: { thresholds: [ { max_connections: 10 } ] }`))
	y = strings.Replace(y, "static_resources:", "stats_flush_interval: 5s\nstatic_resources:", 1)
	msg, cfg := compileErr(t, y)
	if msg != "" {
		t.Fatalf("Compile refused: %s", msg)
	}
	want := []string{
		"bootstrap.stats_flush_interval: accepted, not emulated (stats flushing)",
		"clusters[0] (c).outlier_detection: accepted, not emulated",
		"clusters[0] (c).circuit_breakers: accepted, not emulated",
	}
	if len(cfg.Warnings) != len(want) {
		t.Errorf("warnings = %q, want %d", cfg.Warnings, len(want))
	}
	for _, w := range want {
		found := false
		for _, got := range cfg.Warnings {
			found = found || strings.HasPrefix(got, w)
		}
		if !found {
			t.Errorf("warnings %q: none starts with %q", cfg.Warnings, w)
		}
	}
}

// shippedModules builds every module the shipped YAMLs name into one
// directory, as `make build` lays out build/.
func shippedModules(t *testing.T) string {
	dir := t.TempDir()
	for _, name := range []string{"request-id", "jwt-auth", "key-auth", "rate-limit", "circuit-breaker", "response-cache"} {
		b, err := os.ReadFile(module(t, "plugins/"+name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".wasm"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestValidateShippedConfigs runs --mode validate on every bootstrap in
// envoy/: the gateway accepts it and every filter starts with its
// configuration.
func TestValidateShippedConfigs(t *testing.T) {
	wasm := shippedModules(t)
	files, err := filepath.Glob(filepath.Join("..", "..", "..", "envoy", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no envoy/*.yaml (err %v)", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Main([]string{"-c", f, "--mode", "validate", "--concurrency", "1", "--wasm-dir", wasm}, &out, &errb, nil)
			if code != 0 {
				t.Fatalf("concierge-gateway -c %s --mode validate: exit %d\n%s%s", f, code, out.String(), errb.String())
			}
			for _, want := range []string{"filter 1 request-id", "filter 2 key-auth", "filter 3 jwt-auth", "route public: prefix /public/ → cluster users, timeout 5s, filters off: jwt-auth", "configuration '" + f + "' OK"} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("validate output lacks %q:\n%s", want, out.String())
				}
			}
		})
	}
}

func TestMainRefusesWithExitCode1(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte(bootstrap("", "- name: r\n  match: { prefix: / }\n  route: { cluster: nope }", oneCluster(""))), 0o644)
	var out, errb bytes.Buffer
	if code := Main([]string{"-c", bad, "--mode", "validate"}, &out, &errb, nil); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if !strings.Contains(errb.String(), "error initializing configuration '"+bad+"'") || !strings.Contains(errb.String(), `unknown cluster "nope"`) {
		t.Errorf("stderr %q: want Envoy's \"error initializing configuration\" naming the problem", errb.String())
	}
	if code := Main([]string{"--mode", "validate"}, &out, &errb, nil); code != 2 {
		t.Errorf("no -c: exit %d, want 2 (usage)", code)
	}
	if code := Main([]string{"-c", bad, "--log-level", "loud"}, &out, &errb, nil); code != 2 {
		t.Errorf("bad --log-level: exit %d, want 2", code)
	}
}

func TestPathNormalisation(t *testing.T) {
	h := &HCMConfig{NormalizePath: true, MergeSlashes: true, EscSlashes: 2 /* REJECT_REQUEST */}
	for in, want := range map[string]string{
		"/a/b":               "/a/b",
		"/a/./b/../c":        "/a/c",
		"/../../etc/passwd":  "/etc/passwd",
		"/a//b///c?x=//y":    "/a/b/c?x=//y",
		"/%61%62%2e/x":       "/ab./x",
		"/a/%2e%2e/b":        "/b",
		"/a\\b":              "/a/b",
		"/caf%c3%a9":         "/caf%C3%A9",
		"/public/%2E%2E/api": "/api",
	} {
		got, rej := h.normalizePath(in)
		if rej != nil || got != want {
			t.Errorf("normalizePath(%q) = %q, %v; want %q", in, got, rej, want)
		}
	}
	for _, in := range []string{"/a%2fb", "/a%5Cb", "/a%zz"} {
		if _, rej := h.normalizePath(in); rej == nil || rej.status != 400 {
			t.Errorf("normalizePath(%q) = accepted, want 400", in)
		}
	}
}

// TestAuthorityStripping: :authority as Envoy's connection manager leaves
// it (HeaderUtility::stripTrailingHostDot, stripPortFromHost).
func TestAuthorityStripping(t *testing.T) {
	local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8443}
	tests := []struct {
		dot  bool
		mode stripPort
		in   string
		want string
	}{
		{false, keepPort, "a.example.com.:80", "a.example.com.:80"},
		{false, stripAnyPort, "a.example.com:80", "a.example.com"},
		{false, stripAnyPort, "a.example.com:", "a.example.com:"},
		{false, stripAnyPort, "a.example.com:http", "a.example.com:http"},
		{false, stripAnyPort, "a.example.com:99999999999", "a.example.com:99999999999"},
		{false, stripAnyPort, "[::1]:80", "[::1]"},
		{false, stripAnyPort, "[::1]", "[::1]"},
		{false, stripAnyPort, "a.example.com.:80", "a.example.com."},
		{false, stripMatchingPort, "a.example.com:8443", "a.example.com"},
		{false, stripMatchingPort, "a.example.com:80", "a.example.com:80"},
		{true, keepPort, "a.example.com.", "a.example.com"},
		{true, keepPort, "a.example.com.:80", "a.example.com:80"},
		{true, keepPort, "a.example.com..", "a.example.com."},
		{true, keepPort, "[::1]", "[::1]"},
		{true, stripAnyPort, "a.example.com.:80", "a.example.com"},
	}
	for _, tt := range tests {
		h := &HCMConfig{StripTrailingDot: tt.dot, StripPort: tt.mode}
		if got := h.authority(tt.in, local); got != tt.want {
			t.Errorf("authority(%q) with strip_trailing_host_dot %v, strip mode %d = %q, want %q", tt.in, tt.dot, tt.mode, got, tt.want)
		}
	}
}
