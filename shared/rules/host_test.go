//go:build !wasm

package rules

import (
	"testing"

	"github.com/concierge-wasm/concierge/shared/internal/proxytesting"
)

// TestHostRequest reads a Request through the SDK's emulator. Not parallel:
// proxytest is process-global.
func TestHostRequest(t *testing.T) {
	headers := [][2]string{
		{":authority", "api.example.com:8443"}, {":path", "/a/b?x=1"}, {":method", "POST"},
		{"x-tenant", "big"},
	}
	route := proxytesting.Property{Path: []string{"xds", "route_name"}, Value: []byte("payments")}
	tests := []struct {
		name      string
		rules     string
		props     []proxytesting.Property
		wantRoute string
		wantRule  int
	}{
		{"route read when a rule uses it", `[{"match":{"route":"payments"}}]`, []proxytesting.Property{route}, "payments", 0},
		{"route not read otherwise", `[{"match":{"prefix":"/a/"}}]`, []proxytesting.Property{route}, "", 0},
		{"route unknown to the host", `[{"match":{"route":"payments"}}]`, nil, "", -1},
		{"headers through the host", `[{"match":{"headers":[{"name":"x-tenant","exact":"big"},{"name":"x-none","present":false}]}}]`, nil, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustParseSet(t, `{"rules":`+tt.rules+`}`)
			var req Request
			var d Decision[limits]
			proxytesting.NewStream(t, headers, func() {
				req = s.HostRequest()
				d = s.Decide(&req)
			}, tt.props...)
			if req.Host != "api.example.com:8443" || req.Path != "/a/b?x=1" || req.Method != "POST" || req.Route != tt.wantRoute {
				t.Errorf("HostRequest() = %+v, want host api.example.com:8443, path /a/b?x=1, method POST, route %q", req, tt.wantRoute)
			}
			if d.Rule != tt.wantRule {
				t.Errorf("Decide(HostRequest()) = rule %d, want %d", d.Rule, tt.wantRule)
			}
		})
	}
}
