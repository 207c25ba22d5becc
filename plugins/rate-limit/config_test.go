package main

import (
	"strings"
	"testing"
	"time"
)

// fullConfig sets every option; README.md's configuration table must list
// exactly these fields (readme_test.go).
const fullConfig = `{
  "limits": [
    {"name": "second", "max_tokens": 20, "tokens_per_fill": 10, "fill_interval": "1s"},
    {"name": "hour", "requests": 1000, "per": "1h"}
  ],
  "key": ["identity", "header:x-api-key+route", "ip"],
  "trusted_proxies": ["10.0.0.0/8", "::1"],
  "overrides": [{"identity": "partner-*", "limits": [{"requests": 100, "per": "1s"}]}],
  "max_keys": 50000,
  "headers": "both",
  "global": {"cluster": "ratelimit", "authority": "ratelimit.internal", "path": "/json",
             "domain": "concierge", "timeout": "50ms", "failure_mode": "deny"},
  "error_format": "problem+json",
  "shadow": false,
  "rules": [
    {"match": {"prefix": "/healthz"}, "enabled": false},
    {"match": {"prefix": "/api/orders"}, "limits": [{"requests": 5, "per": "1s"}]},
    {"match": {"prefix": "/api/new"}, "shadow": true, "overrides": []}
  ]
}`

func TestConfigAccepted(t *testing.T) {
	c, err := parseConfig([]byte(fullConfig))
	if err != nil {
		t.Fatalf("parseConfig(fullConfig) = %v", err)
	}
	if len(c.set.limits) != 2 || c.set.limits[0].maxTokens != 20 || c.set.limits[1].fillInterval != time.Hour || c.set.limits[1].tokensPerFill != 1000 {
		t.Errorf("limits = %+v", c.set.limits)
	}
	if len(c.key) != 3 || len(c.key[1]) != 2 || c.key[1][0].name != "x-api-key" || c.key[1][1].kind != partRoute {
		t.Errorf("key = %+v", c.key)
	}
	if c.maxKeys != 50000 || c.headers != headersBoth || c.global == nil || !c.global.failDeny || c.global.timeout != 50*time.Millisecond {
		t.Errorf("config = %+v, global %+v", c, c.global)
	}
	if got := c.forIdentity("partner-acme"); got.limits[0].maxTokens != 100 {
		t.Errorf("override for partner-acme = %+v", got.limits)
	}
	if got := c.forIdentity("alice"); got != c.set {
		t.Errorf("override for alice = %+v, want the top-level limits", got.limits)
	}
	if r := c.rules.Rules[1].Override; r.set.limits[0].maxTokens != 5 || r.overrides != nil {
		t.Errorf("rule 1 policy = %+v", r)
	}
	if r := c.rules.Rules[2].Override; r.set != c.set || len(r.overrides) != 0 {
		t.Errorf("rule 2 policy = %+v, want the top-level limits without overrides", r)
	}
	ids := map[int]bool{}
	for i, s := range c.sets {
		if s.id != i || ids[s.id] {
			t.Errorf("set %d has id %d", i, s.id)
		}
		ids[s.id] = true
	}
}

func TestConfigDefaults(t *testing.T) {
	c, err := parseConfig([]byte(`{"limits":[{"max_tokens":100,"fill_interval":"1s"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	l := c.set.limits[0]
	if l.name != "default" || l.tokensPerFill != 1 || c.maxKeys != defaultMaxKeys || c.headers != headersXRateLimit || c.global != nil {
		t.Errorf("defaults: limit %+v, config %+v", l, c)
	}
	if len(c.key) != 2 || c.key[0][0].kind != partIdentity || c.key[1][0].kind != partIP {
		t.Errorf("default key = %+v, want identity, then ip", c.key)
	}
	c, err = parseConfig([]byte(`{"limits":[{"requests":1,"per":"1s"}],"global":{"cluster":"rls","domain":"d"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if g := c.global; g.path != "/json" || g.authority != "rls" || g.timeout != 100*time.Millisecond || g.failDeny {
		t.Errorf("global defaults = %+v", g)
	}
}

func TestConfigRefused(t *testing.T) {
	const lim = `"limits":[{"requests":1,"per":"1s"}]`
	cases := []struct{ cfg, want string }{
		{`{}`, `limits: required`},
		{`{"limits":[]}`, `limits: must not be empty`},
		{`{"limits":[{"max_tokns":1}]}`, `limits[0].max_tokens: required`},
		{`{"limits":[{"max_tokens":1,"fill_interval":"1s","burst":2}]}`, `limits[0]: unknown field "burst"`},
		{`{"limits":[{"max_tokens":0,"fill_interval":"1s"}]}`, `limits[0].max_tokens: must be > 0 and <= 1099511627776, got 0`},
		{`{"limits":[{"max_tokens":-5,"fill_interval":"1s"}]}`, `limits[0].max_tokens: must be > 0 and <= 1099511627776, got -5`},
		{`{"limits":[{"max_tokens":5,"tokens_per_fill":0,"fill_interval":"1s"}]}`, `limits[0].tokens_per_fill: must be > 0 and <= 1099511627776, got 0`},
		{`{"limits":[{"max_tokens":5,"fill_interval":"0s"}]}`, `limits[0].fill_interval: must be > 0, got "0s"`},
		{`{"limits":[{"max_tokens":5,"fill_interval":"-1s"}]}`, `limits[0].fill_interval: must be > 0, got "-1s"`},
		{`{"limits":[{"max_tokens":5,"fill_interval":5}]}`, `limits[0].fill_interval: must be a duration string like "500ms", got 5`},
		{`{"limits":[{"requests":0,"per":"1m"}]}`, `limits[0].requests: must be > 0 and <= 1099511627776, got 0`},
		{`{"limits":[{"requests":5}]}`, `limits[0].per: required with requests`},
		{`{"limits":[{"requests":5,"per":"1m","max_tokens":5}]}`, `limits[0]: give either requests and per, or max_tokens, tokens_per_fill and fill_interval, not both`},
		{`{"limits":[{"requests":1,"per":"1s"},{"requests":1,"per":"1m"},{"requests":1,"per":"1h"},{"requests":1,"per":"2h"},{"requests":1,"per":"3h"},{"requests":1,"per":"4h"},{"requests":1,"per":"5h"},{"requests":1,"per":"6h"},{"requests":1,"per":"7h"}]}`, `limits: at most 8 limits, got 9`},
		{`{"limits":[{"name":"a","requests":1,"per":"1s"},{"name":"a","requests":1,"per":"1m"}]}`, `limits[1].name: duplicate "a"`},
		{`{"limits":[{"name":"a b","requests":1,"per":"1s"}]}`, `limits[0].name: must be 1 to 64 letters, digits, '-', '_' or '.', got "a b"`},
		{`{"limits":[{"max_tokens":1099511627776,"fill_interval":"24h"}]}`, `limits[0]: max_tokens 1099511627776 refilled at 1 per 24h0m0s does not fit the bucket arithmetic: use fewer tokens or a faster refill`},
		{`{` + lim + `,"key":[]}`, `key: must not be empty`},
		{`{` + lim + `,"key":["ip","ip","ip","ip","ip","ip","ip","ip","ip","ip","ip","ip","ip","ip","ip","ip","ip"]}`, `key: at most 16 alternatives, got 17`},
		{`{` + lim + `,"key":["ip","cookie"]}`, `key[1]: unknown key part "cookie"; parts are identity, ip, header:<name>, route, path, method`},
		{`{` + lim + `,"key":["ip+ip"]}`, `key[0]: key part "ip" appears twice`},
		{`{` + lim + `,"key":["header:"]}`, `key[0]: header name in "header:" is not a valid HTTP field name`},
		{`{` + lim + `,"key":[""]}`, `key[0]: must not be empty; parts are identity, ip, header:<name>, route, path, method, joined by "+"`},
		{`{` + lim + `,"trusted_proxies":["10.0.0.0/33"]}`, `trusted_proxies[0]: must be an IP address or CIDR prefix, got "10.0.0.0/33"`},
		{`{` + lim + `,"max_keys":0}`, `max_keys: must be between 1 and 10000000, got 0`},
		{`{` + lim + `,"headers":"draft"}`, `headers: must be one of "x-ratelimit", "ietf", "both", "none", got "draft"`},
		{`{` + lim + `,"overrides":[{"limits":[{"requests":1,"per":"1s"}]}]}`, `overrides[0].identity: required: an identity or a pattern with '*'`},
		{`{` + lim + `,"overrides":[{"identity":"a"}]}`, `overrides[0].limits: required`},
		{`{` + lim + `,"overrides":[{"identity":"a","limits":[{"requests":0,"per":"1s"}]}]}`, `overrides[0].limits[0].requests: must be > 0 and <= 1099511627776, got 0`},
		{`{` + lim + `,"global":{"domain":"d"}}`, `global.cluster: required`},
		{`{` + lim + `,"global":{"cluster":"c"}}`, `global.domain: required`},
		{`{` + lim + `,"global":{"cluster":"c","domain":"d","timeout":"0s"}}`, `global.timeout: must be > 0, got "0s"`},
		{`{` + lim + `,"global":{"cluster":"c","domain":"d","path":"json"}}`, `global.path: must start with '/', got "json"`},
		{`{` + lim + `,"global":{"cluster":"c","domain":"d","failure_mode":"open"}}`, `global.failure_mode: must be one of "allow", "deny", got "open"`},
		{`{` + lim + `,"rules":[{"match":{"prefix":"/a"},"limits":[]}]}`, `rules[0].limits: must not be empty`},
		{`{` + lim + `,"rules":[{"match":{"prefix":"/a"},"limits":[{"requests":1,"per":"0s"}]}]}`, `rules[0].limits[0].per: must be > 0, got "0s"`},
		{`{` + lim + `,"rules":[{"match":{"prefix":"/a"},"max_tokens":3}]}`, `rules[0]: unknown field "max_tokens"`},
		{`{` + lim + `,"error_format":"xml"}`, `error_format: must be one of "json", "problem+json", got "xml"`},
	}
	for _, c := range cases {
		_, err := parseConfig([]byte(c.cfg))
		if err == nil || err.Error() != c.want {
			t.Errorf("parseConfig(%s)\n  = %v\n want %s", c.cfg, err, c.want)
		}
	}
}

func TestGlob(t *testing.T) {
	for _, c := range []struct {
		pat, s string
		want   bool
	}{
		{"alice", "alice", true}, {"alice", "alicex", false}, {"partner-*", "partner-acme", true},
		{"partner-*", "partner-", true}, {"partner-*", "partne", false}, {"*@example.com", "bob@example.com", true},
		{"a*b*c", "aXbYc", true}, {"a*b*c", "aXbY", false}, {"*", "", true}, {"", "", true}, {"", "x", false},
		{"a*a*a*a*b", strings.Repeat("a", 200), false},
	} {
		if got := glob(c.pat, c.s); got != c.want {
			t.Errorf("glob(%q, %q) = %v, want %v", c.pat, c.s, got, c.want)
		}
	}
}

// TestRulesThatLowerProtection: a rule whose limits are looser than the
// top level's, or with overrides of its own, is marked for shared/rules,
// which then applies it only when every form of the request matches.
func TestRulesThatLowerProtection(t *testing.T) {
	c, err := parseConfig([]byte(`{"limits":[{"requests":10,"per":"1s"},{"requests":100,"per":"1m"}],"rules":[
		{"match":{"prefix":"/a"},"limits":[{"requests":5,"per":"1s"},{"requests":50,"per":"1m"}]},
		{"match":{"prefix":"/a2"},"limits":[{"requests":5,"per":"1s"}]},
		{"match":{"prefix":"/b"},"limits":[{"requests":20,"per":"1s"}]},
		{"match":{"prefix":"/c"},"limits":[{"requests":10,"per":"1s"},{"requests":100,"per":"1m"}]},
		{"match":{"prefix":"/d"},"limits":[{"max_tokens":10,"tokens_per_fill":11,"fill_interval":"1s"}]},
		{"match":{"prefix":"/e"},"overrides":[{"identity":"x","limits":[{"requests":1,"per":"1s"}]}]},
		{"match":{"prefix":"/f"},"overrides":[]},
		{"match":{"prefix":"/g"},"shadow":false}]}`))
	if err != nil {
		t.Fatal(err)
	}
	// /a2 is stricter per second but lets 300 a minute through where the
	// top level lets 100.
	want := []bool{false, true, true, false, true, true, false, false}
	for i, r := range c.rules.Rules {
		if r.LowersProtection != want[i] {
			t.Errorf("rules[%d].LowersProtection = %v, want %v", i, r.LowersProtection, want[i])
		}
	}
}
