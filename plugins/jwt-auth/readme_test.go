//go:build !wasm

package main

// README.md is the reference: its Envoy and Istio snippets must parse into
// Envoy's and Istio's own protos, their configurations must be accepted by
// the filter (and the Envoy one must work in hosttest), and its tables must
// list exactly the fields the filter reads and the metrics it defines.

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	wasmhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/wrapperspb"
	istioext "istio.io/api/extensions/v1alpha1"
	"sigs.k8s.io/yaml"

	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/concierge-wasm/concierge/hosttest"
)

func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// readmeBlocks returns the fenced code blocks of README.md in lang, in order.
func readmeBlocks(t *testing.T, lang string) []string {
	t.Helper()
	var out []string
	for _, part := range strings.Split(readme(t), "```"+lang+"\n")[1:] {
		end := strings.Index(part, "```")
		if end < 0 {
			t.Fatalf("README.md: unterminated %s block", lang)
		}
		out = append(out, part[:end])
	}
	return out
}

// readmeSection returns the text under the heading that starts with
// prefix ("## Metrics", "### Provider"), up to the next heading.
func readmeSection(t *testing.T, prefix string) string {
	t.Helper()
	_, rest, ok := strings.Cut(readme(t), "\n"+prefix)
	if !ok {
		t.Fatalf("README.md has no heading %q", prefix)
	}
	if i := strings.Index(rest, "\n#"); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// tableKeys returns the backquoted first cells of a section's table rows.
func tableKeys(section string) []string {
	var out []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z0-9_.<>]+)` \\|").FindAllStringSubmatch(section, -1) {
		out = append(out, m[1])
	}
	sort.Strings(out)
	return out
}

var strict = protojson.UnmarshalOptions{}

func yamlJSON(t *testing.T, block string) []byte {
	t.Helper()
	j, err := yaml.YAMLToJSON([]byte(block))
	if err != nil {
		t.Fatalf("README YAML block does not parse: %v\n%s", err, block)
	}
	return j
}

func validate(t *testing.T, what string, m any) {
	t.Helper()
	if v, ok := m.(interface{ ValidateAll() error }); ok {
		if err := v.ValidateAll(); err != nil {
			t.Errorf("README %s: %v", what, err)
		}
	}
}

func TestREADMESnippets(t *testing.T) {
	blocks := readmeBlocks(t, "yaml")
	if len(blocks) != 3 {
		t.Fatalf("README.md has %d yaml blocks, want 3 (http_filters, clusters, WasmPlugin)", len(blocks))
	}

	// 1. The http_filters: jwt-auth, then the router.
	var filters struct {
		HTTPFilters []json.RawMessage `json:"http_filters"`
	}
	if err := json.Unmarshal(yamlJSON(t, blocks[0]), &filters); err != nil || len(filters.HTTPFilters) != 2 {
		t.Fatalf("README http_filters block = %d filters (%v), want jwt-auth and the router", len(filters.HTTPFilters), err)
	}
	var envoyConfig string
	for i, raw := range filters.HTTPFilters {
		f := &hcmv3.HttpFilter{}
		if err := strict.Unmarshal(raw, f); err != nil {
			t.Fatalf("README http_filters[%d] is not an Envoy HttpFilter: %v", i, err)
		}
		validate(t, "http_filters["+f.GetName()+"]", f)
		inner, err := f.GetTypedConfig().UnmarshalNew()
		if err != nil {
			t.Fatalf("README http_filters[%d].typed_config: %v", i, err)
		}
		validate(t, "http_filters["+f.GetName()+"].typed_config", inner)
		if i == 1 {
			if f.GetName() != "envoy.filters.http.router" {
				t.Errorf("README http_filters[1] = %s, want the router last", f.GetName())
			}
			continue
		}
		w, ok := inner.(*wasmhttpv3.Wasm)
		if !ok {
			t.Fatalf("README http_filters[0] is %T, want the wasm filter", inner)
		}
		pc := w.GetConfig()
		if got := pc.GetVmConfig().GetCode().GetLocal().GetFilename(); got != "/etc/envoy/wasm/jwt-auth.wasm" || pc.GetVmConfig().GetRuntime() != "envoy.wasm.runtime.v8" {
			t.Errorf("README vm_config: filename %q runtime %q", got, pc.GetVmConfig().GetRuntime())
		}
		sv := &wrapperspb.StringValue{}
		if err := pc.GetConfiguration().UnmarshalTo(sv); err != nil {
			t.Fatalf("README configuration is not a google.protobuf.StringValue: %v", err)
		}
		envoyConfig = sv.GetValue()
		if _, err := parseConfig([]byte(envoyConfig)); err != nil {
			t.Fatalf("README Envoy configuration refused: %v\n%s", err, envoyConfig)
		}
	}

	// 2. The idp cluster.
	var clusters struct {
		Clusters []json.RawMessage `json:"clusters"`
	}
	if err := json.Unmarshal(yamlJSON(t, blocks[1]), &clusters); err != nil || len(clusters.Clusters) != 1 {
		t.Fatalf("README clusters block = %d clusters (%v), want the idp cluster", len(clusters.Clusters), err)
	}
	c := &clusterv3.Cluster{}
	if err := strict.Unmarshal(clusters.Clusters[0], c); err != nil {
		t.Fatalf("README cluster: %v", err)
	}
	validate(t, "cluster", c)
	if c.GetName() != "idp" {
		t.Errorf("README cluster name = %q, want idp (the configuration's http_uri.cluster)", c.GetName())
	}

	// 3. The Istio WasmPlugin.
	var manifest struct {
		APIVersion string          `json:"apiVersion"`
		Kind       string          `json:"kind"`
		Spec       json.RawMessage `json:"spec"`
	}
	if err := json.Unmarshal(yamlJSON(t, blocks[2]), &manifest); err != nil {
		t.Fatal(err)
	}
	if manifest.APIVersion != "extensions.istio.io/v1alpha1" || manifest.Kind != "WasmPlugin" {
		t.Errorf("README Istio manifest is %s %s, want extensions.istio.io/v1alpha1 WasmPlugin", manifest.APIVersion, manifest.Kind)
	}
	wp := &istioext.WasmPlugin{}
	if err := strict.Unmarshal(manifest.Spec, wp); err != nil {
		t.Fatalf("README WasmPlugin spec: %v", err)
	}
	validate(t, "WasmPlugin", wp)
	if wp.GetPhase() != istioext.PluginPhase_AUTHN || wp.GetPriority().GetValue() != 800 || wp.GetFailStrategy() != istioext.FailStrategy_FAIL_CLOSE {
		t.Errorf("README WasmPlugin: phase %v priority %v failStrategy %v, want AUTHN, 800, FAIL_CLOSE", wp.GetPhase(), wp.GetPriority(), wp.GetFailStrategy())
	}
	pcJSON, err := protojson.Marshal(wp.GetPluginConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parseConfig(pcJSON); err != nil {
		t.Errorf("README Istio pluginConfig refused: %v\n%s", err, pcJSON)
	}

	// The Envoy configuration does what the README says, in hosttest.
	idp := newIdP(t, 200, testJWKS(t))
	idp.path, idp.host = "/.well-known/jwks.json", "idp.example.com"
	h := newHost(t, envoyConfig, hosttest.Cluster("idp", idp), hosttest.Workers(1))
	now := h.Clock().Now()
	token := func(roles ...string) string {
		return rsToken(t, claimsAt(now, map[string]any{"iss": "https://idp.example.com", "roles": roles}))
	}
	wantStatus(t, h.Do(get("/api/x", token("reader"))), 200)
	wantStatus(t, h.Do(get("/public/x", "")), 200)
	wantDenied(t, h.Do(get("/admin/x", token("reader"))), 403, "insufficient scope", `Bearer realm="api", error="insufficient_scope"`)
	wantStatus(t, h.Do(get("/admin/x", token("admin"))), 200)
	wantDenied(t, h.Do(get("/api/x", "")), 401, "missing token", `Bearer realm="api"`)
}

// TestREADMEConfigTables: each configuration table lists exactly the keys
// the filter reads at that level.
func TestREADMEConfigTables(t *testing.T) {
	for _, tc := range []struct {
		heading string
		want    []string
	}{
		{"### Top level", topLevelFields},
		{"### Provider", providerFields},
		{"### Remote JWKS", []string{"http_uri.uri", "http_uri.cluster", "http_uri.timeout", "cache_duration", "min_refresh"}},
		{"### Rules", []string{"match", "enabled", "shadow", "allow_missing", "require", "providers"}},
	} {
		want := slices.Clone(tc.want)
		sort.Strings(want)
		if got := tableKeys(readmeSection(t, tc.heading)); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("README %s table lists\n  %q\nthe filter reads\n  %q", tc.heading, got, want)
		}
	}
}

// TestREADMEMetricsAndReasons: the metrics table lists the counters the
// filter defines; every denial reason is in the responses table and in the
// per-reason metric row.
func TestREADMEMetricsAndReasons(t *testing.T) {
	want := []string{metricAllowed, metricDenied, metricAnonymous, metricShadowed, metricFetches, metricFailures, metricConflicts,
		metricPrefix + "denied_<reason>_total"}
	sort.Strings(want)
	metrics := readmeSection(t, "## Metrics")
	if got := tableKeys(metrics); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("README metrics table lists\n  %q\nthe filter defines\n  %q", got, want)
	}
	responses := readmeSection(t, "## Responses")
	for _, r := range denialReasons {
		if !strings.Contains(metrics, "`"+reasonSlug(r)+"`") {
			t.Errorf("README metrics: reason %q missing from the per-reason row", reasonSlug(r))
		}
		if !strings.Contains(responses, "`"+r.Error()+"`") {
			t.Errorf("README responses: reason %q missing", r.Error())
		}
	}
}
