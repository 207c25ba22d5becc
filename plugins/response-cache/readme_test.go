//go:build !wasm

package main

// README.md is the reference: its Envoy and Istio snippets must parse into
// Envoy's and Istio's own protos, every configuration in it must be
// accepted by parseConfig, and its tables must list exactly the fields the
// filter reads and the metrics it defines.

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"

	istioext "istio.io/api/extensions/v1alpha1"

	"github.com/concierge-wasm/concierge/envoy/envoytest"
)

func TestREADMESnippets(t *testing.T) {
	readme := envoytest.ReadREADME(t, "README.md")
	blocks := readme.Blocks("yaml")
	if len(blocks) != 2 {
		t.Fatalf("README.md has %d yaml blocks, want 2 (http_filters, WasmPlugin)", len(blocks))
	}
	filters := envoytest.HTTPFilters(t, blocks[0])
	if len(filters) != 2 || filters[1].Name != "envoy.filters.http.router" || filters[0].Wasm == nil {
		t.Fatalf("README http_filters: want response-cache then the router, got %d filters", len(filters))
	}
	pc := filters[0].Wasm.GetConfig()
	if got := pc.GetVmConfig().GetCode().GetLocal().GetFilename(); got != "/etc/envoy/wasm/response-cache.wasm" {
		t.Errorf("README vm_config filename %q", got)
	}
	if _, err := parseConfig([]byte(filters[0].Configuration)); err != nil {
		t.Errorf("README Envoy configuration refused: %v\n%s", err, filters[0].Configuration)
	}
	wp, pluginConfig := envoytest.WasmPlugin(t, blocks[1])
	if wp.GetPhase() != istioext.PluginPhase_STATS || wp.GetPriority().GetValue() != 100 || !strings.HasPrefix(wp.GetUrl(), "oci://") {
		t.Errorf("README WasmPlugin: phase %v priority %v url %q, want STATS, 100, oci://", wp.GetPhase(), wp.GetPriority(), wp.GetUrl())
	}
	if _, err := parseConfig(pluginConfig); err != nil {
		t.Errorf("README Istio pluginConfig refused: %v\n%s", err, pluginConfig)
	}
	jsons := readme.Blocks("json")
	if len(jsons) != 3 {
		t.Fatalf("README.md has %d json blocks, want the 3 per-route examples", len(jsons))
	}
	for i, b := range jsons {
		if _, err := parseConfig([]byte(b)); err != nil {
			t.Errorf("README json block %d refused: %v\n%s", i, err, b)
		}
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
		if k == "key" || k == "purge" {
			var sub map[string]json.RawMessage
			json.Unmarshal(v, &sub)
			for s := range sub {
				want = append(want, k+"."+s)
			}
			continue
		}
		want = append(want, k)
	}
	sort.Strings(want)
	if listed := envoytest.TableKeys(envoytest.ReadREADME(t, "README.md").Section("## Configuration")); strings.Join(listed, " ") != strings.Join(want, " ") {
		t.Errorf("README configuration table lists\n  %q\nthe filter reads\n  %q", listed, want)
	}
}

// TestREADMEMetricsTable: the metrics table lists exactly the metrics the
// compiled filter defines.
func TestREADMEMetricsTable(t *testing.T) {
	h := newCache(t, `{}`, newOrigin(t))
	var defined []string
	for _, m := range h.Metrics() {
		if strings.HasPrefix(m.Name, metricPrefix) {
			defined = append(defined, m.Name)
		}
	}
	sort.Strings(defined)
	want := metricNames()
	sort.Strings(want)
	if strings.Join(defined, " ") != strings.Join(want, " ") {
		t.Errorf("the module defines\n  %q\nmetricNames lists\n  %q", defined, want)
	}
	if listed := envoytest.TableKeys(envoytest.ReadREADME(t, "README.md").Section("## Metrics")); strings.Join(listed, " ") != strings.Join(want, " ") {
		t.Errorf("README metrics table lists\n  %q\nthe filter defines\n  %q", listed, want)
	}
}
