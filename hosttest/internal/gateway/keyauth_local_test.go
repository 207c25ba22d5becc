package gateway

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/concierge-wasm/concierge/hosttest/internal/demo"
)

// TestLocalYAMLKeyOrToken runs key-auth's quick start against
// envoy/local.yaml over real sockets: the demo partner key (its digest is
// in local.yaml) passes as the consumer, a read-only key cannot write, a
// bad key is refused even beside a valid token, the demo token still
// passes, and a client's own x-consumer never reaches the service.
func TestLocalYAMLKeyOrToken(t *testing.T) {
	g, d := localGateway(t)
	c := client(t)
	base := "http://" + g.Addr("ingress")
	token, err := d.Token("demo-user", []string{"reader"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	seen := func(t *testing.T, r resp) map[string]string {
		t.Helper()
		var a demoAnswer
		if r.status != 200 || json.Unmarshal(r.body, &a) != nil {
			t.Fatalf("status %d, body %s; want 200 from the users service", r.status, r.body)
		}
		return a.Headers
	}

	t.Run("partner key", func(t *testing.T) {
		h := seen(t, do(t, c, "GET", base+"/api/users/1", map[string]string{"x-api-key": demo.PartnerKey, "x-consumer": "ops", "x-user-id": "root"}, nil))
		want := map[string]string{"x-consumer": "demo-partner", "x-consumer-permissions": "read", "x-user-id": "", "x-api-key": ""}
		for k, v := range want {
			if h[k] != v {
				t.Errorf("users saw %s = %q, want %q", k, h[k], v)
			}
		}
	})
	t.Run("read-only key cannot write", func(t *testing.T) {
		r := do(t, c, "POST", base+"/api/users/1", map[string]string{"x-api-key": demo.PartnerKey}, []byte("{}"))
		if r.status != 403 || !strings.Contains(string(r.body), `"error":"permission denied"`) {
			t.Errorf("POST with the read-only key: %d %s, want 403 permission denied", r.status, r.body)
		}
	})
	t.Run("bad key, even with a token", func(t *testing.T) {
		r := do(t, c, "GET", base+"/api/users/1", map[string]string{"x-api-key": "wrong", "authorization": "Bearer " + token}, nil)
		if r.status != 401 || r.header.Get("www-authenticate") != `Key realm="concierge"` || !strings.Contains(string(r.body), `"error":"invalid API key"`) {
			t.Errorf("bad key: %d, www-authenticate %q, %s; want 401 invalid API key with a Key challenge", r.status, r.header.Get("www-authenticate"), r.body)
		}
	})
	t.Run("token, no key", func(t *testing.T) {
		h := seen(t, do(t, c, "GET", base+"/api/users/1", map[string]string{"authorization": "Bearer " + token, "x-consumer": "ops"}, nil))
		if h["x-user-id"] != "demo-user" || h["x-consumer"] != "" {
			t.Errorf("users saw x-user-id %q, x-consumer %q; want demo-user and none", h["x-user-id"], h["x-consumer"])
		}
	})
	t.Run("neither", func(t *testing.T) {
		if r := do(t, c, "GET", base+"/api/users/1", nil, nil); r.status != 401 || !strings.HasPrefix(r.header.Get("www-authenticate"), "Bearer") {
			t.Errorf("no credential: %d, www-authenticate %q; want 401 from jwt-auth", r.status, r.header.Get("www-authenticate"))
		}
	})
	t.Run("metrics", func(t *testing.T) {
		m := string(do(t, c, "GET", "http://"+g.AdminAddr()+"/stats/prometheus", nil, nil).body)
		for _, want := range []string{"concierge_key_auth_allowed_total", "concierge_key_auth_consumer_demo_partner_requests_total", "concierge_jwt_auth_key_auth_accepted_total"} {
			if !strings.Contains(m, want) {
				t.Errorf("/stats/prometheus lacks %s", want)
			}
		}
	})
}
