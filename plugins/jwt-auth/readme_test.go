//go:build !wasm

package main

// README.md is the reference: its Envoy and Istio snippets must parse into
// Envoy's and Istio's own protos, their configurations must be accepted by
// the filter (and the Envoy one must work in hosttest), and its tables must
// list exactly the fields the filter reads and the metrics it defines.

import (
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	istioext "istio.io/api/extensions/v1alpha1"

	"github.com/concierge-wasm/concierge/envoy/envoytest"
	"github.com/concierge-wasm/concierge/hosttest"
)

func readme(t *testing.T) *envoytest.README { return envoytest.ReadREADME(t, "README.md") }

func TestREADMESnippets(t *testing.T) {
	blocks := readme(t).Blocks("yaml")
	if len(blocks) != 3 {
		t.Fatalf("README.md has %d yaml blocks, want 3 (http_filters, clusters, WasmPlugin)", len(blocks))
	}

	// 1. The http_filters: jwt-auth, then the router.
	filters := envoytest.HTTPFilters(t, blocks[0])
	if len(filters) != 2 {
		t.Fatalf("README http_filters block = %d filters, want jwt-auth and the router", len(filters))
	}
	if filters[1].Name != "envoy.filters.http.router" {
		t.Errorf("README http_filters[1] = %s, want the router last", filters[1].Name)
	}
	w := filters[0].Wasm
	if w == nil {
		t.Fatalf("README http_filters[0] is %s, want the wasm filter", filters[0].Name)
	}
	pc := w.GetConfig()
	if got := pc.GetVmConfig().GetCode().GetLocal().GetFilename(); got != "/etc/envoy/wasm/jwt-auth.wasm" || pc.GetVmConfig().GetRuntime() != "envoy.wasm.runtime.v8" {
		t.Errorf("README vm_config: filename %q runtime %q", got, pc.GetVmConfig().GetRuntime())
	}
	envoyConfig := filters[0].Configuration
	if _, err := parseConfig([]byte(envoyConfig)); err != nil {
		t.Fatalf("README Envoy configuration refused: %v\n%s", err, envoyConfig)
	}

	// 2. The idp cluster.
	var clusters struct {
		Clusters []json.RawMessage `json:"clusters"`
	}
	if err := json.Unmarshal(envoytest.YAMLToJSON(t, blocks[1]), &clusters); err != nil || len(clusters.Clusters) != 1 {
		t.Fatalf("README clusters block = %d clusters (%v), want the idp cluster", len(clusters.Clusters), err)
	}
	c := &clusterv3.Cluster{}
	envoytest.Unmarshal(t, "cluster", clusters.Clusters[0], c)
	envoytest.Validate(t, "cluster", c)
	if c.GetName() != "idp" {
		t.Errorf("README cluster name = %q, want idp (the configuration's http_uri.cluster)", c.GetName())
	}

	// 3. The Istio WasmPlugin.
	wp, pcJSON := envoytest.WasmPlugin(t, blocks[2])
	if wp.GetPhase() != istioext.PluginPhase_AUTHN || wp.GetPriority().GetValue() != 800 || wp.GetFailStrategy() != istioext.FailStrategy_FAIL_CLOSE {
		t.Errorf("README WasmPlugin: phase %v priority %v failStrategy %v, want AUTHN, 800, FAIL_CLOSE", wp.GetPhase(), wp.GetPriority(), wp.GetFailStrategy())
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
	wantStatus(t, h.Do(get("/public/x", "").Route("public")), 200)
	// Without the route name (a host that does not report it) the rule
	// matches nothing and the filter stays on.
	wantDenied(t, h.Do(get("/public/x", "")), 401, "missing token", `Bearer realm="api"`)
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
		if got := envoytest.TableKeys(readme(t).Section(tc.heading)); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("README %s table lists\n  %q\nthe filter reads\n  %q", tc.heading, got, want)
		}
	}
}

// TestREADMEMetricsAndReasons: the metrics table lists the counters the
// filter defines; every denial reason is in the responses table and in the
// per-reason metric row.
func TestREADMEMetricsAndReasons(t *testing.T) {
	want := []string{metricAllowed, metricDenied, metricAnonymous, metricShadowed, metricVerified, metricSpoofed, metricFetches, metricFailures, metricKeysSkipped, metricConflicts,
		metricPrefix + "denied_<reason>_total"}
	sort.Strings(want)
	metrics := readme(t).Section("## Metrics")
	if got := envoytest.TableKeys(metrics); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("README metrics table lists\n  %q\nthe filter defines\n  %q", got, want)
	}
	responses := readme(t).Section("## Responses")
	if !strings.Contains(responses, "`"+errSpoofedIdentity.Error()+"`") {
		t.Errorf("README responses: reason %q missing", errSpoofedIdentity.Error())
	}
	for _, r := range denialReasons {
		if !strings.Contains(metrics, "`"+reasonSlug(r)+"`") {
			t.Errorf("README metrics: reason %q missing from the per-reason row", reasonSlug(r))
		}
		if !strings.Contains(responses, "`"+r.Error()+"`") {
			t.Errorf("README responses: reason %q missing", r.Error())
		}
	}
}
