package gateway

import (
	"regexp"
	"testing"
)

func TestVirtualHostSelection(t *testing.T) {
	vh := func(name string, domains ...string) *VirtualHost {
		return &VirtualHost{Name: name, Domains: domains, Routes: []*Route{{Name: name, match: routeMatch{kind: matchPrefix, value: "/", caseSensitive: true}}}}
	}
	tbl := &RouteTable{VirtualHosts: []*VirtualHost{
		vh("any", "*"), vh("suffix", "*.example.com"), vh("longer-suffix", "*.api.example.com"),
		vh("prefix", "api.*"), vh("exact", "api.example.com"), vh("port", "example.org:8080"),
	}}
	for host, want := range map[string]string{
		"api.example.com":   "exact",
		"x.api.example.com": "longer-suffix",
		"www.example.com":   "suffix",
		"api.internal":      "prefix",
		"other.test":        "any",
		"EXAMPLE.ORG:8080":  "port",
		"example.org":       "any",
	} {
		rt := tbl.Match(request{authority: host, path: "/", header: func(string) []string { return nil }})
		if rt == nil || rt.Name != want {
			t.Errorf("Match(host %q) = %v, want virtual host %s", host, rt, want)
		}
	}
}

func TestRouteMatchers(t *testing.T) {
	hdr := map[string][]string{"x-env": {"prod"}, "x-n": {"42"}, "x-multi": {"a", "b"}}
	req := func(path string) request {
		return request{authority: "h", path: path, method: "GET", header: func(n string) []string { return hdr[n] }}
	}
	for _, tc := range []struct {
		name string
		m    routeMatch
		path string
		want bool
	}{
		{"prefix includes the query", routeMatch{kind: matchPrefix, value: "/a?x", caseSensitive: true}, "/a?x=1", true},
		{"prefix is case-sensitive", routeMatch{kind: matchPrefix, value: "/API", caseSensitive: true}, "/api/x", false},
		{"prefix, case_sensitive false", routeMatch{kind: matchPrefix, value: "/API"}, "/api/x", true},
		{"path ignores the query", routeMatch{kind: matchPath, value: "/a", caseSensitive: true}, "/a?q", true},
		{"path is exact", routeMatch{kind: matchPath, value: "/a", caseSensitive: true}, "/ab", false},
		{"separated prefix at a segment end", routeMatch{kind: matchSeparated, value: "/api", caseSensitive: true}, "/api/x", true},
		{"separated prefix alone", routeMatch{kind: matchSeparated, value: "/api", caseSensitive: true}, "/api?x", true},
		{"separated prefix mid-segment", routeMatch{kind: matchSeparated, value: "/api", caseSensitive: true}, "/apix", false},
		{"regex matches the whole path", routeMatch{kind: matchRegex, re: regexp.MustCompile(`^(?:/v[0-9]+)$`)}, "/v1", true},
		{"regex whole path only", routeMatch{kind: matchRegex, re: regexp.MustCompile(`^(?:/v[0-9]+)$`)}, "/v1/x", false},
		{"header exact", routeMatch{kind: matchPrefix, value: "/", headers: []headerMatch{{name: "x-env", kind: "exact", value: "prod"}}}, "/", true},
		{"header exact, inverted", routeMatch{kind: matchPrefix, value: "/", headers: []headerMatch{{name: "x-env", kind: "exact", value: "prod", invert: true}}}, "/", false},
		{"header absent fails even inverted", routeMatch{kind: matchPrefix, value: "/", headers: []headerMatch{{name: "x-none", kind: "exact", value: "a", invert: true}}}, "/", false},
		{"header present_match false", routeMatch{kind: matchPrefix, value: "/", headers: []headerMatch{{name: "x-none", kind: "present", present: false}}}, "/", true},
		{"header range", routeMatch{kind: matchPrefix, value: "/", headers: []headerMatch{{name: "x-n", kind: "range", start: 40, end: 43}}}, "/", true},
		{"multiple values joined by commas", routeMatch{kind: matchPrefix, value: "/", headers: []headerMatch{{name: "x-multi", kind: "exact", value: "a,b"}}}, "/", true},
		{"pseudo-header :method", routeMatch{kind: matchPrefix, value: "/", headers: []headerMatch{{name: ":method", kind: "exact", value: "POST"}}}, "/", false},
	} {
		if got := tc.m.matches(req(tc.path)); got != tc.want {
			t.Errorf("%s: matches(%q) = %v, want %v", tc.name, tc.path, got, tc.want)
		}
	}
}
