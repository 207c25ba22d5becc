package gateway

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/concierge-wasm/concierge/hosttest/internal/demo"
)

// localGateway serves envoy/local.yaml itself, pointed at demo services
// on OS-chosen ports, with the modules built from plugins/.
func localGateway(t *testing.T) (*Gateway, *demo.Demo) {
	t.Helper()
	d, err := demo.Start(demo.Ports{Users: []int{0, 0}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "envoy", "local.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	y := d.Rewrite(string(raw), "0", "0")
	bs, err := Parse([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Compile(bs, Options{WasmDir: shippedModules(t)})
	if err != nil {
		t.Fatalf("envoy/local.yaml: %v", err)
	}
	tl := &testLog{t: t}
	g, err := Start(cfg, RunOptions{Workers: 2, Log: NewLogger(tl, LevelWarn)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		g.Close()
		tl.mu.Lock()
		tl.done = true
		tl.mu.Unlock()
	})
	return g, d
}

type demoAnswer struct {
	Service  string            `json:"service"`
	Instance string            `json:"instance"`
	Path     string            `json:"path"`
	Headers  map[string]string `json:"headers"`
}

// TestLocalYAMLHeadlines runs the quick start against envoy/local.yaml:
// request IDs, 401 without a token, 200 with the demo token and the
// identity headers the service saw, the envelope on orders, and the
// public route with jwt-auth off.
func TestLocalYAMLHeadlines(t *testing.T) {
	g, d := localGateway(t)
	c := client(t)
	base := "http://" + g.Addr("ingress")
	token, err := d.Token("demo-user", []string{"reader"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("401 without a token", func(t *testing.T) {
		r := do(t, c, "GET", base+"/api/users/1", nil, nil)
		if r.status != 401 || !strings.HasPrefix(r.header.Get("www-authenticate"), `Bearer realm="concierge"`) {
			t.Fatalf("GET /api/users/1 without a token: %d, www-authenticate %q; want 401 Bearer realm=\"concierge\"", r.status, r.header.Get("www-authenticate"))
		}
		var body map[string]any
		if err := json.Unmarshal(r.body, &body); err != nil || body["error"] == nil {
			t.Errorf("denial body %s: want JSON with an error", r.body)
		}
		if id := r.header.Get("x-request-id"); id == "" || body["requestId"] != id {
			t.Errorf("denial: x-request-id %q, body requestId %v: want the same ID in both", id, body["requestId"])
		}
	})

	t.Run("200 with the demo token", func(t *testing.T) {
		r := do(t, c, "GET", base+"/api/users/1", map[string]string{"authorization": "Bearer " + token, "x-user-id": "spoofed"}, nil)
		if r.status != 200 {
			t.Fatalf("GET /api/users/1 with the token: %d %s", r.status, r.body)
		}
		var a demoAnswer
		if err := json.Unmarshal(r.body, &a); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"x-user-id": "demo-user", "x-user-roles": "reader", "x-gateway": "concierge", "x-request-id": r.header.Get("x-request-id")}
		for k, v := range want {
			if a.Headers[k] != v || v == "" {
				t.Errorf("users saw %s = %q, want %q", k, a.Headers[k], v)
			}
		}
		if a.Headers["authorization"] != "" {
			t.Errorf("users saw the token; jwt-auth removes it unless forward: true")
		}
	})

	t.Run("round-robin over both users instances", func(t *testing.T) {
		seen := map[string]bool{}
		for i := 0; i < 4; i++ {
			var a demoAnswer
			json.Unmarshal(do(t, c, "GET", base+"/api/users/1", map[string]string{"authorization": "Bearer " + token}, nil).body, &a)
			seen[a.Instance] = true
		}
		if !seen["users-1"] || !seen["users-2"] {
			t.Errorf("instances seen: %v, want users-1 and users-2", seen)
		}
	})

	t.Run("orders: prefix rewrite and envelope", func(t *testing.T) {
		r := do(t, c, "GET", base+"/api/orders/7", map[string]string{"authorization": "Bearer " + token}, nil)
		var env struct {
			RequestID string     `json:"requestId"`
			Timestamp string     `json:"timestamp"`
			Data      demoAnswer `json:"data"`
		}
		if r.status != 200 || json.Unmarshal(r.body, &env) != nil {
			t.Fatalf("GET /api/orders/7: %d %s", r.status, r.body)
		}
		if env.RequestID == "" || env.RequestID != r.header.Get("x-request-id") || env.Timestamp == "" {
			t.Errorf("envelope %s: want requestId = x-request-id %q and a timestamp", r.body, r.header.Get("x-request-id"))
		}
		if env.Data.Service != "orders" || env.Data.Path != "/orders/7" {
			t.Errorf("orders answered %+v, want service orders at /orders/7", env.Data)
		}
	})

	t.Run("public route without a token", func(t *testing.T) {
		r := do(t, c, "GET", base+"/public/status", nil, nil)
		if r.status != 200 || r.header.Get("x-request-id") == "" {
			t.Errorf("GET /public/status: %d, x-request-id %q; want 200 with an ID (jwt-auth is off there, request-id is not)", r.status, r.header.Get("x-request-id"))
		}
	})

	t.Run("metrics", func(t *testing.T) {
		m := string(do(t, c, "GET", "http://"+g.AdminAddr()+"/stats/prometheus", nil, nil).body)
		if !strings.Contains(m, "concierge_jwt_auth_") || !strings.Contains(m, `envoy_cluster_membership_healthy{envoy_cluster_name="users"} 2`) {
			t.Errorf("/stats/prometheus lacks the jwt-auth metrics or the users membership:\n%s", m)
		}
	})
}

// TestLocalYAMLResponseCache: the quick start's cache line. /public/ pages
// are cacheable for 30 s, so the second GET is a HIT served by the filter
// (the service is not asked again), and orders are never cached.
func TestLocalYAMLResponseCache(t *testing.T) {
	g, d := localGateway(t)
	c := client(t)
	base := "http://" + g.Addr("ingress")
	first := do(t, c, "GET", base+"/public/cached", nil, nil)
	second := do(t, c, "GET", base+"/public/cached", nil, nil)
	if first.status != 200 || first.header.Get("x-cache") != "MISS" || second.header.Get("x-cache") != "HIT" ||
		second.header.Get("cache-status") != "concierge; hit" || string(second.body) != string(first.body) {
		t.Errorf("GET /public/cached twice: %d x-cache %q, then %d x-cache %q cache-status %q; want MISS then the same body as a HIT",
			first.status, first.header.Get("x-cache"), second.status, second.header.Get("x-cache"), second.header.Get("cache-status"))
	}
	if id1, id2 := first.header.Get("x-request-id"), second.header.Get("x-request-id"); id2 == "" || id1 == id2 {
		t.Errorf("a hit must carry its own request ID: %q then %q", id1, id2)
	}
	token, err := d.Token("demo-user", []string{"reader"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		r := do(t, c, "GET", base+"/api/orders/7", map[string]string{"authorization": "Bearer " + token}, nil)
		if r.status != 200 || r.header.Get("x-cache") != "" {
			t.Errorf("GET /api/orders/7: %d x-cache %q; want 200 untouched by the cache", r.status, r.header.Get("x-cache"))
		}
	}
}
