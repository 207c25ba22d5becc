package rules

import "testing"

func TestHeadersAndRequestOf(t *testing.T) {
	h := [][2]string{{":authority", "api.example.com"}, {":path", "/a?b"}, {":method", "GET"}, {"X-Tenant", "one"}, {"x-tenant", "two"}}
	r := RequestOf(h)
	if r.Host != "api.example.com" || r.Path != "/a?b" || r.Method != "GET" || r.Route != "" {
		t.Fatalf("RequestOf = %+v", r)
	}
	for _, tc := range []struct {
		name, want string
		ok         bool
	}{
		{"x-tenant", "one", true}, // the first value, whatever the case
		{"X-TENANT", "one", true},
		{"x-missing", "", false},
	} {
		if v, ok := r.Header(tc.name); v != tc.want || ok != tc.ok {
			t.Errorf("Header(%q) = %q, %v; want %q, %v", tc.name, v, ok, tc.want, tc.ok)
		}
		if v := Headers(h).Value(tc.name); v != tc.want {
			t.Errorf("Value(%q) = %q, want %q", tc.name, v, tc.want)
		}
	}
}
