package gateway

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestEdgeRequestIDs: the connection manager's request ID and internal
// request rules, as Envoy's ConnectionManagerUtility applies them: an
// edge request (use_remote_address, peer not in internal_address_config)
// gets a fresh x-request-id unless preserve_external_request_id; an
// internal one, or one on a listener that does not use the remote
// address, keeps its own; a client's x-envoy-internal never survives.
func TestEdgeRequestIDs(t *testing.T) {
	const clientID = "attacker-chosen-id"
	tests := []struct {
		name         string
		hcm          string // replaces "use_remote_address: true\n          generate_request_id: false"
		sent         map[string]string
		wantKept     bool
		wantInternal string
	}{
		{"edge: the client's ID is replaced",
			"use_remote_address: true", nil, false, ""},
		{"edge with preserve_external_request_id",
			"use_remote_address: true\n          preserve_external_request_id: true", nil, true, ""},
		{"internal peer (internal_address_config)",
			"use_remote_address: true\n          internal_address_config: { cidr_ranges: [{ address_prefix: 127.0.0.0, prefix_len: 8 }] }", nil, true, "true"},
		{"internal range, but an earlier hop (x-forwarded-for): external",
			"use_remote_address: true\n          internal_address_config: { cidr_ranges: [{ address_prefix: 127.0.0.0, prefix_len: 8 }] }",
			map[string]string{"x-forwarded-for": "203.0.113.7"}, false, ""},
		{"not an edge (use_remote_address off)",
			"use_remote_address: false", nil, true, ""},
		{"a client's x-envoy-internal is dropped",
			"use_remote_address: false", map[string]string{"x-envoy-internal": "true"}, true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			one := echoServer(t, "one")
			y := bootstrap("", "- name: all\n  match: { prefix: / }\n  route: { cluster: one }", staticCluster("one", []string{port(t, one)}, ""))
			y = strings.Replace(y, "use_remote_address: true\n          generate_request_id: false", tc.hcm, 1)
			g := start(t, y)
			sent := map[string]string{"x-request-id": clientID}
			for k, v := range tc.sent {
				sent[k] = v
			}
			e := do(t, client(t), "GET", "http://"+g.Addr("ingress")+"/x", sent, nil).echo(t)
			got := strings.Join(e.Headers["x-request-id"], ",")
			if kept := got == clientID; kept != tc.wantKept || got == "" {
				t.Errorf("upstream x-request-id = %q, want the client's kept = %v", got, tc.wantKept)
			}
			if got := strings.Join(e.Headers["x-envoy-internal"], ","); got != tc.wantInternal {
				t.Errorf("upstream x-envoy-internal = %q, want %q", got, tc.wantInternal)
			}
		})
	}
}

// TestLocalYAMLClientCannotChooseTheID: with the shipped envoy/local.yaml a
// client's x-request-id reaches neither the denial body, the response
// header nor the upstream's x-request-id.
func TestLocalYAMLClientCannotChooseTheID(t *testing.T) {
	g, d := localGateway(t)
	c := client(t)
	base := "http://" + g.Addr("ingress")
	const chosen = "forged-id-0001"
	r := do(t, c, "GET", base+"/api/users/1", map[string]string{"x-request-id": chosen}, nil)
	if r.status != 401 || strings.Contains(string(r.body), chosen) || r.header.Get("x-request-id") == chosen || r.header.Get("x-request-id") == "" {
		t.Errorf("denial: %d, x-request-id %q, body %s: want 401 with a fresh ID, the client's nowhere", r.status, r.header.Get("x-request-id"), r.body)
	}
	token, err := d.Token("demo-user", []string{"reader"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	r = do(t, c, "GET", base+"/api/users/1", map[string]string{"x-request-id": chosen, "authorization": "Bearer " + token}, nil)
	var a demoAnswer
	if err := json.Unmarshal(r.body, &a); err != nil || r.status != 200 {
		t.Fatalf("with the token: %d %s", r.status, r.body)
	}
	if a.Headers["x-request-id"] == chosen || a.Headers["x-request-id"] != r.header.Get("x-request-id") {
		t.Errorf("upstream x-request-id %q, response %q: want one fresh ID, not the client's", a.Headers["x-request-id"], r.header.Get("x-request-id"))
	}
}
