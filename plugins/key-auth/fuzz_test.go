package main

import (
	"strings"
	"testing"
)

// FuzzParseConfig: any bytes either parse into a configuration whose every
// key is usable or are refused with an error naming a field; never a
// panic, and a refused plaintext key is never quoted back.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(testConfig("")))
	f.Add([]byte(testConfig(`,"query_param":"k","permission_by_method":{"GET":"r","*":""},"rules":[{"match":{"prefix":"/a"},"require":["x"]}]`)))
	f.Add([]byte(`{"consumers":[{"name":"a","keys":[{"key":"k","not_before":"2026-01-01T00:00:00Z","not_after":"2026-01-02T00:00:00Z"}]}]}`))
	f.Add([]byte(`{"consumers":[{"name":"a","keys":[{"key":"k"}]},{"name":"b","keys":[{"key_sha256":"` + digest("k") + `"}]}]}`))
	f.Add([]byte(`{"consumers":[{}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parseConfig(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("parseConfig(%q): empty error", data)
			}
			return
		}
		if len(c.consumers) == 0 {
			t.Fatalf("parseConfig(%q) accepted a configuration without consumers", data)
		}
		for d, k := range c.keys {
			if k.digest != d || k.consumer < 0 || k.consumer >= len(c.consumers) || !strings.HasPrefix(k.path, "consumers[") {
				t.Fatalf("parseConfig(%q): key %+v under digest %x", data, k, d)
			}
		}
		for _, co := range c.consumers {
			if !validName(co.name) {
				t.Fatalf("parseConfig(%q) accepted consumer name %q", data, co.name)
			}
		}
		// Whatever was accepted can authenticate without panicking.
		c.authenticate([][2]string{{c.header, "k"}}, "/?"+c.queryParam+"=k", "GET", nil, clockAt(testNow))
	})
}

// FuzzQueryKey: for any path a client sends, finding the key never
// panics, and removing it leaves no key behind and every other parameter
// byte for byte, in order.
func FuzzQueryKey(f *testing.F) {
	for _, p := range []string{"/a?apikey=k", "/a?x=1&apikey=k&y=%2F+z&&w", "/a?api%6Bey=k&apikey=j", "/a?apikey=%zz", "/?&&=&apikey", "/a"} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, path string) {
		queryParam(path, "apikey")
		got := removeQueryParam(path, "apikey")
		if _, n, _ := queryParam(got, "apikey"); n != 0 {
			t.Fatalf("removeQueryParam(%q) = %q, still has a key", path, got)
		}
		base, query, hasQuery := strings.Cut(path, "?")
		var keep []string
		removed := false
		for _, pair := range strings.Split(query, "&") {
			name, _, _ := strings.Cut(pair, "=")
			if paramNameIs(name, "apikey") {
				removed = true
			} else {
				keep = append(keep, pair)
			}
		}
		wantPath := path
		if hasQuery && removed {
			wantPath = base
			if q := strings.Join(keep, "&"); len(keep) > 0 && !(len(keep) == 1 && q == "") {
				wantPath += "?" + q
			}
		}
		if got != wantPath {
			t.Fatalf("removeQueryParam(%q) = %q, want %q", path, got, wantPath)
		}
	})
}
