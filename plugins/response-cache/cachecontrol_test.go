package main

import "testing"

func TestParseCacheControl(t *testing.T) {
	type want struct {
		noStore, noCache, private, public, mustRevalidate, onlyIfCached, maxStaleAny bool
		maxAge, sMaxAge, maxStale, minFresh                                          int64
	}
	none := want{maxAge: -1, sMaxAge: -1, maxStale: -1, minFresh: -1}
	with := func(f func(*want)) want { w := none; f(&w); return w }
	cases := []struct {
		in   []string
		want want
	}{
		{nil, none},
		{[]string{""}, none},
		{[]string{"max-age=60"}, with(func(w *want) { w.maxAge = 60 })},
		{[]string{"MAX-AGE=60"}, with(func(w *want) { w.maxAge = 60 })},
		{[]string{"public, max-age=60, s-maxage=10"}, with(func(w *want) { w.public, w.maxAge, w.sMaxAge = true, 60, 10 })},
		// A quoted value is accepted (RFC 9111 §5.2 says senders should not,
		// recipients should accept it).
		{[]string{`max-age="30"`}, with(func(w *want) { w.maxAge = 30 })},
		// Commas inside a quoted string do not split directives.
		{[]string{`private="set-cookie, x-a", max-age=5`}, with(func(w *want) { w.private, w.maxAge = true, 5 })},
		{[]string{`no-cache="set-cookie"`}, with(func(w *want) { w.noCache = true })},
		// Duplicates: the smaller lifetime wins, across field lines too.
		{[]string{"max-age=60, max-age=10"}, with(func(w *want) { w.maxAge = 10 })},
		{[]string{"max-age=10", "max-age=60"}, with(func(w *want) { w.maxAge = 10 })},
		// Malformed lifetimes mean stale.
		{[]string{"max-age=abc"}, with(func(w *want) { w.maxAge = 0 })},
		{[]string{"max-age=-1"}, with(func(w *want) { w.maxAge = 0 })},
		{[]string{"max-age"}, with(func(w *want) { w.maxAge = 0 })},
		{[]string{"max-age=60, max-age=x"}, with(func(w *want) { w.maxAge = 0 })},
		{[]string{"max-age=99999999999999999999"}, with(func(w *want) { w.maxAge = maxDelta })},
		{[]string{" ,, no-store ,"}, with(func(w *want) { w.noStore = true })},
		{[]string{"no-store;garbage, max-age=1"}, with(func(w *want) { w.maxAge = 1 })},
		{[]string{"must-revalidate,only-if-cached"}, with(func(w *want) { w.mustRevalidate, w.onlyIfCached = true, true })},
		{[]string{"max-stale"}, with(func(w *want) { w.maxStaleAny = true })},
		{[]string{"max-stale=30, min-fresh=5"}, with(func(w *want) { w.maxStale, w.minFresh = 30, 5 })},
		// A bad min-fresh asks for more freshness than anything has.
		{[]string{"min-fresh=x"}, with(func(w *want) { w.minFresh = maxDelta })},
		{[]string{`max-age="60`}, with(func(w *want) { w.maxAge = 60 })},
		{[]string{"unknown-directive=1, max-age=7"}, with(func(w *want) { w.maxAge = 7 })},
	}
	for _, c := range cases {
		d := parseCacheControl(c.in...)
		got := want{d.noStore, d.noCache, d.private, d.public, d.mustRevalidate, d.onlyIfCached, d.maxStaleAny,
			d.maxAge, d.sMaxAge, d.maxStale, d.minFresh}
		if got != c.want {
			t.Errorf("parseCacheControl(%q) = %+v, want %+v", c.in, got, c.want)
		}
	}
}

func FuzzParseCacheControl(f *testing.F) {
	for _, s := range []string{"max-age=60", `private="a,b"`, `x="\`, "max-stale", "s-maxage=1,,", "\"\""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d := parseCacheControl(s)
		for _, v := range []int64{d.maxAge, d.sMaxAge, d.maxStale, d.minFresh} {
			if v < -1 || v > maxDelta {
				t.Fatalf("parseCacheControl(%q): delta %d out of range", s, v)
			}
		}
		names, _ := varyNames([]string{s})
		for i := 1; i < len(names); i++ {
			if names[i] <= names[i-1] {
				t.Fatalf("varyNames(%q) = %q, not sorted and unique", s, names)
			}
		}
	})
}
