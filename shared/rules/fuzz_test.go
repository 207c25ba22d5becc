package rules

import (
	"path"
	"strings"
	"testing"
)

// FuzzNormalizePath checks the properties rules rely on: the result is in
// normal form (normalizing again changes nothing), holds no query, no empty,
// "." or ".." segment, and agrees with path.Clean up to the trailing slash.
func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{
		"/", "/a/b/../c", "//a//b/", "/%2e%2E/x", `\a\..\b`, "/a?b/../c", "/a%2fb", "/a%zz", "*", "",
		"/.%2e/a", "/%%2e", "/a/%2E%2e%2F",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := NormalizePath(in)
		if again := NormalizePath(got); again != got {
			t.Fatalf("NormalizePath(%q) = %q, but NormalizePath(%q) = %q", in, got, got, again)
		}
		if strings.ContainsAny(got, "?#") {
			t.Fatalf("NormalizePath(%q) = %q keeps the query", in, got)
		}
		if !strings.HasPrefix(got, "/") {
			if strings.HasPrefix(in, "/") || strings.HasPrefix(in, `\`) {
				t.Fatalf("NormalizePath(%q) = %q lost the leading slash", in, got)
			}
			return
		}
		for _, seg := range strings.Split(got[1:], "/")[:max(0, strings.Count(got, "/")-1)] {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("NormalizePath(%q) = %q keeps segment %q", in, got, seg)
			}
		}
		if last := got[strings.LastIndexByte(got, '/')+1:]; last == "." || last == ".." {
			t.Fatalf("NormalizePath(%q) = %q ends in a dot segment", in, got)
		}
		if !strings.Contains(in, "%") {
			query := strings.IndexAny(in, "?#")
			if query < 0 {
				query = len(in)
			}
			want := path.Clean(strings.ReplaceAll(in[:query], `\`, "/"))
			if strings.TrimSuffix(got, "/") != strings.TrimSuffix(want, "/") {
				t.Fatalf("NormalizePath(%q) = %q, path.Clean gives %q", in, got, want)
			}
		}
	})
}

// FuzzMatch drives the matcher with arbitrary requests: it must never panic,
// and a request must match exactly as its normalized form does, so that no
// spelling of a path escapes a rule the normalized path falls under.
func FuzzMatch(f *testing.F) {
	f.Add("api.example.com:443", "/api/v1/x?y", "GET", "payments", "x-tenant", "big")
	f.Add("A.INTERNAL.example.com.", "//admin/../admin/", "POST", "", "", "")
	f.Add("[::1]:80", `\healthz`, "get", "r", "x-debug", "")
	f.Add("", "", "", "", "", "")
	s := mustParseSet(f, `{"rules":[
		{"match":{"path":"/healthz"},"enabled":false},
		{"match":{"host":"*.internal.example.com","prefix":"/admin/"},"shadow":true},
		{"match":{"prefix":"/api/v1/","methods":["POST","PUT"]},"max_tokens":10},
		{"match":{"headers":[{"name":"x-tenant","exact":"big"},{"name":"x-debug","present":false}]}},
		{"match":{"host":"[::1]","route":"payments"},"max_tokens":5}
	]}`)
	f.Fuzz(func(t *testing.T, host, p, method, route, hname, hvalue string) {
		req := Request{Host: host, Path: p, Method: method, Route: route, Header: headers(hname, hvalue)}
		norm := req
		norm.Path = NormalizePath(p)
		got, want := s.Decide(&req), s.Decide(&norm)
		if got.Rule != want.Rule {
			t.Fatalf("Decide(%+v) matched rule %d, but with path %q rule %d", req, got.Rule, norm.Path, want.Rule)
		}
	})
}
