package config

import "testing"

func TestIsToken(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want bool
	}{
		{"x-api-key", true}, {"GET", true}, {"!#$%&'*+-.^_`|~", true}, {"a1", true},
		{"", false}, {"x api", false}, {"x:y", false}, {"ü", false}, {"a\"b", false}, {"(x)", false},
	} {
		if got := IsToken(tc.s); got != tc.want {
			t.Errorf("IsToken(%q) = %v, want %v", tc.s, got, tc.want)
		}
	}
}
