package main

import (
	"strings"
	"testing"
	"time"
)

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// TestLookupWindowEdges: a key is accepted from not_before (inclusive) to
// not_after (exclusive), to the nanosecond.
func TestLookupWindowEdges(t *testing.T) {
	t.Parallel()
	nb := testNow
	na := testNow.Add(24 * time.Hour)
	c := mustParse(t, `{"consumers":[{"name":"acme","keys":[
		{"key_sha256":"`+digest(acmeKey)+`","not_after":"`+rfc3339(na)+`"},
		{"key_sha256":"`+digest(acmeNewKey)+`","not_before":"`+rfc3339(nb)+`"}]}]}`)
	tests := []struct {
		key  string
		at   time.Time
		want reason
	}{
		{acmeNewKey, nb.Add(-time.Nanosecond), reasonNotYetValid},
		{acmeNewKey, nb, reasonNone},
		{acmeNewKey, nb.Add(100 * 365 * 24 * time.Hour), reasonNone},
		{acmeKey, nb.Add(-100 * 365 * 24 * time.Hour), reasonNone},
		{acmeKey, na.Add(-time.Nanosecond), reasonNone},
		{acmeKey, na, reasonExpired},
		{acmeKey, na.Add(time.Hour), reasonExpired},
	}
	for _, tt := range tests {
		k, got := c.lookup(tt.key, func() time.Time { return tt.at })
		if got != tt.want || k == nil || k.consumer != 0 {
			t.Errorf("lookup(%s, %s) = %v, %v; want consumer 0, %v", tt.key[:8], tt.at.Format(time.RFC3339Nano), k, got.slug(), tt.want.slug())
		}
	}
}

// TestLookupByDigest: only the key itself matches; its digest, a prefix,
// a case change or an extra byte do not.
func TestLookupByDigest(t *testing.T) {
	t.Parallel()
	c := mustParse(t, testConfig(""))
	for _, tt := range []struct {
		key  string
		want reason
	}{
		{acmeKey, reasonNone},
		{adminKey, reasonNone}, // configured as an upper-case digest
		{digest(acmeKey), reasonUnknown},
		{acmeKey[:len(acmeKey)-1], reasonUnknown},
		{acmeKey + "0", reasonUnknown},
		{strings.ToUpper(acmeKey), reasonUnknown},
		{"", reasonUnknown},
	} {
		if _, got := c.lookup(tt.key, clockAt(testNow)); got != tt.want {
			t.Errorf("lookup(%q) = %s, want %s", tt.key, got.slug(), tt.want.slug())
		}
	}
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	c := mustParse(t, testConfig(`,"query_param":"apikey","rules":[
		{"match":{"prefix":"/admin"},"require":["admin"]},
		{"match":{"prefix":"/open"},"allow_missing":true}]`))
	admin := &c.rules.Rules[0].Override
	open := &c.rules.Rules[1].Override
	h := func(kv ...string) [][2]string {
		var out [][2]string
		for i := 0; i < len(kv); i += 2 {
			out = append(out, [2]string{kv[i], kv[i+1]})
		}
		return out
	}
	tests := []struct {
		name     string
		headers  [][2]string
		path     string
		method   string
		ov       *ruleOverride
		want     reason
		consumer int
		source   keySource
		need     string
	}{
		{"header", h("x-api-key", acmeKey), "/a", "GET", nil, reasonNone, 0, fromHeader, ""},
		{"header name case", h("X-Api-Key", acmeKey), "/a", "GET", nil, reasonNone, 0, fromHeader, ""},
		{"query", nil, "/a?x=1&apikey=" + globexKey + "&y=2", "POST", nil, reasonNone, 1, fromQuery, ""},
		{"query escaped", nil, "/a?apikey=" + strings.ReplaceAll(globexKey, "-", "%2D"), "GET", nil, reasonNone, 1, fromQuery, ""},
		{"query name escaped", nil, "/a?api%6Bey=" + globexKey, "GET", nil, reasonNone, 1, fromQuery, ""},
		{"missing", h("authorization", "Bearer x"), "/a?apikeys=1", "GET", nil, reasonMissing, -1, fromNone, ""},
		{"empty header is missing", h("x-api-key", ""), "/a?apikey=", "GET", nil, reasonMissing, -1, fromNone, ""},
		{"missing, allowed by rule", nil, "/open", "GET", open, reasonNone, -1, fromNone, ""},
		{"unknown, not allowed by allow_missing", h("x-api-key", "nope"), "/open", "GET", open, reasonUnknown, -1, fromHeader, ""},
		{"two headers", h("x-api-key", acmeKey, "x-api-key", acmeKey), "/a", "GET", nil, reasonMalformed, -1, fromHeader, ""},
		{"header and query", h("x-api-key", acmeKey), "/a?apikey=" + acmeKey, "GET", nil, reasonMalformed, -1, fromHeader, ""},
		{"query twice", nil, "/a?apikey=" + acmeKey + "&api%6Bey=" + globexKey, "GET", nil, reasonMalformed, -1, fromQuery, ""},
		{"bad escape", nil, "/a?apikey=%zz", "GET", nil, reasonMalformed, -1, fromQuery, ""},
		{"oversized", h("x-api-key", strings.Repeat("k", maxKeyBytes+1)), "/a", "GET", nil, reasonMalformed, -1, fromHeader, ""},
		{"read-only consumer writes", h("x-api-key", acmeKey), "/a", "DELETE", nil, reasonPermission, 0, fromHeader, "write"},
		{"writer writes", h("x-api-key", globexKey), "/a", "PUT", nil, reasonNone, 1, fromHeader, ""},
		{"rule requires admin", h("x-api-key", globexKey), "/admin", "GET", admin, reasonPermission, 1, fromHeader, "admin"},
		{"admin", h("x-api-key", adminKey), "/admin", "POST", admin, reasonNone, 2, fromHeader, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := c.authenticate(tt.headers, tt.path, tt.method, tt.ov, clockAt(testNow))
			if out.reason != tt.want || out.consumer != tt.consumer || out.source != tt.source || out.need != tt.need {
				t.Errorf("authenticate(%q, %q, %s) = reason %s consumer %d source %d need %q; want %s %d %d %q",
					tt.headers, tt.path, tt.method, out.reason.slug(), out.consumer, out.source, out.need,
					tt.want.slug(), tt.consumer, tt.source, tt.need)
			}
		})
	}
}

func TestReasonMessages(t *testing.T) {
	t.Parallel()
	for r, want := range map[reason]struct {
		status int
		msg    string
	}{
		reasonMissing:     {401, "API key required"},
		reasonUnknown:     {401, "invalid API key"},
		reasonExpired:     {401, "invalid API key"},
		reasonNotYetValid: {401, "invalid API key"},
		reasonMalformed:   {401, "invalid API key"},
		reasonPermission:  {403, "permission denied"},
	} {
		if r.status() != want.status || r.message() != want.msg {
			t.Errorf("reason %s = %d %q, want %d %q", r.slug(), r.status(), r.message(), want.status, want.msg)
		}
	}
}

// TestRemoveQueryParam: every other byte of the path stays as it was.
func TestRemoveQueryParam(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ path, want string }{
		{"/a?apikey=k", "/a"},
		{"/a?x=1&apikey=k&y=%2F+z&&w", "/a?x=1&y=%2F+z&&w"},
		{"/a?apikey=k&x=%41", "/a?x=%41"},
		{"/a?api%6Bey=k&x", "/a?x"},
		{"/a?x=1&apikey", "/a?x=1"},
		{"/a?apikeys=1&x=apikey=2", "/a?apikeys=1&x=apikey=2"},
		{"/a", "/a"},
		{"/a?", "/a?"},
		{"/a?x&", "/a?x&"},
		{"/a?apikey=k&", "/a"},
		{"/a?x=1&apikey=k&", "/a?x=1&"},
		{"/a?&apikey=k", "/a"},
		{"/%2e%2e/a;b=c?apikey=k", "/%2e%2e/a;b=c"},
	} {
		if got := removeQueryParam(tt.path, "apikey"); got != tt.want {
			t.Errorf("removeQueryParam(%q) = %q, want %q", tt.path, got, tt.want)
		}
	}
}

func TestDenialLogNamesNoKey(t *testing.T) {
	t.Parallel()
	c := mustParse(t, testConfig(""))
	out := c.authenticate([][2]string{{"x-api-key", acmeKey}}, "/", "POST", nil, clockAt(testNow))
	got := denialLog(false, c, &out, "req-1", -1)
	want := `denied status=403 reason=permission_denied request_id="req-1" consumer="acme" key=consumers[0].keys[0] missing_permission="write" rule=-1`
	wantEqual(t, "denialLog", got, want)
	out = c.authenticate([][2]string{{"x-api-key", "guess"}}, "/", "GET", nil, clockAt(testNow))
	got = denialLog(true, c, &out, "", 2)
	wantEqual(t, "denialLog", got, `shadow: would deny status=401 reason=unknown_key request_id="" rule=2; let through`)
}

// TestGuardOwnsEverySpelling: the identity headers key-auth removes are
// recognised in every spelling an upstream reads as them, its configured
// ones included.
func TestGuardOwnsEverySpelling(t *testing.T) {
	t.Parallel()
	c := mustParse(t, testConfig(`,"consumer_header":"x-partner"`))
	for _, tt := range []struct {
		name string
		want bool
	}{
		{"x-consumer", true},
		{"X-Consumer", true},
		{"x_consumer", true},
		{"X_CONSUMER_PERMISSIONS", true},
		{"x_user_id", true},
		{"X_Partner", true},
		{"x-consumers", false},
		{"x-consume", false},
		{"accept", false},
		{"x", false},
	} {
		if got := c.guard.Owns(tt.name); got != tt.want {
			t.Errorf("guard.Owns(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}
