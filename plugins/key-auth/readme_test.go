//go:build !wasm

package main

// README.md is the reference: its Envoy and Istio snippets must parse into
// Envoy's and Istio's own protos, their configurations must be accepted by
// the filter (and the Envoy one must work in hosttest), and its tables must
// list exactly the fields the filter reads and the metrics it defines.

import (
	"slices"
	"sort"
	"strings"
	"testing"

	istioext "istio.io/api/extensions/v1alpha1"

	"github.com/concierge-wasm/concierge/envoy/envoytest"
)

func readme(t *testing.T) *envoytest.README { return envoytest.ReadREADME(t, "README.md") }

// The keys whose digests the README's Envoy snippet holds.
const (
	readmeOldKey = "readme-acme-old-key" // not_after 2026-09-01
	readmeNewKey = "readme-acme-new-key" // not_before 2026-08-01
	readmeOpsKey = "readme-ops-key"
)

func TestREADMESnippets(t *testing.T) {
	blocks := readme(t).Blocks("yaml")
	if len(blocks) != 2 {
		t.Fatalf("README.md has %d yaml blocks, want 2 (http_filters, WasmPlugin)", len(blocks))
	}

	filters := envoytest.HTTPFilters(t, blocks[0])
	if len(filters) != 2 || filters[1].Name != "envoy.filters.http.router" {
		t.Fatalf("README http_filters = %d filters, want key-auth and the router last", len(filters))
	}
	w := filters[0].Wasm
	if w == nil {
		t.Fatalf("README http_filters[0] is %s, want the wasm filter", filters[0].Name)
	}
	pc := w.GetConfig()
	if got := pc.GetVmConfig().GetCode().GetLocal().GetFilename(); got != "/etc/envoy/wasm/key-auth.wasm" || pc.GetVmConfig().GetRuntime() != "envoy.wasm.runtime.v8" {
		t.Errorf("README vm_config: filename %q runtime %q", got, pc.GetVmConfig().GetRuntime())
	}
	envoyConfig := filters[0].Configuration
	if _, err := parseConfig([]byte(envoyConfig)); err != nil {
		t.Fatalf("README Envoy configuration refused: %v\n%s", err, envoyConfig)
	}

	wp, pcJSON := envoytest.WasmPlugin(t, blocks[1])
	if wp.GetPhase() != istioext.PluginPhase_AUTHN || wp.GetPriority().GetValue() != 900 || wp.GetFailStrategy() != istioext.FailStrategy_FAIL_CLOSE {
		t.Errorf("README WasmPlugin: phase %v priority %v failStrategy %v, want AUTHN, 900, FAIL_CLOSE", wp.GetPhase(), wp.GetPriority(), wp.GetFailStrategy())
	}
	if _, err := parseConfig(pcJSON); err != nil {
		t.Errorf("README Istio pluginConfig refused: %v\n%s", err, pcJSON)
	}

	// The Envoy configuration does what the README says, in hosttest (the
	// rotation dates are in the past: the old key has expired).
	h := newHost(t, envoyConfig)
	challenge := `Key realm="partners"`
	wantDenied(t, h.Do(withKey("/api/x", readmeOldKey)), 401, msgInvalid, challenge)
	wantEqual(t, "x-consumer", h.Do(withKey("/api/x", readmeNewKey)).Upstream.Header("x-consumer"), "acme")
	wantDenied(t, h.Do(withKey("/api/x", "")), 401, msgMissing, challenge)
	wantStatus(t, h.Do(withKey("/public/x", "").Route("public")), 200)
	wantDenied(t, h.Do(withKey("/public/x", "")), 401, msgMissing, challenge)
	wantDenied(t, h.Do(withKey("/admin/x", readmeNewKey)), 403, msgPermission, "")
	wantStatus(t, h.Do(withKey("/admin/x", readmeOpsKey)), 200)
	wantEqual(t, "expired keys counted", metric(t, h, reasonMetric(reasonExpired)), 1)
}

// TestREADMEDigestCommand: the documented command is what the filter
// hashes (no trailing newline).
func TestREADMEDigestCommand(t *testing.T) {
	cfg := readme(t).Section("### Making a key")
	if !strings.Contains(cfg, `printf %s "$KEY" | sha256sum`) {
		t.Errorf("README no longer shows the digest command")
	}
	c := mustParse(t, `{"consumers":[{"name":"a","keys":[{"key_sha256":"ee49c0332677b9f5e7561da3509481793639ecb02eddb9803118fb8b234fb04d"}]}]}`)
	if _, r := c.lookup(readmeOldKey, clockAt(testNow)); r != reasonNone {
		t.Errorf("the digest printed by `printf %%s readme-acme-old-key | sha256sum` does not match the key: %s", r.slug())
	}
}

// TestREADMEConfigTables: each configuration table lists exactly the keys
// the filter reads at that level.
func TestREADMEConfigTables(t *testing.T) {
	for _, tc := range []struct {
		heading string
		want    []string
	}{
		{"### Top level", topLevelFields},
		{"### Consumer", consumerFields},
		{"### Key", keyFields},
		{"### Rules", []string{"match", "enabled", "shadow", "allow_missing", "require"}},
	} {
		want := slices.Clone(tc.want)
		sort.Strings(want)
		if got := envoytest.TableKeys(readme(t).Section(tc.heading)); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("README %s table lists\n  %q\nthe filter reads\n  %q", tc.heading, got, want)
		}
	}
}

// TestREADMEMetricsAndResponses: the metrics table lists the counters the
// filter defines, every reason is in the per-reason row, and every
// client-facing message is in the responses table.
func TestREADMEMetricsAndResponses(t *testing.T) {
	want := []string{metricAllowed, metricDenied, metricAnonymous, metricShadowed,
		metricPrefix + "denied_<reason>_total", consumerMetric("<name>")}
	sort.Strings(want)
	metrics := readme(t).Section("## Metrics")
	if got := envoytest.TableKeys(metrics); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("README metrics table lists\n  %q\nthe filter defines\n  %q", got, want)
	}
	for r := reasonMissing; r < numReasons; r++ {
		if !strings.Contains(metrics, "`"+r.slug()+"`") {
			t.Errorf("README metrics: reason %q missing from the per-reason row", r.slug())
		}
	}
	responses := readme(t).Section("## Responses")
	for _, m := range []string{msgMissing, msgInvalid, msgPermission} {
		if !strings.Contains(responses, "`"+m+"`") {
			t.Errorf("README responses: %q missing", m)
		}
	}
}
