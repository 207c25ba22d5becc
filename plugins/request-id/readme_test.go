//go:build !wasm

package main

// README.md is the reference: its Envoy and Istio snippets must parse into
// Envoy's and Istio's own protos, their plugin configurations must be
// accepted by parseConfig, and its configuration table must list exactly
// the fields the filter reads.

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	istioext "istio.io/api/extensions/v1alpha1"

	"github.com/concierge-wasm/concierge/envoy/envoytest"
)

func TestREADMESnippets(t *testing.T) {
	blocks := envoytest.ReadREADME(t, "README.md").Blocks("yaml")
	if len(blocks) != 3 {
		t.Fatalf("README.md has %d yaml blocks, want 3 (http_filters, connection manager fields, WasmPlugin)", len(blocks))
	}

	// 1. The http_filters entries.
	filters := envoytest.HTTPFilters(t, blocks[0])
	if len(filters) != 2 {
		t.Fatalf("README http_filters block = %d filters, want request-id and the router", len(filters))
	}
	if filters[1].Name != "envoy.filters.http.router" {
		t.Errorf("README http_filters[1] = %s, want the router last", filters[1].Name)
	}
	w := filters[0].Wasm
	if w == nil {
		t.Fatalf("README http_filters[0] is %s, want the wasm filter first", filters[0].Name)
	}
	pc := w.GetConfig()
	if got := pc.GetVmConfig().GetCode().GetLocal().GetFilename(); got != "/etc/envoy/wasm/request-id.wasm" || pc.GetVmConfig().GetRuntime() != "envoy.wasm.runtime.v8" {
		t.Errorf("README vm_config: filename %q runtime %q", got, pc.GetVmConfig().GetRuntime())
	}
	if _, err := parseConfig([]byte(filters[0].Configuration)); err != nil {
		t.Errorf("README Envoy configuration refused: %v\n%s", err, filters[0].Configuration)
	}

	// 2. The connection manager fields.
	hcm := &hcmv3.HttpConnectionManager{}
	envoytest.Unmarshal(t, "connection manager fields", envoytest.YAMLToJSON(t, blocks[1]), hcm)
	if hcm.GetGenerateRequestId() == nil || hcm.GetGenerateRequestId().GetValue() {
		t.Errorf("README connection manager fields must set generate_request_id: false")
	}

	// 3. The Istio WasmPlugin.
	wp, pluginConfig := envoytest.WasmPlugin(t, blocks[2])
	if wp.GetPhase() != istioext.PluginPhase_AUTHN || wp.GetPriority().GetValue() != 1000 || !strings.HasPrefix(wp.GetUrl(), "oci://") {
		t.Errorf("README WasmPlugin: phase %v priority %v url %q, want AUTHN, 1000, oci://", wp.GetPhase(), wp.GetPriority(), wp.GetUrl())
	}
	if _, err := parseConfig(pluginConfig); err != nil {
		t.Errorf("README Istio pluginConfig refused: %v\n%s", err, pluginConfig)
	}
}

// TestREADMEConfigTable: the table lists every field of fullConfig (which
// sets every option and is accepted, TestConfigAccepted), and no other.
func TestREADMEConfigTable(t *testing.T) {
	var full map[string]json.RawMessage
	if err := json.Unmarshal([]byte(fullConfig), &full); err != nil {
		t.Fatal(err)
	}
	var want []string
	for k, v := range full {
		want = append(want, k)
		if k == "envelope" {
			var sub map[string]json.RawMessage
			json.Unmarshal(v, &sub)
			for s := range sub {
				want = append(want, k+"."+s)
			}
		}
	}
	sort.Strings(want)
	if listed := envoytest.TableKeys(envoytest.ReadREADME(t, "README.md").Section("## Configuration")); strings.Join(listed, " ") != strings.Join(want, " ") {
		t.Errorf("README configuration table lists\n  %q\nthe filter reads\n  %q", listed, want)
	}
}

// TestREADMEMetricsTable: the metrics table lists the counters the filter
// defines (TestMetricNames), and no other.
func TestREADMEMetricsTable(t *testing.T) {
	var want []string
	for _, m := range definedMetrics {
		want = append(want, metricPrefix+m)
	}
	sort.Strings(want)
	if listed := envoytest.TableKeys(envoytest.ReadREADME(t, "README.md").Section("## Metrics")); strings.Join(listed, " ") != strings.Join(want, " ") {
		t.Errorf("README metrics table lists\n  %q\nthe filter defines\n  %q", listed, want)
	}
}
