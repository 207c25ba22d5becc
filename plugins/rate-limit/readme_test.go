//go:build !wasm

package main

// README.md is the reference: its Envoy and Istio snippets must parse into
// Envoy's and Istio's own protos, their configurations must be accepted by
// the filter (and work in hosttest), the rate limit service's configuration
// must match what the filter sends, and its tables must list exactly the
// fields the filter reads and the metrics it defines.

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	istioext "istio.io/api/extensions/v1alpha1"
	"sigs.k8s.io/yaml"

	"github.com/concierge-wasm/concierge/envoy/envoytest"
	"github.com/concierge-wasm/concierge/hosttest"
)

func readme(t *testing.T) *envoytest.README { return envoytest.ReadREADME(t, "README.md") }

func TestREADMESnippets(t *testing.T) {
	blocks := readme(t).Blocks("yaml")
	if len(blocks) != 5 {
		t.Fatalf("README.md has %d yaml blocks, want 5 (http_filters, http_filters with global, clusters, service config, WasmPlugin)", len(blocks))
	}
	var configs []string
	for _, i := range []int{0, 1} {
		filters := envoytest.HTTPFilters(t, blocks[i])
		if len(filters) != 2 || filters[1].Name != "envoy.filters.http.router" || filters[0].Wasm == nil {
			t.Fatalf("README http_filters block %d: want rate-limit then the router", i)
		}
		pc := filters[0].Wasm.GetConfig()
		if got := pc.GetVmConfig().GetCode().GetLocal().GetFilename(); got != "/etc/envoy/wasm/rate-limit.wasm" || pc.GetVmConfig().GetVmId() != "rate-limit" {
			t.Errorf("README block %d vm_config: filename %q vm_id %q", i, got, pc.GetVmConfig().GetVmId())
		}
		if _, err := parseConfig([]byte(filters[0].Configuration)); err != nil {
			t.Fatalf("README Envoy configuration %d refused: %v\n%s", i, err, filters[0].Configuration)
		}
		configs = append(configs, filters[0].Configuration)
	}

	var clusters struct {
		Clusters []json.RawMessage `json:"clusters"`
	}
	if err := json.Unmarshal(envoytest.YAMLToJSON(t, blocks[2]), &clusters); err != nil || len(clusters.Clusters) != 1 {
		t.Fatalf("README clusters block = %d clusters (%v), want the ratelimit cluster", len(clusters.Clusters), err)
	}
	c := &clusterv3.Cluster{}
	envoytest.Unmarshal(t, "cluster", clusters.Clusters[0], c)
	envoytest.Validate(t, "cluster", c)
	global, _ := parseConfig([]byte(configs[1]))
	if c.GetName() != global.global.cluster {
		t.Errorf("README cluster name = %q, want %q (the configuration's global.cluster)", c.GetName(), global.global.cluster)
	}

	// The service's configuration: same domain, a descriptor for each key
	// part the filter sends.
	var svc struct {
		Domain      string `json:"domain"`
		Descriptors []struct {
			Key       string `json:"key"`
			RateLimit struct {
				Unit            string `json:"unit"`
				RequestsPerUnit int    `json:"requests_per_unit"`
			} `json:"rate_limit"`
		} `json:"descriptors"`
	}
	if err := yaml.UnmarshalStrict([]byte(blocks[3]), &svc); err != nil {
		t.Fatalf("README service configuration: %v", err)
	}
	if svc.Domain != global.global.domain {
		t.Errorf("service domain %q, filter domain %q", svc.Domain, global.global.domain)
	}
	var keys []string
	for _, d := range svc.Descriptors {
		keys = append(keys, d.Key)
		if d.RateLimit.RequestsPerUnit <= 0 || d.RateLimit.Unit == "" {
			t.Errorf("service descriptor %s has no rate_limit", d.Key)
		}
	}
	var sent []string
	for _, alt := range global.key {
		for _, p := range alt {
			sent = append(sent, p.descriptorKey())
		}
	}
	if strings.Join(keys, " ") != strings.Join(sent, " ") {
		t.Errorf("service descriptors %v, filter sends %v", keys, sent)
	}

	wp, pcJSON := envoytest.WasmPlugin(t, blocks[4])
	if wp.GetPhase() != istioext.PluginPhase_AUTHZ || wp.GetPriority().GetValue() != 500 || wp.GetFailStrategy() != istioext.FailStrategy_FAIL_OPEN {
		t.Errorf("README WasmPlugin: phase %v priority %v failStrategy %v, want AUTHZ, 500, FAIL_OPEN", wp.GetPhase(), wp.GetPriority(), wp.GetFailStrategy())
	}
	if _, err := parseConfig(pcJSON); err != nil {
		t.Errorf("README Istio pluginConfig refused: %v\n%s", err, pcJSON)
	}

	// The first Envoy configuration does what the README says, in hosttest.
	h := newIdentityHost(t, configs[0], hosttest.Workers(1))
	for i := 0; i < 5; i++ {
		wantStatus(t, h.Do(from("198.51.100.1", "/api/orders/1")), 200)
	}
	r := h.Do(from("198.51.100.1", "/api/orders/1"))
	wantStatus(t, r, 429)
	wantHeader(t, r, "ratelimit", `"default";r=0;t=1`)
	for i := 0; i < 30; i++ {
		wantStatus(t, h.Do(from("198.51.100.1", "/healthz")), 200)
	}
	for i := 0; i < 50; i++ {
		wantStatus(t, h.Do(asIdentity(from("198.51.100.1", "/api/users"), "partner-acme")), 200)
	}
	// Behind the trusted proxy, clients are told apart by x-forwarded-for.
	for i := 0; i < 20; i++ {
		wantStatus(t, h.Do(from("10.1.1.1", "/api/users").Header("x-forwarded-for", "203.0.113.5")), 200)
	}
	wantStatus(t, h.Do(from("10.1.1.1", "/api/users").Header("x-forwarded-for", "203.0.113.5")), 429)
	wantStatus(t, h.Do(from("10.1.1.1", "/api/users").Header("x-forwarded-for", "203.0.113.6")), 200)
}

// TestREADMEConfigTables: each configuration table lists exactly the keys
// the filter reads at that level (fullConfig sets all of them).
func TestREADMEConfigTables(t *testing.T) {
	var full map[string]json.RawMessage
	if err := json.Unmarshal([]byte(fullConfig), &full); err != nil {
		t.Fatal(err)
	}
	var top []string
	for k := range full {
		top = append(top, k)
	}
	for _, tc := range []struct {
		heading string
		want    []string
	}{
		{"### Top level", top},
		{"### Limit", []string{"name", "max_tokens", "tokens_per_fill", "fill_interval", "requests", "per"}},
		{"### Override", []string{"identity", "limits"}},
		{"### Global", []string{"cluster", "authority", "path", "domain", "timeout", "failure_mode"}},
		{"### Rules", []string{"match", "enabled", "shadow", "limits", "overrides"}},
	} {
		sort.Strings(tc.want)
		if got := envoytest.TableKeys(readme(t).Section(tc.heading)); strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("README %s table lists\n  %q\nthe filter reads\n  %q", tc.heading, got, tc.want)
		}
	}
}

// TestREADMEMetricsTable: the metrics table lists the counters the filter
// defines, and no other.
func TestREADMEMetricsTable(t *testing.T) {
	want := append([]string(nil), definedMetrics...)
	sort.Strings(want)
	if got := envoytest.TableKeys(readme(t).Section("## Metrics")); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("README metrics table lists\n  %q\nthe filter defines\n  %q", got, want)
	}
	h := newHost(t, `{"limits":[{"requests":1,"per":"1s"}]}`, hosttest.Workers(1))
	for _, m := range definedMetrics {
		if _, ok := h.Metric(m); !ok {
			t.Errorf("metric %s is not defined by the module", m)
		}
	}
}
