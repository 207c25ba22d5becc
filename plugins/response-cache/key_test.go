package main

import (
	"reflect"
	"strings"
	"testing"
)

func hdrs(kv ...string) func(string) string {
	return func(name string) string {
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i] == name {
				return kv[i+1]
			}
		}
		return ""
	}
}

func TestPrimaryKey(t *testing.T) {
	all := &keySpec{}
	cases := []struct {
		name string
		spec *keySpec
		a, b keyRequest
		same bool
	}{
		{"query order", all, keyRequest{scheme: "http", authority: "a", path: "/p?b=2&a=1"}, keyRequest{scheme: "http", authority: "a", path: "/p?a=1&b=2"}, true},
		{"repeated names keep their order", all, keyRequest{scheme: "http", authority: "a", path: "/p?a=1&a=2"}, keyRequest{scheme: "http", authority: "a", path: "/p?a=2&a=1"}, false},
		{"query none", &keySpec{query: queryNone}, keyRequest{scheme: "http", authority: "a", path: "/p?x=1"}, keyRequest{scheme: "http", authority: "a", path: "/p"}, true},
		{"query list", &keySpec{query: queryList, queryKeep: []string{"id"}}, keyRequest{scheme: "http", authority: "a", path: "/p?id=1&utm=x"}, keyRequest{scheme: "http", authority: "a", path: "/p?id=1"}, true},
		{"query list keeps what it names", &keySpec{query: queryList, queryKeep: []string{"id"}}, keyRequest{scheme: "http", authority: "a", path: "/p?id=1"}, keyRequest{scheme: "http", authority: "a", path: "/p?id=2"}, false},
		{"authority case", all, keyRequest{scheme: "http", authority: "A.example", path: "/p"}, keyRequest{scheme: "http", authority: "a.example", path: "/p"}, true},
		{"authority", all, keyRequest{scheme: "http", authority: "a", path: "/p"}, keyRequest{scheme: "http", authority: "b", path: "/p"}, false},
		{"scheme", all, keyRequest{scheme: "http", authority: "a", path: "/p"}, keyRequest{scheme: "https", authority: "a", path: "/p"}, false},
		{"path case matters", all, keyRequest{scheme: "http", authority: "a", path: "/P"}, keyRequest{scheme: "http", authority: "a", path: "/p"}, false},
		{"path confusion", all, keyRequest{scheme: "http", authority: "a", path: "/api/users/me"}, keyRequest{scheme: "http", authority: "a", path: "/api/users/me.css"}, false},
		{"path vs query", all, keyRequest{scheme: "http", authority: "a", path: "/p?x"}, keyRequest{scheme: "http", authority: "a", path: "/p%3Fx"}, false},
		{"unkeyed header", all, keyRequest{scheme: "http", authority: "a", path: "/p", header: hdrs("x-forwarded-host", "evil")}, keyRequest{scheme: "http", authority: "a", path: "/p"}, true},
		{"keyed header", &keySpec{headers: []string{"x-tenant"}}, keyRequest{scheme: "http", authority: "a", path: "/p", header: hdrs("x-tenant", "1")}, keyRequest{scheme: "http", authority: "a", path: "/p", header: hdrs("x-tenant", "2")}, false},
		{"header cannot smuggle a field", &keySpec{headers: []string{"x-a", "x-b"}}, keyRequest{scheme: "http", authority: "a", path: "/p", header: hdrs("x-a", "1\nx-b:2")}, keyRequest{scheme: "http", authority: "a", path: "/p", header: hdrs("x-a", "1", "x-b", "2")}, false},
		{"identity", &keySpec{identity: true}, keyRequest{scheme: "http", authority: "a", path: "/p", identity: []byte(`{"s":"alice"}`)}, keyRequest{scheme: "http", authority: "a", path: "/p", identity: []byte(`{"s":"bob"}`)}, false},
		{"identity vs anonymous", &keySpec{identity: true}, keyRequest{scheme: "http", authority: "a", path: "/p", identity: []byte(`{"s":"alice"}`)}, keyRequest{scheme: "http", authority: "a", path: "/p"}, false},
		{"identity ignored when off", all, keyRequest{scheme: "http", authority: "a", path: "/p", identity: []byte(`{"s":"alice"}`)}, keyRequest{scheme: "http", authority: "a", path: "/p"}, true},
	}
	for _, c := range cases {
		ka, kb := string(primaryKey(nil, c.spec, &c.a)), string(primaryKey(nil, c.spec, &c.b))
		if (ka == kb) != c.same {
			t.Errorf("%s: keys %q and %q: same = %v, want %v", c.name, ka, kb, ka == kb, c.same)
		}
	}
}

func TestVary(t *testing.T) {
	names, ok := varyNames([]string{"Accept-Encoding, accept", "ACCEPT-ENCODING"})
	if !ok || !reflect.DeepEqual(names, []string{"accept", "accept-encoding"}) {
		t.Errorf("varyNames = %q, %v", names, ok)
	}
	if _, ok := varyNames([]string{"accept, *"}); ok {
		t.Errorf("varyNames(*) ok, want refused")
	}
	p := []byte("k")
	a := variantKey(nil, p, names, hdrs("accept-encoding", "gzip,  br", "accept", "text/html"))
	b := variantKey(nil, p, names, hdrs("accept-encoding", "gzip, br", "accept", " text/html "))
	c := variantKey(nil, p, names, hdrs("accept-encoding", "br", "accept", "text/html"))
	if string(a) != string(b) {
		t.Errorf("variantKey normalisation: %q != %q", a, b)
	}
	if string(a) == string(c) {
		t.Errorf("variantKey: different variants share %q", a)
	}
	if !strings.HasPrefix(string(a), "k\n") {
		t.Errorf("variantKey = %q, want the primary key first", a)
	}
}

func TestUnkeyedHeader(t *testing.T) {
	has := func(names ...string) func(string) bool {
		return func(h string) bool {
			for _, n := range names {
				if n == h {
					return true
				}
			}
			return false
		}
	}
	if got := unkeyedHeader(has("x-forwarded-for", "x-forwarded-proto", "accept"), nil); got != "" {
		t.Errorf("ordinary proxy headers flagged: %q", got)
	}
	if got := unkeyedHeader(has("x-forwarded-host"), nil); got != "x-forwarded-host" {
		t.Errorf("unkeyedHeader(x-forwarded-host) = %q", got)
	}
	if got := unkeyedHeader(has("x-forwarded-host"), []string{"x-forwarded-host"}); got != "" {
		t.Errorf("keyed x-forwarded-host flagged: %q", got)
	}
}

func TestPurgeMatching(t *testing.T) {
	var got []string
	pathPrefixes("/a/b/c", func(p string) { got = append(got, p) })
	if strings.Join(got, " ") != "/ /a /a/b /a/b/c" {
		t.Errorf("pathPrefixes(/a/b/c) = %q", got)
	}
	for _, c := range []struct {
		path, prefix string
		want         bool
	}{
		{"/api/products/1", "/api/products", true},
		{"/api/products", "/api/products/", true},
		{"/api/productsX", "/api/products", false},
		{"/anything", "/", true},
	} {
		if got := underPrefix(c.path, c.prefix); got != c.want {
			t.Errorf("underPrefix(%q, %q) = %v", c.path, c.prefix, got)
		}
	}
	e := entry{uri: uriOf("https", "Shop.example", "/api/products/1?x=1"), tags: []string{"p-1"}}
	b := purgeBloom(&e)
	origin, _ := splitURI(uriOf("https", "shop.example", "/"))
	for _, want := range []uint64{tagBloom("p-1"), prefixBloom(origin, "/api"), prefixBloom(origin, "/api/products/1"), prefixBloom(origin, "/")} {
		if b&want != want {
			t.Errorf("purgeBloom misses an item of the entry")
		}
	}
}
