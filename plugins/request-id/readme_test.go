//go:build !wasm

package main

// README.md is the reference: its Envoy and Istio snippets must parse into
// Envoy's and Istio's own protos, their plugin configurations must be
// accepted by parseConfig, and its configuration table must list exactly
// the fields the filter reads.

import (
	"encoding/json"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	wasmhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/wrapperspb"
	istioext "istio.io/api/extensions/v1alpha1"
	"sigs.k8s.io/yaml"

	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
)

// readmeBlocks returns the fenced code blocks of README.md in the given
// language, in order.
func readmeBlocks(t *testing.T, lang string) []string {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, part := range strings.Split(string(b), "```"+lang+"\n")[1:] {
		end := strings.Index(part, "```")
		if end < 0 {
			t.Fatalf("README.md: unterminated %s block", lang)
		}
		out = append(out, part[:end])
	}
	return out
}

var strict = protojson.UnmarshalOptions{DiscardUnknown: false}

func yamlJSON(t *testing.T, block string) []byte {
	t.Helper()
	j, err := yaml.YAMLToJSON([]byte(block))
	if err != nil {
		t.Fatalf("README YAML block does not parse: %v\n%s", err, block)
	}
	return j
}

func validate(t *testing.T, what string, m interface{ ValidateAll() error }) {
	t.Helper()
	if err := m.ValidateAll(); err != nil {
		t.Errorf("README %s: %v", what, err)
	}
}

func TestREADMESnippets(t *testing.T) {
	blocks := readmeBlocks(t, "yaml")
	if len(blocks) != 3 {
		t.Fatalf("README.md has %d yaml blocks, want 3 (http_filters, connection manager fields, WasmPlugin)", len(blocks))
	}

	// 1. The http_filters entries.
	var filters struct {
		HTTPFilters []json.RawMessage `json:"http_filters"`
	}
	if err := json.Unmarshal(yamlJSON(t, blocks[0]), &filters); err != nil || len(filters.HTTPFilters) != 2 {
		t.Fatalf("README http_filters block = %d filters (%v), want request-id and the router", len(filters.HTTPFilters), err)
	}
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
		if v, ok := inner.(interface{ ValidateAll() error }); ok {
			validate(t, "http_filters["+f.GetName()+"].typed_config", v)
		}
		w, ok := inner.(*wasmhttpv3.Wasm)
		if i == 1 {
			if f.GetName() != "envoy.filters.http.router" {
				t.Errorf("README http_filters[1] = %s, want the router last", f.GetName())
			}
			continue
		}
		if !ok {
			t.Fatalf("README http_filters[0] is %T, want the wasm filter first", inner)
		}
		pc := w.GetConfig()
		if got := pc.GetVmConfig().GetCode().GetLocal().GetFilename(); got != "/etc/envoy/wasm/request-id.wasm" || pc.GetVmConfig().GetRuntime() != "envoy.wasm.runtime.v8" {
			t.Errorf("README vm_config: filename %q runtime %q", got, pc.GetVmConfig().GetRuntime())
		}
		sv := &wrapperspb.StringValue{}
		if err := pc.GetConfiguration().UnmarshalTo(sv); err != nil {
			t.Fatalf("README configuration is not a google.protobuf.StringValue: %v", err)
		}
		if _, err := parseConfig([]byte(sv.GetValue())); err != nil {
			t.Errorf("README Envoy configuration refused: %v\n%s", err, sv.GetValue())
		}
	}

	// 2. The connection manager fields.
	hcm := &hcmv3.HttpConnectionManager{}
	if err := strict.Unmarshal(yamlJSON(t, blocks[1]), hcm); err != nil {
		t.Fatalf("README connection manager fields: %v", err)
	}
	if hcm.GetGenerateRequestId() == nil || hcm.GetGenerateRequestId().GetValue() {
		t.Errorf("README connection manager fields must set generate_request_id: false")
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
	if wp.GetPhase() != istioext.PluginPhase_AUTHN || wp.GetPriority().GetValue() != 1000 || !strings.HasPrefix(wp.GetUrl(), "oci://") {
		t.Errorf("README WasmPlugin: phase %v priority %v url %q, want AUTHN, 1000, oci://", wp.GetPhase(), wp.GetPriority(), wp.GetUrl())
	}
	pc, err := protojson.Marshal(wp.GetPluginConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parseConfig(pc); err != nil {
		t.Errorf("README Istio pluginConfig refused: %v\n%s", err, pc)
	}
}

// readmeSection returns the text of README.md under a "## " heading.
func readmeSection(t *testing.T, heading string) string {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "\n## "+heading+"\n")
	if !ok {
		t.Fatalf("README.md has no section %q", heading)
	}
	if i := strings.Index(rest, "\n## "); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// tableKeys returns the backquoted first cells of a section's table rows.
func tableKeys(section string) []string {
	var out []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z_.]+)` \\|").FindAllStringSubmatch(section, -1) {
		out = append(out, m[1])
	}
	sort.Strings(out)
	return out
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
	if listed := tableKeys(readmeSection(t, "Configuration")); strings.Join(listed, " ") != strings.Join(want, " ") {
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
	if listed := tableKeys(readmeSection(t, "Metrics")); strings.Join(listed, " ") != strings.Join(want, " ") {
		t.Errorf("README metrics table lists\n  %q\nthe filter defines\n  %q", listed, want)
	}
}
