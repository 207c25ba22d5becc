package main

import (
	"errors"
	"strings"
	"testing"
)

func TestExtractToken(t *testing.T) {
	cfg := mustConfig(t, `{"providers":[
		{"issuer":"https://a","algorithms":["HS256"],"hmac_secret":"`+testSecret+`"},
		{"issuer":"https://b","algorithms":["HS256"],"hmac_secret":"`+testSecret+`",
		 "from_headers":[{"name":"X-Token"},{"name":"authorization","value_prefix":"JWT "}],
		 "from_params":["access_token"],"from_cookies":["session"],"max_token_bytes":64}]}`)
	// Locations: 0 authorization "Bearer ", 1 x-token, 2 authorization "JWT ",
	// 3 param access_token, 4 cookie session.
	long := strings.Repeat("a", 65)
	for _, tc := range []struct {
		name    string
		headers [][2]string
		path    string
		want    string
		loc     int
		err     error
	}{
		{"bearer", [][2]string{{"authorization", "Bearer abc"}}, "/", "abc", 0, nil},
		{"bearer lower-case scheme", [][2]string{{"authorization", "bearer abc"}}, "/", "abc", 0, nil},
		{"BEARER upper-case scheme", [][2]string{{"authorization", "BEARER abc"}}, "/", "abc", 0, nil},
		{"header name case", [][2]string{{"Authorization", "Bearer abc"}}, "/", "abc", 0, nil},
		{"extra spaces", [][2]string{{"authorization", "Bearer   abc  "}}, "/", "abc", 0, nil},
		{"other prefix", [][2]string{{"authorization", "jwt abc"}}, "/", "abc", 2, nil},
		{"basic is not ours", [][2]string{{"authorization", "Basic dXNlcg=="}}, "/", "", -1, errMissingToken},
		{"bearer without token", [][2]string{{"authorization", "Bearer "}}, "/", "", -1, errMalformed},
		{"bearer without space", [][2]string{{"authorization", "Bearer"}}, "/", "", -1, errMissingToken},
		{"no prefix header", [][2]string{{"x-token", "abc"}}, "/", "abc", 1, nil},
		{"param", nil, "/p?a=1&access_token=abc&b=2", "abc", 3, nil},
		{"param escaped", nil, "/p?access_token=a%2Eb", "a.b", 3, nil},
		{"param bad escape", nil, "/p?access_token=a%zz", "", -1, errMalformed},
		{"param escaped name", nil, "/p?access%5Ftoken=abc", "abc", 3, nil},
		{"param empty", nil, "/p?access_token=", "", -1, errMalformed},
		{"param of another name", nil, "/p?token=abc", "", -1, errMissingToken},
		{"cookie", [][2]string{{"cookie", "a=1; session=abc; b=2"}}, "/", "abc", 4, nil},
		{"cookie quoted", [][2]string{{"cookie", `session="abc"`}}, "/", "abc", 4, nil},
		{"second cookie header", [][2]string{{"cookie", "a=1"}, {"cookie", "session=abc"}}, "/", "abc", 4, nil},
		{"cookie prefix name", [][2]string{{"cookie", "xsession=abc"}}, "/", "", -1, errMissingToken},
		{"nothing", [][2]string{{":path", "/"}}, "/", "", -1, errMissingToken},
		// More than one token.
		{"two authorization headers", [][2]string{{"authorization", "Bearer a"}, {"authorization", "Bearer b"}}, "/", "", -1, errMultipleTokens},
		{"same token twice", [][2]string{{"authorization", "Bearer a"}, {"authorization", "Bearer a"}}, "/", "", -1, errMultipleTokens},
		{"header and param", [][2]string{{"authorization", "Bearer a"}}, "/?access_token=b", "", -1, errMultipleTokens},
		{"header and cookie", [][2]string{{"x-token", "a"}, {"cookie", "session=b"}}, "/", "", -1, errMultipleTokens},
		{"two params", nil, "/?access_token=a&access_token=b", "", -1, errMultipleTokens},
		{"two cookies", [][2]string{{"cookie", "session=a; session=b"}}, "/", "", -1, errMultipleTokens},
		// Size, before anything else looks at the token.
		{"header at limit", [][2]string{{"x-token", long[:64]}}, "/", long[:64], 1, nil},
		{"header over limit", [][2]string{{"x-token", long}}, "/", "", -1, errTokenTooLarge},
		{"param over limit", nil, "/?access_token=" + long, "", -1, errTokenTooLarge},
		{"cookie over limit", [][2]string{{"cookie", "session=" + long}}, "/", "", -1, errTokenTooLarge},
		{"bearer uses the larger default limit", [][2]string{{"authorization", "Bearer " + long}}, "/", long, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := cfg.extractToken(tc.headers, tc.path)
			if !errors.Is(err, tc.err) {
				t.Fatalf("extractToken(%v, %q) = %v, want %v", tc.headers, tc.path, errString(err), errString(tc.err))
			}
			if err == nil && (got.value != tc.want || got.loc != tc.loc) {
				t.Errorf("extractToken(%v, %q) = %q at %d, want %q at %d", tc.headers, tc.path, got.value, got.loc, tc.want, tc.loc)
			}
		})
	}
}

// TestExtractLongestPrefix: with "Bearer " and "" on the same header, a
// bearer value is one token, not two.
func TestExtractLongestPrefix(t *testing.T) {
	cfg := mustConfig(t, `{"providers":[
		{"issuer":"https://a","algorithms":["HS256"],"hmac_secret":"`+testSecret+`"},
		{"issuer":"https://b","algorithms":["HS256"],"hmac_secret":"`+testSecret+`","from_headers":[{"name":"authorization"}]}]}`)
	got, err := cfg.extractToken([][2]string{{"authorization", "Bearer abc"}}, "/")
	if err != nil || got.value != "abc" || got.loc != 0 {
		t.Errorf("extractToken(Bearer abc) = %q at %d, %v; want abc at 0", got.value, got.loc, err)
	}
	got, err = cfg.extractToken([][2]string{{"authorization", "abc"}}, "/")
	if err != nil || got.value != "abc" || got.loc != 1 {
		t.Errorf("extractToken(abc) = %q at %d, %v; want abc at 1", got.value, got.loc, err)
	}
}

func TestRemoveQueryParam(t *testing.T) {
	for _, tc := range []struct{ path, name, want string }{
		{"/a?access_token=x", "access_token", "/a"},
		{"/a?b=1&access_token=x&c=2", "access_token", "/a?b=1&c=2"},
		{"/a?access_token=x&access_token=y&c", "access_token", "/a?c"},
		{"/a?access%5Ftoken=x&c=1", "access_token", "/a?c=1"},
		{"/a?c=1", "access_token", "/a?c=1"},
		{"/a", "access_token", "/a"},
	} {
		if got := removeQueryParam(tc.path, tc.name); got != tc.want {
			t.Errorf("removeQueryParam(%q, %q) = %q, want %q", tc.path, tc.name, got, tc.want)
		}
	}
}

func TestRemoveCookie(t *testing.T) {
	for _, tc := range []struct{ header, name, want string }{
		{"session=x", "session", ""},
		{"a=1; session=x; b=2", "session", "a=1; b=2"},
		{"a=1;session=x", "session", "a=1"},
		{"xsession=1", "session", "xsession=1"},
	} {
		if got := removeCookie(tc.header, tc.name); got != tc.want {
			t.Errorf("removeCookie(%q, %q) = %q, want %q", tc.header, tc.name, got, tc.want)
		}
	}
}
