package main

import (
	"testing"
	"time"
)

// fullConfig sets every option; README's table must list exactly these
// fields (readme_test.go).
const fullConfig = `{
  "default_ttl": "5m",
  "max_ttl": "1h",
  "heuristic_fraction": 0.2,
  "methods": ["GET", "HEAD"],
  "max_entry_bytes": 65536,
  "max_total_bytes": 8388608,
  "max_entries": 1024,
  "store_set_cookie": false,
  "key": {"query": ["id", "page"], "headers": ["x-tenant"], "identity": true},
  "purge": {"method": "PURGE", "token_sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
  "cache_status_name": "edge",
  "coalesce_timeout": "5s",
  "error_format": "problem+json",
  "shadow": false,
  "rules": [
    {"match": {"prefix": "/api/accounts"}, "enabled": false},
    {"match": {"prefix": "/api/products"}, "default_ttl": "5m", "max_ttl": "10m", "heuristic_fraction": 0, "store_set_cookie": false}
  ]
}`

func TestConfigAccepted(t *testing.T) {
	c, err := parseConfig([]byte(fullConfig))
	if err != nil {
		t.Fatalf("parseConfig(fullConfig): %v", err)
	}
	if c.policy.defaultTTL != 5*time.Minute || c.policy.maxTTL != time.Hour || c.policy.heuristicFraction != 0.2 {
		t.Errorf("policy = %+v", c.policy)
	}
	if c.key.query != queryList || len(c.key.queryKeep) != 2 || !c.key.identity || c.key.headers[0] != "x-tenant" {
		t.Errorf("key = %+v", c.key)
	}
	if c.purge == nil || c.purge.method != "PURGE" || c.purge.tokenSHA256[0] != 0x9f {
		t.Errorf("purge = %+v", c.purge)
	}
	if len(c.rules.Rules) != 2 || c.rules.Rules[1].Override.maxTTL != 10*time.Minute || c.rules.Rules[0].Override.maxTTL != time.Hour {
		t.Errorf("rules = %+v", c.rules.Rules)
	}
	d, err := parseConfig(nil)
	if err != nil {
		t.Fatalf("parseConfig(empty): %v", err)
	}
	if d.policy.defaultTTL != 0 || d.policy.maxTTL != defaultMaxTTL || d.maxEntryBytes != defaultMaxEntryBytes ||
		d.maxTotalBytes != defaultMaxTotalBytes || d.maxEntries != defaultMaxEntries || d.statusName != "concierge" || d.purge != nil {
		t.Errorf("defaults = %+v", d)
	}
}

func TestConfigRefused(t *testing.T) {
	cases := []struct{ in, want string }{
		{`[]`, ""},
		{`{"default_ttl": 5}`, `default_ttl: must be a duration string like "500ms", got 5`},
		{`{"default_ttl": "-1s"}`, `default_ttl: must be >= 0, got "-1s"`},
		{`{"max_ttl": "0s"}`, `max_ttl: must be > 0, got "0s"`},
		{`{"default_ttl": "2h", "max_ttl": "1h"}`, `default_ttl: must be <= max_ttl (1h0m0s), got "2h0m0s"`},
		{`{"heuristic_fraction": 2}`, `heuristic_fraction: must be a number in 0..1, got 2`},
		{`{"heuristic_fraction": "0.1"}`, `heuristic_fraction: must be a number in 0..1, got "0.1"`},
		{`{"methods": ["GET", "POST"]}`, `methods[1]: must be GET or HEAD (responses to other methods are never stored), got "POST"`},
		{`{"methods": ["HEAD"]}`, `methods: must include GET: HEAD is answered from GET entries`},
		{`{"max_entry_bytes": 0}`, `max_entry_bytes: must be in 1..16777216, got 0`},
		{`{"max_entry_bytes": 2048, "max_total_bytes": 1024}`, `max_total_bytes: must be >= max_entry_bytes (2048), got 1024`},
		{`{"max_entries": 1}`, `max_entries: must be in 2..65536, got 1`},
		{`{"key": {"query": "some"}}`, `key.query: must be "all", "none" or a list of parameter names, got "some"`},
		{`{"key": {"query": ["a", 1]}}`, `key.query[1]: must be a parameter name, got 1`},
		{`{"key": {"headers": ["x a"]}}`, `key.headers[0]: must be a header name, got "x a"`},
		{`{"key": {"idenity": true}}`, `key: unknown field "idenity"`},
		{`{"purge": {}}`, `purge.token_sha256: required: the hex SHA-256 of the purge token (printf %s "$TOKEN" | sha256sum)`},
		{`{"purge": {"token_sha256": "abc"}}`, `purge.token_sha256: must be 64 hex digits (a SHA-256), got "abc"`},
		{`{"purge": {"method": "DELETE", "token_sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}}`, `purge.method: must not be a method clients use for content, got "DELETE"`},
		{`{"cache_status_name": "my cache"}`, `cache_status_name: must be an HTTP token (letters, digits, -._~ …), got "my cache"`},
		{`{"rules": [{"match": {"prefix": "/a"}, "default_ttl": "x"}]}`, `rules[0].default_ttl: must be a duration string like "500ms", got "x"`},
		{`{"rules": [{"match": {"prefix": "/a"}, "max_entries": 3}]}`, `rules[0]: unknown field "max_entries"`},
		{`{"max_tl": "1h"}`, `unknown field "max_tl"`},
		{`{"coalesce_timeout": "2m"}`, `coalesce_timeout: must be in 0s..1m, got "2m0s"`},
		{`{"error_format": "xml"}`, ""},
	}
	for _, c := range cases {
		_, err := parseConfig([]byte(c.in))
		if err == nil {
			t.Errorf("parseConfig(%s) accepted", c.in)
			continue
		}
		if c.want != "" && err.Error() != c.want {
			t.Errorf("parseConfig(%s) = %q, want %q", c.in, err.Error(), c.want)
		}
	}
}
