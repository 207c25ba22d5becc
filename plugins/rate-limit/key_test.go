package main

import (
	"net/netip"
	"strings"
	"testing"
)

func mustKey(t testing.TB, alts ...string) [][]keyPart {
	t.Helper()
	var out [][]keyPart
	for _, a := range alts {
		p, err := parseKeyParts(a)
		if err != nil {
			t.Fatalf("parseKeyParts(%q) = %v", a, err)
		}
		out = append(out, p)
	}
	return out
}

func TestBuildKeyFirstCompleteWins(t *testing.T) {
	hdr := func(m map[string]string) func(string) (string, bool) {
		return func(n string) (string, bool) { v, ok := m[n]; return v, ok }
	}
	alts := mustKey(t, "identity", "header:x-api-key+method", "ip")
	cases := []struct {
		name    string
		in      keyInput
		alt     int
		wantKey string
	}{
		{"identity", keyInput{identity: "jwt:alice", peer: "1.2.3.4:5"}, 0, "a\x1fjwt:alice"},
		{"header and method", keyInput{peer: "1.2.3.4:5", method: "GET", header: hdr(map[string]string{"x-api-key": "k1"})}, 1, "b\x1fk1\x1fGET"},
		{"ip", keyInput{peer: "1.2.3.4:5", method: "GET"}, 2, "c\x1f1.2.3.4"},
		{"ipv6", keyInput{peer: "[2001:db8::1]:443"}, 2, "c\x1f2001:db8::1"},
		{"nothing", keyInput{}, -1, ""},
	}
	for _, c := range cases {
		k, alt := buildKey(nil, alts, nil, &c.in)
		if alt != c.alt || string(k) != c.wantKey {
			t.Errorf("%s: buildKey = %q, %d; want %q, %d", c.name, k, alt, c.wantKey, c.alt)
		}
	}
	// Parts are separated so that values cannot run into each other.
	two := mustKey(t, "header:a+header:b")
	k1, _ := buildKey(nil, two, nil, &keyInput{header: hdr(map[string]string{"a": "x+y", "b": "z"})})
	k2, _ := buildKey(nil, two, nil, &keyInput{header: hdr(map[string]string{"a": "x", "b": "y+z"})})
	if string(k1) == string(k2) {
		t.Errorf("keys of different header values collide: %q", k1)
	}
	// path is normalized: dot segments cannot make a fresh bucket.
	p := mustKey(t, "path")
	k1, _ = buildKey(nil, p, nil, &keyInput{path: "/api/users?x=1"})
	k2, _ = buildKey(nil, p, nil, &keyInput{path: "/api/./x/../users"})
	if string(k1) != string(k2) {
		t.Errorf("path keys %q and %q differ for the same resource", k1, k2)
	}
}

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	cases := []struct {
		name, peer, xff string
		trusted         []netip.Prefix
		want            string
	}{
		{"no trusted proxies: the peer, whatever the header says", "203.0.113.9:1234", "1.1.1.1", nil, "203.0.113.9"},
		{"untrusted peer: the header is ignored", "203.0.113.9:1234", "1.1.1.1", trusted, "203.0.113.9"},
		{"trusted peer: the rightmost untrusted entry", "10.0.0.2:80", "6.6.6.6, 198.51.100.7, 10.0.0.9", trusted, "198.51.100.7"},
		{"spoofed leftmost entries are skipped", "10.0.0.2:80", "1.2.3.4,198.51.100.7", trusted, "198.51.100.7"},
		{"all trusted: the leftmost", "10.0.0.2:80", "10.1.1.1, 10.2.2.2", trusted, "10.1.1.1"},
		{"garbage ends the walk at the last good address", "10.0.0.2:80", "1.2.3.4, junk, 10.0.0.7", trusted, "10.0.0.7"},
		{"trusted peer without the header", "10.0.0.2:80", "", trusted, "10.0.0.2"},
		{"ipv6 loopback proxy", "[::1]:80", "2001:db8::5", trusted, "2001:db8::5"},
		{"mapped ipv4", "[::ffff:10.0.0.2]:80", "192.0.2.1", trusted, "192.0.2.1"},
	}
	for _, c := range cases {
		ip, ok := clientIP(c.peer, c.xff, c.trusted)
		if !ok || ip.String() != c.want {
			t.Errorf("%s: clientIP(%q, %q) = %v, %v; want %s", c.name, c.peer, c.xff, ip, ok, c.want)
		}
	}
	if _, ok := clientIP("", "1.2.3.4", trusted); ok {
		t.Errorf("clientIP without a peer address = ok, want not ok")
	}
}

func TestDescriptorEntries(t *testing.T) {
	c := &config{key: mustKey(t, "ip+method+header:x-tenant")}
	lm := &limiter{cfg: c}
	in := keyInput{peer: "1.2.3.4:1", method: "POST", header: func(n string) (string, bool) { return "acme", n == "x-tenant" }}
	got := lm.descriptor(0, &in)
	var s []string
	for _, e := range got {
		s = append(s, e.key+"="+e.value)
	}
	if strings.Join(s, " ") != "remote_address=1.2.3.4 method=POST x-tenant=acme" {
		t.Errorf("descriptor = %v", s)
	}
}

func TestNeedsPeer(t *testing.T) {
	for _, c := range []struct {
		alts []string
		in   keyInput
		want bool
	}{
		{[]string{"identity", "ip"}, keyInput{identity: "p:alice"}, false},
		{[]string{"identity", "ip"}, keyInput{}, true},
		{[]string{"header:x-key", "ip"}, keyInput{identity: "p:alice"}, true},
		{[]string{"route", "identity"}, keyInput{}, false},
		{[]string{"identity+ip"}, keyInput{identity: "p:alice"}, true},
	} {
		if got := needsPeer(mustKey(t, c.alts...), &c.in); got != c.want {
			t.Errorf("needsPeer(%v, %+v) = %v, want %v", c.alts, c.in, got, c.want)
		}
	}
}
