package rules

import (
	"testing"

	"github.com/concierge-wasm/concierge/shared/config"
)

// limits stands in for a filter's own per-rule settings.
type limits struct {
	MaxTokens int
}

// parseSet parses doc as a filter would, with a max_tokens override that
// defaults to the top-level value.
func parseSet(t testing.TB, doc string) (Set[limits], error) {
	t.Helper()
	o, err := config.Parse([]byte(doc))
	if err != nil {
		t.Fatalf("config.Parse(%q) error = %v", doc, err)
	}
	top := o.Int("max_tokens", 100)
	s := Parse(o, func(r *config.Object) limits {
		return limits{MaxTokens: r.Int("max_tokens", top)}
	})
	return s, o.Err()
}

func mustParseSet(t testing.TB, doc string) Set[limits] {
	t.Helper()
	s, err := parseSet(t, doc)
	if err != nil {
		t.Fatalf("parsing %s: %v", doc, err)
	}
	return s
}

// headers builds a Request.Header lookup from name/value pairs.
func headers(kv ...string) func(string) (string, bool) {
	m := make(map[string]string, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(name string) (string, bool) {
		v, ok := m[name]
		return v, ok
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want string
	}{
		{"no rules", `{}`, ""},
		{"empty rules", `{"rules":[]}`, ""},
		{"every criterion", `{"rules":[{"match":{
			"host":"*.Example.com","prefix":"/api/","methods":["get","POST"],
			"headers":[{"name":"X-A","exact":"1"},{"name":"x-b","prefix":"b"},{"name":"x-c","present":true},{"name":"x-d","present":false}],
			"route":"r1"}, "enabled":false, "shadow":true, "max_tokens":5}]}`, ""},
		{"absent match is last", `{"rules":[{"match":{"path":"/a"}},{"enabled":false}]}`, ""},
		{"pseudo-header", `{"rules":[{"match":{"headers":[{"name":":scheme","exact":"http"}]}}]}`, ""},
		{"ipv6 host", `{"rules":[{"match":{"host":"[::1]"}}]}`, ""},
		{"any host", `{"rules":[{"match":{"host":"*"}}]}`, ""},

		{"rules not a list", `{"rules":{}}`, "rules: must be an array of objects, got {}"},
		{"rule not an object", `{"rules":[1]}`, "rules[0]: must be an object, got 1"},
		{"unknown rule key", `{"rules":[{"match":{},"max_tokns":1}]}`, `rules[0]: unknown field "max_tokns"`},
		{"unknown match key", `{"rules":[{"match":{"paht":"/"}}]}`, `rules[0].match: unknown field "paht"`},
		{"override type error", `{"rules":[{"max_tokens":"5"}]}`, `rules[0].max_tokens: must be an integer, got "5"`},
		{"enabled type error", `{"rules":[{"enabled":"no"}]}`, `rules[0].enabled: must be a boolean, got "no"`},
		{"top-level shadow type error", `{"shadow":1}`, `shadow: must be a boolean, got 1`},
		{"match not an object", `{"rules":[{"match":"/a"}]}`, `rules[0].match: must be an object, got "/a"`},
		{"prefix and path", `{"rules":[{"match":{"prefix":"/a","path":"/a"}}]}`, "rules[0].match: set either prefix or path, not both"},
		{"prefix without slash", `{"rules":[{"match":{"prefix":"api"}}]}`, `rules[0].match.prefix: must start with "/", got "api"`},
		{"empty path", `{"rules":[{"match":{"path":""}}]}`, `rules[0].match.path: must start with "/", got ""`},
		{"path not normalized", `{"rules":[{"match":{"path":"/a//b/./c"}}]}`, `rules[0].match.path: must be a normalized path ("/a/b/c"), got "/a//b/./c"`},
		{"prefix with query", `{"rules":[{"match":{"prefix":"/a?x=1"}}]}`, `rules[0].match.prefix: must be a normalized path ("/a"), got "/a?x=1"`},
		{"prefix with lower-case escape", `{"rules":[{"match":{"prefix":"/a%2fb"}}]}`, `rules[0].match.prefix: must be a normalized path ("/a%2Fb"), got "/a%2fb"`},
		{"host with port", `{"rules":[{"match":{"host":"a.com:8080"}}]}`, ""},
		{"host with trailing dot", `{"rules":[{"match":{"host":"a.com."}}]}`, ""},
		{"host prefix wildcard", `{"rules":[{"match":{"host":"a.com:*"}}]}`, ""},
		{"host suffix wildcard without a dot", `{"rules":[{"match":{"host":"*-api.a.com"}}]}`, ""},
		{"host wildcard in the middle", `{"rules":[{"match":{"host":"a.*.com"}}]}`, `rules[0].match.host: must hold at most one "*", first or last (as Envoy's virtual-host domains), got "a.*.com"`},
		{"host two wildcards", `{"rules":[{"match":{"host":"*.a.*"}}]}`, `rules[0].match.host: must hold at most one "*", first or last (as Envoy's virtual-host domains), got "*.a.*"`},
		{"host with a space", `{"rules":[{"match":{"host":"a.com "}}]}`, `rules[0].match.host: must be an authority (host[:port]) without spaces or control characters, got "a.com "`},
		{"host with a path", `{"rules":[{"match":{"host":"a.com/x"}}]}`, `rules[0].match.host: must be an authority (host[:port]) without spaces or control characters, got "a.com/x"`},
		{"host empty", `{"rules":[{"match":{"host":""}}]}`, `rules[0].match.host: must not be empty`},
		{"host not a string", `{"rules":[{"match":{"host":1}}]}`, `rules[0].match.host: must be a string, got 1`},
		{"methods empty", `{"rules":[{"match":{"methods":[]}}]}`, `rules[0].match.methods: must not be empty`},
		{"method not a token", `{"rules":[{"match":{"methods":["GET","PO ST"]}}]}`, `rules[0].match.methods[1]: must be an HTTP method, got "PO ST"`},
		{"methods not a list", `{"rules":[{"match":{"methods":"GET"}}]}`, `rules[0].match.methods: must be an array of strings, got "GET"`},
		{"headers empty", `{"rules":[{"match":{"headers":[]}}]}`, `rules[0].match.headers: must not be empty`},
		{"header without name", `{"rules":[{"match":{"headers":[{"exact":"1"}]}}]}`, `rules[0].match.headers[0].name: must be a header name, got ""`},
		{"header bad name", `{"rules":[{"match":{"headers":[{"name":"x y","exact":"1"}]}}]}`, `rules[0].match.headers[0].name: must be a header name, got "x y"`},
		{"header without condition", `{"rules":[{"match":{"headers":[{"name":"x"}]}}]}`, `rules[0].match.headers[0]: set exactly one of exact, prefix, present`},
		{"header with two conditions", `{"rules":[{"match":{"headers":[{"name":"x","exact":"1","prefix":"1"}]}}]}`, `rules[0].match.headers[0]: set exactly one of exact, prefix, present`},
		{"header unknown key", `{"rules":[{"match":{"headers":[{"name":"x","regex":"1"}]}}]}`, `rules[0].match.headers[0]: set exactly one of exact, prefix, present`},
		{"header unknown key besides a condition", `{"rules":[{"match":{"headers":[{"name":"x","exact":"1","regex":"1"}]}}]}`, `rules[0].match.headers[0]: unknown field "regex"`},
		{"header present not bool", `{"rules":[{"match":{"headers":[{"name":"x","present":"yes"}]}}]}`, `rules[0].match.headers[0].present: must be a boolean, got "yes"`},
		{"route empty", `{"rules":[{"match":{"route":""}}]}`, `rules[0].match.route: must not be empty`},
		{"rule after a catch-all", `{"rules":[{"match":{"prefix":"/a"}},{"match":{}},{"match":{"prefix":"/b"}}]}`, `rules[2]: unreachable: rules[1] matches every request`},
		{"rule after a host wildcard *", `{"rules":[{"match":{"host":"*"}},{}]}`, `rules[1]: unreachable: rules[0] matches every request`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseSet(t, tt.doc)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("Parse(%s) error = %q, want %q", tt.doc, got, tt.want)
			}
		})
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		name  string
		rules string // the JSON list
		req   Request
		want  int // matched rule index, -1 for none
	}{
		{"no rules", `[]`, Request{Path: "/"}, -1},
		{"empty match", `[{"match":{}}]`, Request{}, 0},
		{"absent match", `[{}]`, Request{Path: "/x"}, 0},
		{"first match wins", `[{"match":{"prefix":"/a"}},{"match":{"prefix":"/a/b"}}]`, Request{Path: "/a/b"}, 0},
		{"falls through to a later rule", `[{"match":{"prefix":"/x"}},{"match":{"prefix":"/a"}}]`, Request{Path: "/a"}, 1},

		{"host exact", `[{"match":{"host":"api.example.com"}}]`, Request{Host: "api.example.com"}, 0},
		{"host case-insensitive", `[{"match":{"host":"API.example.com"}}]`, Request{Host: "api.EXAMPLE.com"}, 0},
		{"host port ignored by a rule that adds nothing", `[{"match":{"host":"api.example.com"}}]`, Request{Host: "api.example.com:8443"}, 0},
		{"host trailing dot ignored", `[{"match":{"host":"api.example.com"}}]`, Request{Host: "api.example.com.:80"}, 0},
		{"host other", `[{"match":{"host":"api.example.com"}}]`, Request{Host: "www.example.com"}, -1},
		{"host suffix is not enough", `[{"match":{"host":"example.com"}}]`, Request{Host: "evilexample.com"}, -1},
		{"wildcard one label", `[{"match":{"host":"*.example.com"}}]`, Request{Host: "a.example.com"}, 0},
		{"wildcard two labels", `[{"match":{"host":"*.example.com"}}]`, Request{Host: "a.b.Example.com:80"}, 0},
		{"wildcard not the apex", `[{"match":{"host":"*.example.com"}}]`, Request{Host: "example.com"}, -1},
		{"wildcard not a lookalike", `[{"match":{"host":"*.example.com"}}]`, Request{Host: "evilexample.com"}, -1},
		{"wildcard not the bare dot", `[{"match":{"host":"*.example.com"}}]`, Request{Host: ".example.com"}, -1},
		{"ipv6 host with port", `[{"match":{"host":"[::1]"}}]`, Request{Host: "[::1]:8080"}, 0},
		{"ipv6 host other", `[{"match":{"host":"[::1]"}}]`, Request{Host: "[::2]"}, -1},
		{"no host header", `[{"match":{"host":"a.com"}}]`, Request{}, -1},

		{"prefix", `[{"match":{"prefix":"/api"}}]`, Request{Path: "/api/users"}, 0},
		{"prefix is a string prefix, as in Envoy", `[{"match":{"prefix":"/api"}}]`, Request{Path: "/apiv2"}, 0},
		{"prefix with slash", `[{"match":{"prefix":"/api/"}}]`, Request{Path: "/apiv2"}, -1},
		{"prefix ignores query", `[{"match":{"prefix":"/a/b"}}]`, Request{Path: "/a?/b"}, -1},
		{"prefix is case-sensitive", `[{"match":{"prefix":"/api"}}]`, Request{Path: "/API"}, -1},
		{"prefix after dot segments", `[{"match":{"prefix":"/public"},"enabled":false}]`, Request{Path: "/public/../admin"}, -1},
		{"prefix as sent, before dot segments", `[{"match":{"prefix":"/public"}}]`, Request{Path: "/public/../admin"}, 0},
		{"prefix after encoded dot segments", `[{"match":{"prefix":"/admin"}}]`, Request{Path: "/public/%2e%2E/admin"}, 0},
		{"prefix after merged slashes", `[{"match":{"prefix":"/admin"}}]`, Request{Path: "//admin"}, 0},
		{"prefix after backslash", `[{"match":{"prefix":"/admin"}}]`, Request{Path: `/public\..\admin`}, 0},
		{"encoded slash stays a character", `[{"match":{"prefix":"/public/"}}]`, Request{Path: "/public%2F..%2Fadmin"}, -1},
		{"path exact", `[{"match":{"path":"/healthz"}}]`, Request{Path: "/healthz"}, 0},
		{"path ignores query", `[{"match":{"path":"/healthz"}}]`, Request{Path: "/healthz?full=1"}, 0},
		{"hash is not a fragment", `[{"match":{"path":"/healthz"}}]`, Request{Path: "/healthz#x"}, -1},
		{"path is not a prefix", `[{"match":{"path":"/healthz"}}]`, Request{Path: "/healthz/x"}, -1},
		{"path trailing slash differs", `[{"match":{"path":"/healthz"}}]`, Request{Path: "/healthz/"}, -1},
		{"path with decoded unreserved", `[{"match":{"path":"/a-b"}}]`, Request{Path: "/a%2Db"}, 0},
		{"empty path", `[{"match":{"prefix":"/"}}]`, Request{}, -1},
		{"asterisk path", `[{"match":{"prefix":"/"}}]`, Request{Path: "*"}, -1},

		{"method", `[{"match":{"methods":["GET","HEAD"]}}]`, Request{Method: "HEAD"}, 0},
		{"method other", `[{"match":{"methods":["GET","HEAD"]}}]`, Request{Method: "POST"}, -1},
		{"method config upper-cased", `[{"match":{"methods":["get"]}}]`, Request{Method: "GET"}, 0},
		{"method request is case-sensitive", `[{"match":{"methods":["GET"]}}]`, Request{Method: "get"}, -1},

		{"header exact", `[{"match":{"headers":[{"name":"X-Tenant","exact":"a"}]}}]`, Request{Header: headers("x-tenant", "a")}, 0},
		{"header exact other", `[{"match":{"headers":[{"name":"x-tenant","exact":"a"}]}}]`, Request{Header: headers("x-tenant", "ab")}, -1},
		{"header exact absent", `[{"match":{"headers":[{"name":"x-tenant","exact":""}]}}]`, Request{Header: headers()}, -1},
		{"header exact empty value", `[{"match":{"headers":[{"name":"x-tenant","exact":""}]}}]`, Request{Header: headers("x-tenant", "")}, 0},
		{"header prefix", `[{"match":{"headers":[{"name":"x-tenant","prefix":"a"}]}}]`, Request{Header: headers("x-tenant", "ab")}, 0},
		{"header present", `[{"match":{"headers":[{"name":"x-debug","present":true}]}}]`, Request{Header: headers("x-debug", "")}, 0},
		{"header present but absent", `[{"match":{"headers":[{"name":"x-debug","present":true}]}}]`, Request{Header: headers()}, -1},
		{"header absent", `[{"match":{"headers":[{"name":"x-debug","present":false}]}}]`, Request{Header: headers()}, 0},
		{"header absent but present", `[{"match":{"headers":[{"name":"x-debug","present":false}]}}]`, Request{Header: headers("x-debug", "1")}, -1},
		{"header absent with nil lookup", `[{"match":{"headers":[{"name":"x-debug","present":false}]}}]`, Request{}, 0},
		{"all headers must hold", `[{"match":{"headers":[{"name":"a","present":true},{"name":"b","present":true}]}}]`, Request{Header: headers("a", "1")}, -1},

		{"route", `[{"match":{"route":"payments"}}]`, Request{Route: "payments"}, 0},
		{"route other", `[{"match":{"route":"payments"}}]`, Request{Route: "payment"}, -1},
		{"route unknown to the host", `[{"match":{"route":"payments"}}]`, Request{}, -1},

		{"all criteria", `[{"match":{"host":"a.com","prefix":"/x","methods":["GET"],"route":"r","headers":[{"name":"h","exact":"v"}]}}]`,
			Request{Host: "a.com", Path: "/x/y", Method: "GET", Route: "r", Header: headers("h", "v")}, 0},
		{"all criteria but one", `[{"match":{"host":"a.com","prefix":"/x","methods":["GET"],"route":"r","headers":[{"name":"h","exact":"v"}]}}]`,
			Request{Host: "a.com", Path: "/x/y", Method: "GET", Route: "r", Header: headers("h", "w")}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := mustParseSet(t, `{"rules":`+tt.rules+`}`)
			got := -1
			if r := s.Match(&tt.req); r != nil {
				got = r.Index
			}
			if got != tt.want {
				t.Errorf("Match(%+v) with rules %s = rule %d, want %d", tt.req, tt.rules, got, tt.want)
			}
		})
	}
}

// grant stands in for an override that weakens a filter (jwt-auth's
// allow_missing).
type grant struct {
	Open bool
}

func (g grant) LowersProtection() bool { return g.Open }

// TestLoweringRulesMatchEveryView: a rule that lowers protection applies
// only when the authority as sent and both the raw and the normalized path
// match it, because the router picks the virtual host and the route on the
// request as sent (issue: a host rule opened the protected catch-all
// virtual host for "public.example.com:8080"). Other rules match either
// view, so that a rule that adds protection covers every spelling.
func TestLoweringRulesMatchEveryView(t *testing.T) {
	const (
		off    = `"enabled":false`
		shadow = `"shadow":true`
		open   = `"open":true`
		strict = `"open":false`
	)
	tests := []struct {
		name  string
		match string // the rule's match object
		kind  string // what else the rule sets
		req   Request
		want  bool
	}{
		{"host as configured", `{"host":"public.example.com"}`, off, Request{Host: "public.example.com"}, true},
		{"host other case", `{"host":"public.example.com"}`, off, Request{Host: "Public.Example.COM"}, true},
		{"host with a port", `{"host":"public.example.com"}`, off, Request{Host: "public.example.com:8080"}, false},
		{"host with a trailing dot", `{"host":"public.example.com"}`, off, Request{Host: "public.example.com."}, false},
		{"host with an empty port", `{"host":"public.example.com"}`, off, Request{Host: "public.example.com:"}, false},
		{"host with a dot and a port", `{"host":"public.example.com"}`, shadow, Request{Host: "public.example.com.:80"}, false},
		{"host with a port, lowering override", `{"host":"public.example.com"}`, open, Request{Host: "public.example.com:443"}, false},
		{"host with a port, neutral override", `{"host":"public.example.com"}`, strict, Request{Host: "public.example.com:443"}, true},
		{"host pattern with the port", `{"host":"public.example.com:8080"}`, off, Request{Host: "public.example.com:8080"}, true},
		{"host pattern with the port, other port", `{"host":"public.example.com:8080"}`, off, Request{Host: "public.example.com:8081"}, false},
		{"host pattern with any port", `{"host":"public.example.com:*"}`, off, Request{Host: "public.example.com:8443"}, true},
		{"host pattern with any port, no port", `{"host":"public.example.com:*"}`, off, Request{Host: "public.example.com"}, false},
		{"host pattern with any port, empty port", `{"host":"public.example.com:*"}`, off, Request{Host: "public.example.com:"}, false},
		{"suffix wildcard", `{"host":"*.example.com"}`, off, Request{Host: "a.example.com"}, true},
		{"suffix wildcard, port", `{"host":"*.example.com"}`, off, Request{Host: "a.example.com:80"}, false},
		{"suffix wildcard without a dot", `{"host":"*-api.example.com"}`, off, Request{Host: "eu-api.example.com"}, true},
		{"suffix wildcard needs a character", `{"host":"*-api.example.com"}`, off, Request{Host: "-api.example.com"}, false},
		{"prefix wildcard", `{"host":"api.*"}`, off, Request{Host: "api.example.com:8080"}, true},
		{"prefix wildcard needs a character", `{"host":"api.*"}`, off, Request{Host: "api."}, false},
		{"ipv6 host", `{"host":"[::1]"}`, off, Request{Host: "[::1]"}, true},
		{"ipv6 host with a port", `{"host":"[::1]"}`, off, Request{Host: "[::1]:80"}, false},

		{"prefix", `{"prefix":"/open/"}`, off, Request{Path: "/open/p?x=1"}, true},
		{"prefix, normalized elsewhere", `{"prefix":"/open/"}`, off, Request{Path: "/open/../api/orders"}, false},
		{"prefix, raw elsewhere", `{"prefix":"/open/"}`, off, Request{Path: "/api/orders/../../open/p"}, false},
		{"prefix, raw elsewhere, shadow", `{"prefix":"/open/"}`, shadow, Request{Path: "/api/orders/../../open/p"}, false},
		{"prefix, raw elsewhere, lowering override", `{"prefix":"/open/"}`, open, Request{Path: "/api/orders/../../open/p"}, false},
		{"prefix, raw elsewhere, neutral override", `{"prefix":"/open/"}`, strict, Request{Path: "/api/orders/../../open/p"}, true},
		{"prefix, encoded dots", `{"prefix":"/open/"}`, off, Request{Path: "/open/%2e%2e/admin"}, false},
		{"prefix, encoded letter", `{"prefix":"/open/"}`, off, Request{Path: "/%6Fpen/x"}, false},
		{"prefix, doubled slash", `{"prefix":"/open/"}`, off, Request{Path: "//open/x"}, false},
		{"prefix, doubled slash inside", `{"prefix":"/open/"}`, off, Request{Path: "/open//x"}, true},
		{"prefix, backslash", `{"prefix":"/open/"}`, off, Request{Path: `/open\..\admin`}, false},
		{"prefix, hash is not a fragment", `{"prefix":"/open/"}`, off, Request{Path: "/open/x#/../../x/secret.txt"}, false},
		{"prefix, hash in a segment", `{"prefix":"/open/"}`, off, Request{Path: "/open/a#b"}, true},
		{"path", `{"path":"/healthz"}`, off, Request{Path: "/healthz?full=1"}, true},
		{"path, trailing dot segment", `{"path":"/healthz"}`, off, Request{Path: "/healthz/."}, false},
		{"path, hash", `{"path":"/healthz"}`, off, Request{Path: "/healthz#x"}, false},
		{"path, lower-case escape", `{"path":"/a%3Fb"}`, off, Request{Path: "/a%3fb"}, false},
		// The cautions of the package doc, pinned: these behave as Envoy's
		// route matching does.
		{"caution: prefix does not cover its directory", `{"prefix":"/admin/"}`, strict, Request{Path: "/admin?x=1"}, false},
		{"caution: parameters pass a prefix", `{"prefix":"/admin/"}`, strict, Request{Path: "/admin;x=1/users"}, false},
		{"caution: case passes a prefix", `{"prefix":"/admin/"}`, strict, Request{Path: "/ADMIN/users"}, false},
		{"caution: ..; is not a dot segment", `{"prefix":"/public/"}`, off, Request{Path: "/public/..;/admin"}, true},
		{"caution: %2F stays encoded", `{"prefix":"/public/"}`, off, Request{Path: "/public/..%2Fadmin"}, true},
		{"prefix, neutral, raw here", `{"prefix":"/admin/"}`, strict, Request{Path: "/admin/../healthz"}, true},
		{"path, neutral, normalized here", `{"path":"/admin"}`, strict, Request{Path: "/x/../admin"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			doc := `{"rules":[{"match":` + tt.match + `,` + tt.kind + `}]}`
			o, err := config.Parse([]byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			s := Parse(o, func(r *config.Object) grant { return grant{Open: r.Bool("open", false)} })
			if err := o.Err(); err != nil {
				t.Fatalf("Parse(%s): %v", doc, err)
			}
			if got := s.Match(&tt.req) != nil; got != tt.want {
				t.Errorf("Match(%+v) with %s = %v, want %v", tt.req, doc, got, tt.want)
			}
		})
	}
}

func TestLowersProtection(t *testing.T) {
	tests := []struct {
		top, rule string
		want      bool
	}{
		{`false`, `{}`, false},
		{`false`, `{"enabled":false}`, true},
		{`false`, `{"shadow":true}`, true},
		{`true`, `{"shadow":true}`, false},
		{`true`, `{}`, false},
		{`true`, `{"shadow":false}`, false},
		{`false`, `{"open":true}`, true},
		{`false`, `{"open":false}`, false},
	}
	for _, tt := range tests {
		doc := `{"shadow":` + tt.top + `,"rules":[` + tt.rule + `]}`
		o, err := config.Parse([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		s := Parse(o, func(r *config.Object) grant { return grant{Open: r.Bool("open", false)} })
		if err := o.Err(); err != nil {
			t.Fatalf("Parse(%s): %v", doc, err)
		}
		if got := s.Rules[0].LowersProtection; got != tt.want {
			t.Errorf("Parse(%s).Rules[0].LowersProtection = %v, want %v", doc, got, tt.want)
		}
	}
}

func TestDecide(t *testing.T) {
	const rules = `[
		{"match":{"path":"/off"},"enabled":false},
		{"match":{"path":"/shadow"},"shadow":true},
		{"match":{"path":"/enforce"},"shadow":false},
		{"match":{"path":"/inherit"},"max_tokens":7}
	]`
	tests := []struct {
		name       string
		topShadow  bool
		path       string
		want       Decision[limits]
		wantTokens int // Override.MaxTokens, when a rule matched
	}{
		{"no match", false, "/other", Decision[limits]{Enabled: true, Rule: -1}, 0},
		{"no match, top-level shadow", true, "/other", Decision[limits]{Enabled: true, Shadow: true, Rule: -1}, 0},
		{"disabled", false, "/off", Decision[limits]{Enabled: false, Rule: 0}, 100},
		{"rule shadow", false, "/shadow", Decision[limits]{Enabled: true, Shadow: true, Rule: 1}, 100},
		{"rule enforces despite top-level shadow", true, "/enforce", Decision[limits]{Enabled: true, Rule: 2}, 100},
		{"rule inherits top-level shadow", true, "/inherit", Decision[limits]{Enabled: true, Shadow: true, Rule: 3}, 7},
		{"rule inherits no shadow", false, "/inherit", Decision[limits]{Enabled: true, Rule: 3}, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			shadow := "false"
			if tt.topShadow {
				shadow = "true"
			}
			s := mustParseSet(t, `{"shadow":`+shadow+`,"rules":`+rules+`}`)
			got := s.Decide(&Request{Path: tt.path})
			gotTokens := 0
			if got.Override != nil {
				gotTokens = got.Override.MaxTokens
			}
			if (got.Override == nil) != (tt.want.Rule < 0) {
				t.Errorf("Decide(%s).Override = %v, want non-nil exactly when a rule matched", tt.path, got.Override)
			}
			got.Override = nil
			if got != tt.want || gotTokens != tt.wantTokens {
				t.Errorf("Decide(%s) = %+v with max_tokens %d, want %+v with %d", tt.path, got, gotTokens, tt.want, tt.wantTokens)
			}
		})
	}
}

func TestParseWithoutOverride(t *testing.T) {
	t.Parallel()
	o, err := config.Parse([]byte(`{"rules":[{"match":{"prefix":"/a"},"enabled":false}]}`))
	if err != nil {
		t.Fatal(err)
	}
	s := Parse[struct{}](o, nil)
	if err := o.Err(); err != nil {
		t.Fatalf("Parse with nil override parser: %v", err)
	}
	if d := s.Decide(&Request{Path: "/a"}); d.Enabled || d.Rule != 0 {
		t.Errorf("Decide(/a) = %+v, want rule 0 disabled", d)
	}
}

func TestUsesRoute(t *testing.T) {
	tests := []struct {
		rules string
		want  bool
	}{
		{`[]`, false},
		{`[{"match":{"prefix":"/"}}]`, false},
		{`[{"match":{"prefix":"/"}},{"match":{"route":"r"}}]`, true},
	}
	for _, tt := range tests {
		s := mustParseSet(t, `{"rules":`+tt.rules+`}`)
		if got := s.UsesRoute(); got != tt.want {
			t.Errorf("UsesRoute() for %s = %v, want %v", tt.rules, got, tt.want)
		}
	}
}

func TestNormalizePath(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"/", "/"},
		{"", ""},
		{"*", "*"},
		{"/a/b", "/a/b"},
		{"/a/b/", "/a/b/"},
		{"/a/b?x=/../y", "/a/b"},
		{"/a#frag", "/a#frag"},
		{"/open/x#/../../x/secret.txt", "/x/secret.txt"},
		{"/a#b?c#d", "/a#b"},
		{"/?q", "/"},
		{"?q", ""},
		{"//", "/"},
		{"/a//b///c", "/a/b/c"},
		{"/a//", "/a/"},
		{"/./a", "/a"},
		{"/a/.", "/a/"},
		{"/a/./b", "/a/b"},
		{"/a/..", "/"},
		{"/a/b/..", "/a/"},
		{"/a/b/../c", "/a/c"},
		{"/..", "/"},
		{"/../../a", "/a"},
		{"/a/../../b", "/b"},
		{"/.a/..b/...", "/.a/..b/..."},
		{"/a.", "/a."},
		{"/%2e%2E/a", "/a"},
		{"/a/%2e", "/a/"},
		{"/%41%7e%5F", "/A~_"},
		{"/a%2fb", "/a%2Fb"},
		{"/a%2Fb", "/a%2Fb"},
		{"/a%3f", "/a%3F"},
		{"/a%zz", "/a%25zz"},
		{"/a%2", "/a%252"},
		{"/a%", "/a%25"},
		{"/%%610", "/%25a0"},
		{`\a\..\b`, "/b"},
		{`/a\b`, "/a/b"},
		{"/a%5cb", "/a%5Cb"},
		{"/é", "/é"},
	}
	for _, tt := range tests {
		if got := NormalizePath(tt.in); got != tt.want {
			t.Errorf("NormalizePath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestMatchAllocations pins that matching the usual request does not
// allocate, the property BenchmarkMatch measures.
func TestMatchAllocations(t *testing.T) {
	s := mustParseSet(t, benchRules)
	reqs := benchRequests()
	for _, req := range reqs {
		if n := testing.AllocsPerRun(100, func() { s.Decide(&req) }); n != 0 {
			t.Errorf("Decide(%+v) allocates %v times, want 0", req, n)
		}
	}
}

const benchRules = `{"rules":[
	{"match":{"path":"/healthz"},"enabled":false},
	{"match":{"host":"*.internal.example.com","prefix":"/admin/"},"shadow":true},
	{"match":{"prefix":"/api/v1/","methods":["POST","PUT","DELETE"]},"max_tokens":10},
	{"match":{"headers":[{"name":"x-tenant","exact":"big"}]},"max_tokens":1000},
	{"match":{"route":"payments"},"max_tokens":5}
]}`

func benchRequests() []Request {
	h := headers("x-tenant", "small", "user-agent", "curl/8")
	return []Request{
		{Host: "api.example.com", Path: "/api/v1/users/42?page=2", Method: "GET", Route: "api", Header: h},
		{Host: "api.example.com:443", Path: "/healthz", Method: "GET", Header: h},
		{Host: "a.internal.example.com", Path: "/admin/users", Method: "GET", Header: h},
		{Host: "api.example.com", Path: "/api/v1/users", Method: "POST", Header: h},
	}
}

func BenchmarkMatch(b *testing.B) {
	s := mustParseSet(b, benchRules)
	reqs := benchRequests()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s.Decide(&reqs[i%len(reqs)])
	}
}

func BenchmarkNormalizePath(b *testing.B) {
	for _, p := range []string{"/api/v1/users/42?page=2", "/api//v1/./users/../users/42"} {
		b.Run(p, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				NormalizePath(p)
			}
		})
	}
}
