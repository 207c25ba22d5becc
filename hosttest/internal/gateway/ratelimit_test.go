package gateway

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestLocalYAMLRateLimit runs the quick start's rate-limit step against
// envoy/local.yaml over real sockets: /public/ allows a burst of 5 per
// client, the sixth is a 429 with Retry-After and the JSON body carrying
// the request ID; authenticated calls elsewhere are keyed on the identity
// and carry the X-RateLimit headers; the counters reach /stats/prometheus.
func TestLocalYAMLRateLimit(t *testing.T) {
	g, d := localGateway(t)
	c := client(t)
	base := "http://" + g.Addr("ingress")
	for i := 0; i < 5; i++ {
		if r := do(t, c, "GET", base+"/public/status", nil, nil); r.status != 200 || r.header.Get("x-ratelimit-limit") != "5" {
			t.Fatalf("GET /public/status #%d: %d, x-ratelimit-limit %q; want 200, 5", i+1, r.status, r.header.Get("x-ratelimit-limit"))
		}
	}
	r := do(t, c, "GET", base+"/public/status", nil, nil)
	if r.status != 429 || r.header.Get("retry-after") != "2" || r.header.Get("x-ratelimit-remaining") != "0" {
		t.Fatalf("6th GET /public/status: %d, retry-after %q, remaining %q; want 429, 2, 0", r.status, r.header.Get("retry-after"), r.header.Get("x-ratelimit-remaining"))
	}
	var body map[string]any
	if err := json.Unmarshal(r.body, &body); err != nil || body["error"] != "rate limit exceeded" || body["retryAfter"] != float64(2) {
		t.Errorf("429 body %s: want the rate limit JSON", r.body)
	}
	if id := r.header.Get("x-request-id"); id == "" || body["requestId"] != id {
		t.Errorf("429: x-request-id %q, body requestId %v; want the same ID in both", id, body["requestId"])
	}

	token, err := d.Token("demo-user", []string{"reader"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	r = do(t, c, "GET", base+"/api/users/1", map[string]string{"authorization": "Bearer " + token}, nil)
	if r.status != 200 || r.header.Get("x-ratelimit-limit") != "20000" {
		t.Errorf("GET /api/users/1 with the token: %d, x-ratelimit-limit %q; want 200, 20000", r.status, r.header.Get("x-ratelimit-limit"))
	}
	m := string(do(t, c, "GET", "http://"+g.AdminAddr()+"/stats/prometheus", nil, nil).body)
	for _, want := range []string{"concierge_rate_limit_denied_total", "concierge_rate_limit_allowed_total"} {
		if !strings.Contains(m, want) {
			t.Errorf("/stats/prometheus lacks %s", want)
		}
	}
}
