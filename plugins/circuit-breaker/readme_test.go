//go:build !wasm

package main

// README.md is the reference: its Envoy and Istio snippets must parse into
// Envoy's and Istio's own protos, their configurations must be accepted by
// the filter (and the Envoy one must work in hosttest), and its tables must
// list exactly the fields the filter reads and the metrics it defines.

import (
	"encoding/json"
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

	// 1. The http_filters: circuit-breaker, then the router.
	filters := envoytest.HTTPFilters(t, blocks[0])
	if len(filters) != 2 || filters[1].Name != "envoy.filters.http.router" {
		t.Fatalf("README http_filters block = %v, want circuit-breaker and the router", filters)
	}
	w := filters[0].Wasm
	if w == nil {
		t.Fatalf("README http_filters[0] is %s, want the wasm filter", filters[0].Name)
	}
	pc := w.GetConfig()
	if got := pc.GetVmConfig().GetCode().GetLocal().GetFilename(); got != "/etc/envoy/wasm/circuit-breaker.wasm" || pc.GetVmConfig().GetRuntime() != "envoy.wasm.runtime.v8" {
		t.Errorf("README vm_config: filename %q runtime %q", got, pc.GetVmConfig().GetRuntime())
	}
	envoyConfig := filters[0].Configuration
	if _, err := parseConfig([]byte(envoyConfig)); err != nil {
		t.Fatalf("README Envoy configuration refused: %v\n%s", err, envoyConfig)
	}

	// 2. The guarded cluster, with outlier detection and circuit breakers.
	var clusters struct {
		Clusters []json.RawMessage `json:"clusters"`
	}
	if err := json.Unmarshal(envoytest.YAMLToJSON(t, blocks[1]), &clusters); err != nil || len(clusters.Clusters) != 1 {
		t.Fatalf("README clusters block = %d clusters (%v), want one", len(clusters.Clusters), err)
	}
	c := &clusterv3.Cluster{}
	envoytest.Unmarshal(t, "cluster", clusters.Clusters[0], c)
	envoytest.Validate(t, "cluster", c)
	if c.GetOutlierDetection() == nil || c.GetCircuitBreakers() == nil {
		t.Errorf("README cluster: want outlier_detection and circuit_breakers beside the filter")
	}

	// 3. The Istio WasmPlugin: no phase (last, before the router).
	wp, pcJSON := envoytest.WasmPlugin(t, blocks[2])
	if wp.GetPhase() != istioext.PluginPhase_UNSPECIFIED_PHASE || wp.GetFailStrategy() != istioext.FailStrategy_FAIL_OPEN {
		t.Errorf("README WasmPlugin: phase %v failStrategy %v, want unspecified, FAIL_OPEN", wp.GetPhase(), wp.GetFailStrategy())
	}
	cfg, err := parseConfig(pcJSON)
	if err != nil {
		t.Fatalf("README Istio pluginConfig refused: %v\n%s", err, pcJSON)
	}
	if s, ok := cfg.forcedState([]byte("outbound|8080||legacy.default.svc.cluster.local")); !ok || s != open {
		t.Errorf("README Istio force_state not read as open: %v %v", s, ok)
	}

	// The Envoy configuration does what the README says, in hosttest:
	// 5 failures open the breaker for 30s, and /healthz is never guarded.
	be := newBackend()
	h := newHost(t, envoyConfig, hosttest.Upstream(be), hosttest.Workers(1))
	trip(t, h, be, 5)
	wantRejected(t, h.Do(get("/x")), "30")
	if r := h.Do(get("/healthz")); r.LocalReplyBy != "" {
		t.Errorf("/healthz: %v, want it through (rule enabled: false)", r)
	}
}

// fullConfig sets every option; TestREADMEConfigTable compares its fields
// with the table.
const fullConfig = `{
	"scope": "cluster",
	"consecutive_failures": 5,
	"failure_rate": {"threshold": 0.5, "minimum_requests": 20, "window": "10s"},
	"failure_statuses": [500, 503],
	"slow_call": {"duration": "2s"},
	"open_duration": "30s",
	"backoff_multiplier": 2,
	"max_open_duration": "5m",
	"half_open_requests": 2,
	"success_threshold": 2,
	"max_concurrent": 100,
	"force_state": {"legacy": "open"},
	"error_format": "json",
	"shadow": false,
	"rules": [{"match": {"prefix": "/reports"}, "slow_call": {"duration": "10s"}}]
}`

func TestREADMEConfigTable(t *testing.T) {
	if _, err := parseConfig([]byte(fullConfig)); err != nil {
		t.Fatalf("fullConfig refused: %v", err)
	}
	var full map[string]json.RawMessage
	if err := json.Unmarshal([]byte(fullConfig), &full); err != nil {
		t.Fatal(err)
	}
	var want []string
	for k, v := range full {
		want = append(want, k)
		if k == "failure_rate" || k == "slow_call" {
			var sub map[string]json.RawMessage
			json.Unmarshal(v, &sub)
			for s := range sub {
				want = append(want, k+"."+s)
			}
		}
	}
	sort.Strings(want)
	if listed := envoytest.TableKeys(readme(t).Section("## Configuration")); strings.Join(listed, " ") != strings.Join(want, " ") {
		t.Errorf("README configuration table lists\n  %q\nthe filter reads\n  %q", listed, want)
	}
}

// TestREADMEMetricsTable: the metrics table lists the metrics the filter
// defines, and no other; the per-breaker state gauges are one row.
func TestREADMEMetricsTable(t *testing.T) {
	be := newBackend()
	h := newHost(t, `{"max_concurrent": 10}`, hosttest.Upstream(be), hosttest.Workers(1))
	trip(t, h, be, 5)
	var defined []string
	for _, m := range h.Metrics() {
		if strings.HasPrefix(m.Name, metricPrefix+"state_") {
			continue
		}
		defined = append(defined, m.Name)
	}
	defined = append(defined, metricPrefix+"state_<scope_key>")
	sort.Strings(defined)
	if listed := envoytest.TableKeys(readme(t).Section("## Metrics")); strings.Join(listed, " ") != strings.Join(defined, " ") {
		t.Errorf("README metrics table lists\n  %q\nthe filter defines\n  %q", listed, defined)
	}
}
