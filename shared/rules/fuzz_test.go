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
		"/.%2e/a", "/%%2e", "/a/%2E%2e%2F", "/a#/../b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := NormalizePath(in)
		if again := NormalizePath(got); again != got {
			t.Fatalf("NormalizePath(%q) = %q, but NormalizePath(%q) = %q", in, got, got, again)
		}
		if strings.Contains(got, "?") {
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
			query := strings.IndexByte(in, '?')
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

// FuzzMatch drives the matcher with arbitrary requests: it must never panic;
// a rule that lowers protection must match the request both as sent and
// normalized; and a request already in normal form matches exactly as its
// normalized form does.
func FuzzMatch(f *testing.F) {
	f.Add("api.example.com:443", "/api/v1/x?y", "GET", "payments", "x-tenant", "big")
	f.Add("A.INTERNAL.example.com.", "//admin/../admin/", "POST", "", "", "")
	f.Add("[::1]:80", `\healthz`, "get", "r", "x-debug", "")
	f.Add("public.example.com:8080", "/open/x#/../../x", "GET", "", "", "")
	f.Add("", "", "", "", "", "")
	s := mustParseSet(f, `{"rules":[
		{"match":{"path":"/healthz"},"enabled":false},
		{"match":{"host":"*.internal.example.com","prefix":"/admin/"},"shadow":true},
		{"match":{"host":"public.example.com","prefix":"/open/"},"enabled":false},
		{"match":{"prefix":"/api/v1/","methods":["POST","PUT"]},"max_tokens":10},
		{"match":{"headers":[{"name":"x-tenant","exact":"big"},{"name":"x-debug","present":false}]}},
		{"match":{"host":"[::1]","route":"payments"},"max_tokens":5}
	]}`)
	f.Fuzz(func(t *testing.T, host, p, method, route, hname, hvalue string) {
		req := Request{Host: host, Path: p, Method: method, Route: route, Header: headers(hname, hvalue)}
		got := s.Decide(&req)
		if got.Rule >= 0 && s.Rules[got.Rule].LowersProtection {
			m := &s.Rules[got.Rule].m
			raw, norm := withoutQuery(p), NormalizePath(p)
			if !m.matchPath(raw) && (m.path != "" || m.prefix != "") || !m.matchPath(norm) && (m.path != "" || m.prefix != "") || !m.matchHost(host) {
				t.Fatalf("Decide(%+v) = rule %d, which lowers protection, but the request as sent (%q, %q) or normalized (%q) does not match it", req, got.Rule, host, raw, norm)
			}
		}
		if withoutQuery(p) == NormalizePath(p) {
			norm := req
			norm.Path = NormalizePath(p)
			if want := s.Decide(&norm); got.Rule != want.Rule {
				t.Fatalf("Decide(%+v) matched rule %d, but with path %q rule %d", req, got.Rule, norm.Path, want.Rule)
			}
		}
	})
}
