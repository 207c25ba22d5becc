package rules

import "strings"

// Headers is a request header list as proxy-wasm hands it to a filter
// (name/value pairs, repeated names kept).
type Headers [][2]string

// Get returns the first value of name, compared ASCII case-insensitively;
// ok is false when the header is absent.
func (h Headers) Get(name string) (value string, ok bool) {
	for _, p := range h {
		if strings.EqualFold(p[0], name) {
			return p[1], true
		}
	}
	return "", false
}

// Value returns the first value of name, or "" when it is absent.
func (h Headers) Value(name string) string {
	v, _ := h.Get(name)
	return v
}

// RequestOf is what the rules match on, from the request headers a filter
// already holds (no host call per attribute). Route is left for the caller,
// which reads it only when a rule uses it.
func RequestOf(headers [][2]string) Request {
	h := Headers(headers)
	return Request{Host: h.Value(":authority"), Path: h.Value(":path"), Method: h.Value(":method"), Header: h.Get}
}
