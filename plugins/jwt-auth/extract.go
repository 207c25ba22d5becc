package main

// Finding the token in a request. Nothing here decodes the token: a token
// over the size limit is refused before any parsing.

import (
	"net/url"
	"strings"
)

type locKind uint8

const (
	locHeader locKind = iota + 1
	locParam
	locCookie
)

// location is one place a token is read from.
type location struct {
	kind locKind
	// name is the header name (lower case), query parameter or cookie.
	name string
	// prefix precedes the token in a header value ("Bearer "); compared
	// case-insensitively, since auth schemes are (RFC 9110 §11.1).
	prefix string
	// maxBytes is the largest max_token_bytes of the providers reading here.
	maxBytes int
}

// foundToken is a token and where it was found.
type foundToken struct {
	value string
	loc   int // index into config.locations
}

// extractToken finds the one token of a request. headers are the request
// headers as the host gives them (cookies are read from "cookie" headers);
// path is the :path with its query.
//
// Errors: errMissingToken when no location holds a token, errMultipleTokens
// when more than one does (or one holds two), errTokenTooLarge for a token
// longer than its location allows, errMalformed for an empty token after a
// matching prefix or an undecodable query value.
func (c *config) extractToken(headers [][2]string, path string) (foundToken, error) {
	x := extraction{c: c, found: foundToken{loc: -1}}
	var hasHeaderLoc, hasParamLoc, hasCookieLoc bool
	for _, l := range c.locations {
		switch l.kind {
		case locHeader:
			hasHeaderLoc = true
		case locParam:
			hasParamLoc = true
		case locCookie:
			hasCookieLoc = true
		}
	}
	for _, h := range headers {
		if hasCookieLoc && strings.EqualFold(h[0], "cookie") {
			if err := x.cookies(h[1]); err != nil {
				return foundToken{}, err
			}
		}
		if !hasHeaderLoc {
			continue
		}
		// The longest matching prefix wins, so that "Bearer " and "" on
		// the same header do not both claim one value.
		best := -1
		for i, l := range c.locations {
			if l.kind != locHeader || !strings.EqualFold(h[0], l.name) {
				continue
			}
			if len(h[1]) >= len(l.prefix) && strings.EqualFold(h[1][:len(l.prefix)], l.prefix) &&
				(best < 0 || len(l.prefix) > len(c.locations[best].prefix)) {
				best = i
			}
		}
		if best >= 0 {
			if err := x.take(trimOWS(h[1][len(c.locations[best].prefix):]), best); err != nil {
				return foundToken{}, err
			}
		}
	}
	if hasParamLoc {
		if err := x.params(path); err != nil {
			return foundToken{}, err
		}
	}
	if x.found.loc < 0 {
		return foundToken{}, errMissingToken
	}
	return x.found, nil
}

// extraction is the state of one extractToken call.
type extraction struct {
	c     *config
	found foundToken
}

func (x *extraction) take(value string, loc int) error {
	if x.found.loc >= 0 {
		return errMultipleTokens
	}
	if len(value) > x.c.locations[loc].maxBytes {
		return errTokenTooLarge
	}
	if value == "" {
		return errMalformed
	}
	x.found = foundToken{value: value, loc: loc}
	return nil
}

func (x *extraction) cookies(header string) error {
	for header != "" {
		var pair string
		pair, header, _ = strings.Cut(header, ";")
		name, value, ok := strings.Cut(trimOWS(pair), "=")
		if !ok {
			continue
		}
		for i, l := range x.c.locations {
			if l.kind == locCookie && l.name == name {
				value = trimOWS(value)
				if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
					value = value[1 : len(value)-1]
				}
				if err := x.take(value, i); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (x *extraction) params(path string) error {
	_, query, ok := strings.Cut(path, "?")
	if !ok {
		return nil
	}
	for query != "" {
		var pair string
		pair, query, _ = strings.Cut(query, "&")
		name, value, _ := strings.Cut(pair, "=")
		if strings.ContainsAny(name, "%+") {
			n, err := url.QueryUnescape(name)
			if err != nil {
				continue // not one of ours: a name we look for has a clean spelling
			}
			name = n
		}
		for i, l := range x.c.locations {
			if l.kind != locParam || l.name != name {
				continue
			}
			// The size check comes before unescaping, which can only shrink.
			if len(value) > l.maxBytes {
				return errTokenTooLarge
			}
			if strings.ContainsAny(value, "%+") {
				v, err := url.QueryUnescape(value)
				if err != nil {
					return errMalformed
				}
				value = v
			}
			if err := x.take(value, i); err != nil {
				return err
			}
		}
	}
	return nil
}

// trimOWS removes the optional whitespace (spaces and tabs) around s.
func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// removeQueryParam returns path without any query parameter called name, for
// the wiring to drop a token read from the query (forward: false).
func removeQueryParam(path, name string) string {
	base, query, ok := strings.Cut(path, "?")
	if !ok {
		return path
	}
	var b strings.Builder
	b.WriteString(base)
	sep := byte('?')
	for query != "" {
		var pair string
		pair, query, _ = strings.Cut(query, "&")
		n, _, _ := strings.Cut(pair, "=")
		if u, err := url.QueryUnescape(n); err == nil {
			n = u
		}
		if n == name {
			continue
		}
		b.WriteByte(sep)
		b.WriteString(pair)
		sep = '&'
	}
	return b.String()
}

// removeCookie returns a cookie header without the cookie called name ("" if
// nothing is left, and the wiring should then remove the header).
func removeCookie(header, name string) string {
	var b strings.Builder
	for header != "" {
		var pair string
		pair, header, _ = strings.Cut(header, ";")
		pair = trimOWS(pair)
		if n, _, _ := strings.Cut(pair, "="); n == name || pair == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(pair)
	}
	return b.String()
}

// withoutToken returns the values of the request header name that remain
// once the value carrying tok (as found at location l) is taken out, so
// that other credentials sharing the header name survive token removal.
func withoutToken(headers [][2]string, l location, tok string) []string {
	var keep []string
	for _, h := range headers {
		if !strings.EqualFold(h[0], l.name) {
			continue
		}
		v := h[1]
		if len(v) >= len(l.prefix) && strings.EqualFold(v[:len(l.prefix)], l.prefix) && trimOWS(v[len(l.prefix):]) == tok {
			continue
		}
		keep = append(keep, v)
	}
	return keep
}

// headerValues returns every value of the request header name.
func headerValues(headers [][2]string, name string) []string {
	var out []string
	for _, h := range headers {
		if strings.EqualFold(h[0], name) {
			out = append(out, h[1])
		}
	}
	return out
}
