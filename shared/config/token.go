package config

import "strings"

// IsToken reports whether s is a non-empty RFC 9110 token (§5.6.2): the
// syntax of header names, methods and the names filters let operators
// choose for them. Filters check configured names with it at start, so
// that a name a proxy would refuse is refused with its field path instead.
func IsToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
