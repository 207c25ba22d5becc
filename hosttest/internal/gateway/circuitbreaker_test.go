package gateway

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLocalYAMLCircuitBreaker runs the quick start's breaker step against
// envoy/local.yaml over real sockets: the flaky service fails its third
// call, its route's breaker opens on a third of the calls failing, and the
// next request gets the breaker's 503 with Retry-After and the JSON body,
// without reaching the service.
func TestLocalYAMLCircuitBreaker(t *testing.T) {
	g, d := localGateway(t)
	c := client(t)
	base := "http://" + g.Addr("ingress")
	token, err := d.Token("demo-user", []string{"reader"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	auth := map[string]string{"authorization": "Bearer " + token}
	var codes []int
	for range 3 {
		codes = append(codes, do(t, c, "GET", base+"/api/flaky", auth, nil).status)
	}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != 503 {
		t.Fatalf("the flaky service answered %v, want 200 200 503", codes)
	}
	for range 3 {
		r := do(t, c, "GET", base+"/api/flaky", auth, nil)
		var body struct {
			Error      string `json:"error"`
			RetryAfter int    `json:"retryAfter"`
			RequestID  string `json:"requestId"`
		}
		if r.status != 503 || json.Unmarshal(r.body, &body) != nil || body.Error != "service unavailable" {
			t.Fatalf("after the trip: %d %s, want the breaker's 503", r.status, r.body)
		}
		if ra, err := strconv.Atoi(r.header.Get("retry-after")); err != nil || ra < 1 || ra > 10 || body.RetryAfter != ra {
			t.Errorf("Retry-After %q, retryAfter %d: want the same, 1-10 (open_duration 10s)", r.header.Get("retry-after"), body.RetryAfter)
		}
		if id := r.header.Get("x-request-id"); id == "" || body.RequestID != id {
			t.Errorf("x-request-id %q, body requestId %q: want the same ID", id, body.RequestID)
		}
	}
	// Other routes have breakers of their own, still closed.
	if r := do(t, c, "GET", base+"/api/users/1", auth, nil); r.status != 200 {
		t.Errorf("GET /api/users/1: %d, want 200", r.status)
	}
	m := string(do(t, c, "GET", "http://"+g.AdminAddr()+"/stats/prometheus", nil, nil).body)
	for _, want := range []string{"concierge_circuit_breaker_opened_total 1", "concierge_circuit_breaker_rejected_total 3"} {
		if !strings.Contains(m, want) {
			t.Errorf("/stats/prometheus lacks %q:\n%s", want, m)
		}
	}
}

// TestCircuitBreakerSeesConnectionFailures: over real sockets, a refused
// connection (Envoy's 503 with flag UF) counts as a failure of the
// cluster's breaker, which then answers at once; another cluster's
// breaker stays closed.
func TestCircuitBreakerSeesConnectionFailures(t *testing.T) {
	up := echoServer(t, "up")
	routes := `
- name: refused
  match: { prefix: /refused }
  route: { cluster: dead }
- name: up
  match: { prefix: /up }
  route: { cluster: up }
`
	clusters := staticCluster("dead", []string{closedPort(t)}, "") + staticCluster("up", []string{port(t, up)}, "")
	g := start(t, bootstrap(wasmFilter("circuit-breaker", module(t, "plugins/circuit-breaker"), `{"consecutive_failures": 2}`), routes, clusters))
	c := client(t)
	base := "http://" + g.Addr("ingress")
	for range 2 {
		r := do(t, c, "GET", base+"/refused", nil, nil)
		if r.status != 503 || r.header.Get("retry-after") != "" {
			t.Fatalf("refused connection: %d %s, want the router's 503", r.status, r.body)
		}
	}
	r := do(t, c, "GET", base+"/refused", nil, nil)
	if r.status != 503 || r.header.Get("retry-after") != "60" || !strings.Contains(string(r.body), `"retryAfter":60`) {
		t.Fatalf("after two refused connections: %d %q %s, want the breaker's 503", r.status, r.header.Get("retry-after"), r.body)
	}
	if r := do(t, c, "GET", base+"/up", nil, nil); r.status != 200 {
		t.Fatalf("the other cluster: %d, want 200", r.status)
	}
}
