//go:build !wasm

package main

// Request IDs at the edge through the compiled module: trust_incoming
// "internal" keeps only the IDs of requests Envoy marked internal, and
// external_id_header carries an untrusted client's own ID.

import (
	"strings"
	"testing"

	"github.com/concierge-wasm/concierge/hosttest"
)

func TestEdgeTrust(t *testing.T) {
	const clientID = "chosen-by-the-client"
	tests := []struct {
		name     string
		cfg      string
		headers  [][2]string
		wantKept bool
		wantExt  []string // upstream x-client-request-id values
		counter  string
	}{
		{"internal: an external request's ID is replaced", `{"trust_incoming": "internal"}`,
			[][2]string{{"x-request-id", clientID}}, false, nil, "replaced_total+1"},
		{"internal: Envoy's x-envoy-internal keeps it", `{"trust_incoming": "internal"}`,
			[][2]string{{"x-request-id", clientID}, {"x-envoy-internal", "true"}}, true, nil, "kept_total+1"},
		{"internal: any other x-envoy-internal value is not Envoy's", `{"trust_incoming": "internal"}`,
			[][2]string{{"x-request-id", clientID}, {"x-envoy-internal", "1"}}, false, nil, "replaced_total+1"},
		{"external_id_header gets the client's valid ID", `{"trust_incoming": "internal", "external_id_header": "x-client-request-id"}`,
			[][2]string{{"x-request-id", clientID}}, false, []string{clientID}, "replaced_total+1"},
		{"external_id_header: the client's own value is overwritten", `{"trust_incoming": "internal", "external_id_header": "x-client-request-id"}`,
			[][2]string{{"x-request-id", clientID}, {"x-client-request-id", "forged"}, {"x-client-request-id", "twice"}}, false, []string{clientID}, "replaced_total+1"},
		{"external_id_header: an invalid ID is not copied, and a sent one is removed", `{"trust_incoming": false, "external_id_header": "x-client-request-id"}`,
			[][2]string{{"x-request-id", "evil\r\nx: 1"}, {"x-client-request-id", "forged"}}, false, nil, "replaced_total+1"},
		{"external_id_header: no ID, a sent one is removed", `{"trust_incoming": false, "external_id_header": "x-client-request-id"}`,
			[][2]string{{"x-client-request-id", "forged"}}, false, nil, "generated_total+1"},
		{"external_id_header: an internal request keeps its own", `{"trust_incoming": "internal", "external_id_header": "x-client-request-id"}`,
			[][2]string{{"x-request-id", clientID}, {"x-envoy-internal", "true"}, {"x-client-request-id", "from-the-edge"}}, true, []string{"from-the-edge"}, "kept_total+1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHost(t, tt.cfg)
			req := hosttest.GET("/api/users/1")
			for _, kv := range tt.headers {
				req.Header(kv[0], kv[1])
			}
			m := snapshot(h)
			resp := h.Do(req)
			if resp.Status != 200 || resp.Upstream == nil {
				t.Fatalf("response %v, want 200 from the upstream", resp)
			}
			id := resp.Header("x-request-id")
			wantOne(t, "upstream x-request-id", resp.Upstream.HeaderValues("x-request-id"), id)
			if kept := id == clientID; kept != tt.wantKept {
				t.Errorf("x-request-id = %q, want the client's kept = %v", id, tt.wantKept)
			}
			if !tt.wantKept && !uuidV7.MatchString(id) {
				t.Errorf("x-request-id = %q, want a fresh UUIDv7", id)
			}
			if got := resp.Upstream.HeaderValues("x-client-request-id"); strings.Join(got, "|") != strings.Join(tt.wantExt, "|") {
				t.Errorf("upstream x-client-request-id = %q, want %q", got, tt.wantExt)
			}
			if got := m.changed(); got != tt.counter {
				t.Errorf("counters moved: %q, want %q", got, tt.counter)
			}
		})
	}
}
