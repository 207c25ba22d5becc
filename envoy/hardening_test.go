package envoy

import (
	"encoding/json"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

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

// TestEdgeTimeoutsAreExplicit: every edge connection manager sets the
// timeouts that bound what an idle or slow client holds: the connection
// idle_timeout, request_headers_timeout, request_timeout and
// stream_idle_timeout, none of them disabled.
func TestEdgeTimeoutsAreExplicit(t *testing.T) {
	checked := 0
	for _, d := range docs(t) {
		if d.isManifest() {
			continue
		}
		for _, h := range hcms(t, d, d.bootstrap(t)) {
			if !h.m.GetUseRemoteAddress().GetValue() {
				continue
			}
			checked++
			for name, v := range map[string]interface{ AsDuration() time.Duration }{
				"common_http_protocol_options.idle_timeout": h.m.GetCommonHttpProtocolOptions().GetIdleTimeout(),
				"request_headers_timeout":                   h.m.GetRequestHeadersTimeout(),
				"request_timeout":                           h.m.GetRequestTimeout(),
				"stream_idle_timeout":                       h.m.GetStreamIdleTimeout(),
			} {
				if d, ok := v.(*durationpb.Duration); !ok || d == nil || d.AsDuration() <= 0 {
					t.Errorf("%s: %s must be set and > 0 at an edge", h.where, name)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no edge connection manager in any shipped file")
	}
}

// TestBootstrapsShedLoadUnderMemoryPressure: every shipped bootstrap has
// the overload manager's fixed_heap monitor driving
// stop_accepting_requests, so memory pressure (many large envelopes in
// flight) sheds new requests with 503 instead of growing until the OOM
// killer.
func TestBootstrapsShedLoadUnderMemoryPressure(t *testing.T) {
	checked := 0
	for _, d := range docs(t) {
		if d.isManifest() {
			continue
		}
		checked++
		om := d.bootstrap(t).GetOverloadManager()
		monitor, action := false, false
		for _, m := range om.GetResourceMonitors() {
			monitor = monitor || m.GetName() == "envoy.resource_monitors.fixed_heap"
		}
		for _, a := range om.GetActions() {
			for _, tr := range a.GetTriggers() {
				action = action || a.GetName() == "envoy.overload_actions.stop_accepting_requests" && tr.GetName() == "envoy.resource_monitors.fixed_heap"
			}
		}
		if !monitor || !action {
			t.Errorf("%s: overload_manager needs envoy.resource_monitors.fixed_heap triggering envoy.overload_actions.stop_accepting_requests (monitor %v, action %v)", d, monitor, action)
		}
	}
	if checked == 0 {
		t.Fatal("no bootstrap under envoy/")
	}
}
