package envoy

import (
	"encoding/json"
	"testing"

	"github.com/concierge-wasm/concierge/hosttest"
)

// TestNoFilterFailsClosedForGood: no shipped filter uses FAIL_CLOSED (or
// Istio's FAIL_CLOSE): after one guest panic it answers 503 on every route
// of that worker until Envoy restarts. A security filter ships FAIL_RELOAD
// (503 for the failing request, a fresh VM after the backoff); a filter
// that is not a security control may ship FAIL_OPEN.
func TestNoFilterFailsClosedForGood(t *testing.T) {
	for _, w := range allWasm(t) {
		if w.failure == hosttest.FailClosed {
			t.Errorf("%s: failure policy FAIL_CLOSED: one panic takes its routes down for good; ship FAIL_RELOAD (or FAIL_OPEN for a filter that is no security control)", w.where)
		}
	}
}

// TestEdgeRequestIDsAreNotTheClients: at an edge (use_remote_address), a
// client must not choose the request ID every log line and denial carries.
// Envoy's own rule — a fresh ID for external requests unless
// preserve_external_request_id — must hold whoever owns the header: the
// connection manager (generate_request_id) or request-id (trust_incoming
// "internal" or false). Istio gateways are edges too.
func TestEdgeRequestIDsAreNotTheClients(t *testing.T) {
	checked := 0
	for _, d := range docs(t) {
		if d.isManifest() {
			p, _ := d.wasmPlugin(t)
			if w := istioWasm(t, d, p); w.module == "request-id" {
				checked++
				checkEdgeTrust(t, w)
			}
			continue
		}
		for _, h := range hcms(t, d, d.bootstrap(t)) {
			if !h.m.GetUseRemoteAddress().GetValue() {
				continue
			}
			gen := h.m.GetGenerateRequestId() == nil || h.m.GetGenerateRequestId().GetValue()
			if gen && h.m.GetPreserveExternalRequestId() {
				t.Errorf("%s: preserve_external_request_id at an edge lets clients choose x-request-id", h.where)
			}
			for _, w := range h.wasm {
				if w.module == "request-id" {
					checked++
					checkEdgeTrust(t, w)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no request-id filter at an edge in any shipped file")
	}
}

func checkEdgeTrust(t *testing.T, w wasmFilter) {
	t.Helper()
	var c struct {
		Trust any `json:"trust_incoming"`
	}
	if err := json.Unmarshal([]byte(w.config), &c); err != nil {
		t.Fatalf("%s: configuration: %v", w.where, err)
	}
	if c.Trust != "internal" && c.Trust != false {
		t.Errorf(`%s: trust_incoming = %v at an edge: clients choose their request ID; want "internal" (Envoy's rule) or false`, w.where, c.Trust)
	}
}
