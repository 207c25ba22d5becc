package gateway

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"
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

// TestRateLimitGlobalAcrossReplicas: two gateway replicas, each with its
// own workers and shared data, both asking one rate limit service (a test
// double of envoyproxy/ratelimit's JSON endpoint that counts per
// descriptor, decoding the request with the service's own protos). A
// client alternating between them is limited by the shared count, where
// the local buckets alone would admit twice as much.
func TestRateLimitGlobalAcrossReplicas(t *testing.T) {
	const shared = 4
	var mu sync.Mutex
	counts := map[string]int{}
	rls := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := &rlsv3.RateLimitRequest{}
		if r.Method != "POST" || r.URL.Path != "/json" || protojson.Unmarshal(body, req) != nil || len(req.Descriptors) != 1 {
			t.Errorf("rate limit service got %s %s %q", r.Method, r.URL.Path, body)
			http.Error(w, "bad request", 400)
			return
		}
		d, _ := protojson.Marshal(req.Descriptors[0])
		mu.Lock()
		counts[req.Domain+string(d)]++
		n := counts[req.Domain+string(d)]
		mu.Unlock()
		resp := &rlsv3.RateLimitResponse{OverallCode: rlsv3.RateLimitResponse_OK}
		status := 200
		if n > shared {
			status = 429
			resp = &rlsv3.RateLimitResponse{OverallCode: rlsv3.RateLimitResponse_OVER_LIMIT,
				Statuses: []*rlsv3.RateLimitResponse_DescriptorStatus{{Code: rlsv3.RateLimitResponse_OVER_LIMIT, DurationUntilReset: durationpb.New(42 * time.Second)}}}
		}
		b, _ := protojson.Marshal(resp)
		w.Header().Set("content-type", "application/json")
		w.WriteHeader(status)
		w.Write(b)
	}))
	t.Cleanup(rls.Close)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	t.Cleanup(app.Close)
	wasm := module(t, "plugins/rate-limit")
	yaml := fmt.Sprintf(`
static_resources:
  listeners:
  - name: ingress
    address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: { prefix: / }
                route: { cluster: app }
          http_filters:
          - name: rate-limit
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: rate-limit
                root_id: rate-limit
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: '{"limits":[{"requests":%d,"per":"1m"}],"key":["ip"],"global":{"cluster":"ratelimit","domain":"concierge","timeout":"2s","failure_mode":"deny"}}'
                vm_config:
                  vm_id: rate-limit
                  runtime: envoy.wasm.runtime.v8
                  code: { local: { filename: %q } }
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: app
    connect_timeout: 1s
    load_assignment:
      cluster_name: app
      endpoints:
      - lb_endpoints:
        - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: %s } } }
  - name: ratelimit
    connect_timeout: 1s
    load_assignment:
      cluster_name: ratelimit
      endpoints:
      - lb_endpoints:
        - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: %s } } }
`, shared, wasm, portOf(t, app.URL), portOf(t, rls.URL))
	replicas := []*Gateway{start(t, yaml), start(t, yaml)}
	c := client(t)
	var got []int
	for i := 0; i < 2*shared; i++ {
		r := do(t, c, "GET", "http://"+replicas[i%2].Addr("ingress")+"/api", nil, nil)
		got = append(got, r.status)
		if r.status == 429 && r.header.Get("retry-after") != "42" {
			t.Errorf("429 from the shared limit: retry-after %q, want 42", r.header.Get("retry-after"))
		}
	}
	// Each replica's own bucket holds 4: alone they would admit all 8.
	want := []int{200, 200, 200, 200, 429, 429, 429, 429}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("statuses alternating between two replicas = %v, want %v", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(counts) != 1 {
		t.Errorf("descriptors seen by the service: %v, want one (remote_address 127.0.0.1)", counts)
	}
	for k := range counts {
		if !strings.Contains(k, `"remote_address"`) || !strings.Contains(k, `"127.0.0.1"`) {
			t.Errorf("descriptor %s, want remote_address 127.0.0.1", k)
		}
	}
}

// portOf is the port of an httptest server's URL.
func portOf(t testing.TB, url string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	return port
}
