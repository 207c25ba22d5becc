package main

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)

func date(d time.Duration) string { return formatHTTPDate(t0.Add(d)) }

func resp(status int, cc string, f ...func(*response)) *response {
	r := &response{status: status, cc: parseCacheControl(cc), sc: noDirectives(), date: date(0)}
	for _, fn := range f {
		fn(r)
	}
	return r
}

func TestStorability(t *testing.T) {
	pol := &policy{maxTTL: 24 * time.Hour, heuristicFraction: 0.1}
	get := &requestInfo{method: "GET", cc: noDirectives()}
	authz := &requestInfo{method: "GET", cc: noDirectives(), authorization: true}
	keyed := &requestInfo{method: "GET", cc: noDirectives(), authorization: true, identityKeyed: true}
	etag := func(r *response) { r.etag = `"v1"` }
	cases := []struct {
		name string
		req  *requestInfo
		resp *response
		want notStored
	}{
		{"max-age", get, resp(200, "max-age=60"), storable},
		{"POST", &requestInfo{method: "POST", cc: noDirectives()}, resp(200, "max-age=60"), reasonMethod},
		{"HEAD is answered from GET entries, not stored", &requestInfo{method: "HEAD", cc: noDirectives()}, resp(200, "max-age=60"), reasonMethod},
		{"206", get, resp(206, "max-age=60"), reasonRange},
		{"range request", &requestInfo{method: "GET", cc: noDirectives(), rangeRequest: true}, resp(200, "max-age=60"), reasonRange},
		{"500", get, resp(500, "max-age=60"), reasonStatus},
		{"unknown status", get, resp(299, "max-age=60"), reasonStatus},
		{"response no-store", get, resp(200, "max-age=60, no-store"), reasonNoStore},
		{"request no-store", &requestInfo{method: "GET", cc: parseCacheControl("no-store")}, resp(200, "max-age=60"), reasonNoStore},
		{"private", get, resp(200, "private, max-age=60"), reasonPrivate},
		{"private keyed by identity", &requestInfo{method: "GET", cc: noDirectives(), identityKeyed: true}, resp(200, "private, max-age=60"), storable},
		{"authorization", authz, resp(200, "max-age=60"), reasonAuthz},
		{"authorization public", authz, resp(200, "public, max-age=60"), storable},
		{"authorization s-maxage", authz, resp(200, "s-maxage=60"), storable},
		{"authorization must-revalidate", authz, resp(200, "must-revalidate, max-age=60"), storable},
		{"authorization keyed by identity", keyed, resp(200, "max-age=60"), storable},
		{"set-cookie", get, resp(200, "max-age=60", func(r *response) { r.setCookie = true }), reasonSetCookie},
		{"vary star", get, resp(200, "max-age=60", func(r *response) { r.vary = []string{"accept, *"} }), reasonVaryStar},
		{"302 without freshness", get, resp(302, "", func(r *response) { r.lastModified = date(-time.Hour) }), reasonNoFreshness},
		{"302 with max-age", get, resp(302, "max-age=60"), storable},
		{"no freshness, no validators", get, resp(200, ""), reasonNoFreshness},
		{"no-cache with validator", get, resp(200, "no-cache", etag), storable},
		{"max-age=0 with validator", get, resp(200, "max-age=0", etag), storable},
		{"max-age=0 without validator", get, resp(200, "max-age=0"), reasonNoFreshness},
	}
	for _, c := range cases {
		life := freshnessLifetime(c.resp, pol, t0)
		if got := storability(c.req, c.resp, pol, life); got != c.want {
			t.Errorf("%s: storability = %q, want %q", c.name, got, c.want)
		}
	}
	withCookies := &policy{storeSetCookie: true}
	if got := storability(get, resp(200, "max-age=1", func(r *response) { r.setCookie = true }), withCookies, time.Second); got != storable {
		t.Errorf("store_set_cookie: storability = %q, want stored", got)
	}
}

func TestFreshnessLifetime(t *testing.T) {
	pol := &policy{maxTTL: 24 * time.Hour, heuristicFraction: 0.1}
	cases := []struct {
		name string
		resp *response
		pol  *policy
		want time.Duration
	}{
		{"s-maxage over max-age", resp(200, "max-age=60, s-maxage=10"), pol, 10 * time.Second},
		{"max-age over Expires", resp(200, "max-age=60", func(r *response) { r.hasExpires, r.expires = true, date(time.Hour) }), pol, time.Minute},
		{"Expires - Date", resp(200, "", func(r *response) { r.hasExpires, r.expires = true, date(time.Hour) }), pol, time.Hour},
		{"Expires before Date", resp(200, "", func(r *response) { r.hasExpires, r.expires = true, date(-time.Hour) }), pol, 0},
		{"Expires: 0", resp(200, "", func(r *response) { r.hasExpires, r.expires = true, "0" }), pol, 0},
		{"Expires obsolete RFC 850 form", resp(200, "", func(r *response) {
			r.hasExpires, r.expires = true, t0.Add(time.Hour).Format("Monday, 02-Jan-06 15:04:05 GMT")
		}), pol, time.Hour},
		{"Expires asctime form", resp(200, "", func(r *response) {
			r.hasExpires, r.expires = true, t0.Add(time.Hour).Format("Mon Jan _2 15:04:05 2006")
		}), pol, time.Hour},
		// RFC 9111 §4.2.2: 10% of the time since Last-Modified.
		{"heuristic", resp(200, "", func(r *response) { r.lastModified = date(-10 * time.Hour) }), pol, time.Hour},
		{"heuristic capped by max_ttl", resp(200, "", func(r *response) { r.lastModified = date(-1000 * time.Hour) }), pol, 24 * time.Hour},
		{"no heuristic for 302", resp(302, "", func(r *response) { r.lastModified = date(-10 * time.Hour) }), pol, 0},
		{"default_ttl", resp(200, ""), &policy{defaultTTL: 5 * time.Minute}, 5 * time.Minute},
		{"explicit max-age=0 beats default_ttl", resp(200, "max-age=0"), &policy{defaultTTL: 5 * time.Minute}, 0},
		{"max_ttl caps explicit", resp(200, "max-age=999999"), pol, 24 * time.Hour},
		{"bad max-age is stale", resp(200, "max-age=soon"), pol, 0},
	}
	for _, c := range cases {
		if got := freshnessLifetime(c.resp, c.pol, t0); got != c.want {
			t.Errorf("%s: freshnessLifetime = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestInitialAge follows RFC 9111 §4.2.3.
func TestInitialAge(t *testing.T) {
	cases := []struct {
		name          string
		date, age     string
		reqAt, respAt time.Duration
		want          time.Duration
	}{
		{"fresh from origin", date(0), "", 0, 0, 0},
		{"Age header", date(0), "30", 0, 0, 30 * time.Second},
		{"response delay added to Age", date(0), "30", -2 * time.Second, 0, 32 * time.Second},
		{"apparent age from Date", date(-10 * time.Second), "", 0, 0, 10 * time.Second},
		{"Date in the future gives 0", date(time.Hour), "", 0, 0, 0},
		{"larger of apparent and corrected", date(-10 * time.Second), "3", 0, 0, 10 * time.Second},
		{"bad Age ignored", date(0), "old", 0, 0, 0},
	}
	for _, c := range cases {
		r := &response{date: c.date, age: c.age}
		if got := initialAge(r, t0.Add(c.reqAt), t0.Add(c.respAt)); got != c.want {
			t.Errorf("%s: initialAge = %v, want %v", c.name, got, c.want)
		}
	}
	if got := currentAge(5*time.Second, t0, t0.Add(time.Minute)); got != 65*time.Second {
		t.Errorf("currentAge = %v, want 65s", got)
	}
}

func TestReuse(t *testing.T) {
	fresh := stored{lifetime: time.Minute, age: 10 * time.Second, hasValidators: true}
	stale := stored{lifetime: time.Minute, age: 90 * time.Second, hasValidators: true}
	cases := []struct {
		name   string
		req    string
		pragma bool
		e      stored
		want   use
	}{
		{"fresh", "", false, fresh, useFresh},
		{"stale with validators", "", false, stale, useRevalidate},
		{"stale without validators", "", false, stored{lifetime: time.Minute, age: 2 * time.Minute}, useMiss},
		{"request no-cache", "no-cache", false, fresh, useRevalidate},
		{"Pragma no-cache", "", true, fresh, useRevalidate},
		{"request max-age=0", "max-age=0", false, fresh, useRevalidate},
		{"request max-age above age", "max-age=20", false, fresh, useFresh},
		{"min-fresh too much", "min-fresh=55", false, fresh, useRevalidate},
		{"min-fresh fine", "min-fresh=30", false, fresh, useFresh},
		{"max-stale any", "max-stale", false, stale, useFresh},
		{"max-stale enough", "max-stale=30", false, stale, useFresh},
		{"max-stale too little", "max-stale=10", false, stale, useRevalidate},
		{"max-stale vs must-revalidate", "max-stale", false, stored{lifetime: time.Minute, age: 2 * time.Minute, mustRevalidate: true, hasValidators: true}, useRevalidate},
		{"response no-cache", "", false, stored{lifetime: time.Minute, noCache: true, hasValidators: true}, useRevalidate},
		{"exactly at lifetime is stale", "", false, stored{lifetime: time.Minute, age: time.Minute}, useMiss},
	}
	for _, c := range cases {
		cc := parseCacheControl(c.req)
		if got := reuse(&cc, c.pragma, &c.e); got != c.want {
			t.Errorf("%s: reuse = %d, want %d", c.name, got, c.want)
		}
	}
}

func TestPolicyForRequest(t *testing.T) {
	p := policy{defaultTTL: time.Minute, heuristicFraction: 0.1, maxTTL: time.Hour}
	if got := p.forRequest(true, false); got.defaultTTL != 0 || got.heuristicFraction != 0 || got.maxTTL != time.Hour {
		t.Errorf("credentialed, unkeyed: %+v, want no implicit freshness", got)
	}
	if got := p.forRequest(true, true); got != p {
		t.Errorf("credentialed, identity keyed: %+v, want unchanged", got)
	}
	if got := p.forRequest(false, false); got != p {
		t.Errorf("anonymous: %+v, want unchanged", got)
	}
}

func TestAgeAndSurrogateControl(t *testing.T) {
	pol := &policy{maxTTL: 24 * time.Hour}
	for _, c := range []struct {
		ages []string
		want bool
	}{{nil, true}, {[]string{"0"}, true}, {[]string{" 30 "}, true}, {[]string{"0, 0"}, false}, {[]string{"0", "0"}, false},
		{[]string{"1.5"}, false}, {[]string{"-1"}, false}, {[]string{"3600;x=1"}, false}} {
		if got := validAge(c.ages); got != c.want {
			t.Errorf("validAge(%q) = %v, want %v", c.ages, got, c.want)
		}
	}
	r := resp(200, "max-age=3600", func(r *response) { r.ageInvalid = true })
	if got := freshnessLifetime(r, pol, t0); got != 0 {
		t.Errorf("lifetime with an invalid Age = %v, want 0 (stale)", got)
	}
	r = resp(200, "max-age=3600", func(r *response) { r.sc = parseSurrogateControl([]string{"max-age=60"}) })
	if got := freshnessLifetime(r, pol, t0); got != time.Minute {
		t.Errorf("Surrogate-Control max-age=60 over Cache-Control max-age=3600: %v", got)
	}
	r = resp(200, "max-age=3600", func(r *response) { r.sc = parseSurrogateControl([]string{"max-age=60;edge1"}) })
	if got := freshnessLifetime(r, pol, t0); got != time.Hour {
		t.Errorf("targeted Surrogate-Control applied: %v", got)
	}
	get := &requestInfo{method: "GET", cc: noDirectives()}
	r = resp(200, "max-age=3600", func(r *response) { r.sc = parseSurrogateControl([]string{"no-store"}) })
	if got := storability(get, r, pol, time.Hour); got != reasonNoStore {
		t.Errorf("Surrogate-Control: no-store stored: %q", got)
	}
}
