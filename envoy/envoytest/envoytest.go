// Package envoytest holds the checks every filter's README test makes: its
// YAML snippets parse into Envoy's and Istio's own protos and validate, and
// its tables can be compared with what the filter reads and defines. Each
// filter's README is its reference, so every filter runs these checks.
package envoytest

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
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
	istioext "istio.io/api/extensions/v1alpha1"
	"sigs.k8s.io/yaml"

	// Typed configs README snippets use, so that their Any fields resolve.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
)

// strict refuses unknown fields, as Envoy does.
var strict = protojson.UnmarshalOptions{}

// README is a Markdown file read once.
type README struct {
	t    testing.TB
	text string
}

// ReadREADME reads path (usually "README.md" in the filter's folder).
func ReadREADME(t testing.TB, path string) *README {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return &README{t: t, text: string(b)}
}

// Blocks returns the fenced code blocks in lang, in order.
func (r *README) Blocks(lang string) []string {
	r.t.Helper()
	var out []string
	for _, part := range strings.Split(r.text, "```"+lang+"\n")[1:] {
		end := strings.Index(part, "```")
		if end < 0 {
			r.t.Fatalf("README: unterminated %s block", lang)
		}
		out = append(out, part[:end])
	}
	return out
}

// Section returns the text under the heading that starts with prefix
// ("## Metrics", "### Provider"), up to the next heading.
func (r *README) Section(prefix string) string {
	r.t.Helper()
	_, rest, ok := strings.Cut(r.text, "\n"+prefix)
	if !ok {
		r.t.Fatalf("README has no heading %q", prefix)
	}
	if i := strings.Index(rest, "\n#"); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

var tableKey = regexp.MustCompile("(?m)^\\| `([a-z0-9_.<>]+)` \\|")

// TableKeys returns the backquoted first cells of a section's table rows,
// sorted.
func TableKeys(section string) []string {
	var out []string
	for _, m := range tableKey.FindAllStringSubmatch(section, -1) {
		out = append(out, m[1])
	}
	sort.Strings(out)
	return out
}

// YAMLToJSON converts one YAML snippet, failing the test if it does not
// parse.
func YAMLToJSON(t testing.TB, block string) []byte {
	t.Helper()
	j, err := yaml.YAMLToJSON([]byte(block))
	if err != nil {
		t.Fatalf("README YAML block does not parse: %v\n%s", err, block)
	}
	return j
}

// Unmarshal parses JSON into an Envoy or Istio message, refusing unknown
// fields. A snippet may be part of a message (a few connection manager
// fields), so validation is the caller's choice (Validate).
func Unmarshal(t testing.TB, what string, data []byte, m proto.Message) {
	t.Helper()
	if err := strict.Unmarshal(data, m); err != nil {
		t.Fatalf("README %s: %v", what, err)
	}
}

// Validate runs a message's generated validation rules, if any.
func Validate(t testing.TB, what string, m any) {
	t.Helper()
	if v, ok := m.(interface{ ValidateAll() error }); ok {
		if err := v.ValidateAll(); err != nil {
			t.Errorf("README %s: %v", what, err)
		}
	}
}

// HTTPFilter is one entry of an http_filters snippet.
type HTTPFilter struct {
	Name string
	// Wasm is the envoy.filters.http.wasm config, nil for other filters.
	Wasm *wasmhttpv3.Wasm
	// Configuration is the plugin configuration, a google.protobuf.StringValue.
	Configuration string
}

// HTTPFilters parses a snippet of the form `http_filters: [...]` into
// Envoy's HttpFilter messages, validating each and its typed config.
func HTTPFilters(t testing.TB, block string) []HTTPFilter {
	t.Helper()
	var doc struct {
		HTTPFilters []json.RawMessage `json:"http_filters"`
	}
	if err := json.Unmarshal(YAMLToJSON(t, block), &doc); err != nil {
		t.Fatalf("README http_filters block: %v", err)
	}
	out := make([]HTTPFilter, 0, len(doc.HTTPFilters))
	for i, raw := range doc.HTTPFilters {
		f := &hcmv3.HttpFilter{}
		if err := strict.Unmarshal(raw, f); err != nil {
			t.Fatalf("README http_filters[%d] is not an Envoy HttpFilter: %v", i, err)
		}
		Validate(t, "http_filters["+f.GetName()+"]", f)
		inner, err := f.GetTypedConfig().UnmarshalNew()
		if err != nil {
			t.Fatalf("README http_filters[%d].typed_config: %v", i, err)
		}
		Validate(t, "http_filters["+f.GetName()+"].typed_config", inner)
		hf := HTTPFilter{Name: f.GetName()}
		if w, ok := inner.(*wasmhttpv3.Wasm); ok {
			hf.Wasm = w
			sv := &wrapperspb.StringValue{}
			if err := w.GetConfig().GetConfiguration().UnmarshalTo(sv); err != nil {
				t.Fatalf("README http_filters[%d] configuration is not a google.protobuf.StringValue: %v", i, err)
			}
			hf.Configuration = sv.GetValue()
		}
		out = append(out, hf)
	}
	return out
}

// WasmPlugin parses an Istio WasmPlugin manifest snippet, checks its
// apiVersion and kind, validates its spec, and returns the spec and its
// pluginConfig as JSON (what Istio hands the filter).
func WasmPlugin(t testing.TB, block string) (*istioext.WasmPlugin, []byte) {
	t.Helper()
	var manifest struct {
		APIVersion string          `json:"apiVersion"`
		Kind       string          `json:"kind"`
		Spec       json.RawMessage `json:"spec"`
	}
	if err := json.Unmarshal(YAMLToJSON(t, block), &manifest); err != nil {
		t.Fatal(err)
	}
	if manifest.APIVersion != "extensions.istio.io/v1alpha1" || manifest.Kind != "WasmPlugin" {
		t.Errorf("README Istio manifest is %s %s, want extensions.istio.io/v1alpha1 WasmPlugin", manifest.APIVersion, manifest.Kind)
	}
	wp := &istioext.WasmPlugin{}
	Unmarshal(t, "WasmPlugin spec", manifest.Spec, wp)
	Validate(t, "WasmPlugin", wp)
	pc, err := protojson.Marshal(wp.GetPluginConfig())
	if err != nil {
		t.Fatal(err)
	}
	return wp, pc
}
