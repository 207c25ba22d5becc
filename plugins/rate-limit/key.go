package main

import (
	"errors"
	"net/netip"
	"strings"

	"github.com/concierge-wasm/concierge/shared/rules"
)

// keyKind is one part of a key alternative.
type keyKind uint8

const (
	partIdentity keyKind = iota
	partIP
	partHeader
	partRoute
	partPath
	partMethod
)

type keyPart struct {
	kind keyKind
	name string // the header name for partHeader (lower case)
}

// descriptorKey is the entry key the part gets in a rate limit service
// descriptor: Envoy's own names where Envoy has one (remote_address), the
// header name for a header.
func (p keyPart) descriptorKey() string {
	switch p.kind {
	case partIdentity:
		return "identity"
	case partIP:
		return "remote_address"
	case partHeader:
		return p.name
	case partRoute:
		return "route"
	case partPath:
		return "path"
	}
	return "method"
}

// parseKeyParts reads one alternative: parts joined by '+'.
func parseKeyParts(alt string) ([]keyPart, error) {
	if alt == "" {
		return nil, errors.New(`must not be empty; parts are identity, ip, header:<name>, route, path, method, joined by "+"`)
	}
	var parts []keyPart
	for _, s := range strings.Split(alt, "+") {
		var p keyPart
		switch {
		case s == "identity":
			p.kind = partIdentity
		case s == "ip":
			p.kind = partIP
		case s == "route":
			p.kind = partRoute
		case s == "path":
			p.kind = partPath
		case s == "method":
			p.kind = partMethod
		case strings.HasPrefix(s, "header:"):
			p.kind, p.name = partHeader, strings.ToLower(s[len("header:"):])
			if !validHeaderName(p.name) {
				return nil, errors.New("header name in " + quote(s) + " is not a valid HTTP field name")
			}
		default:
			return nil, errors.New("unknown key part " + quote(s) + "; parts are identity, ip, header:<name>, route, path, method")
		}
		for _, q := range parts {
			if q == p {
				return nil, errors.New("key part " + quote(s) + " appears twice")
			}
		}
		parts = append(parts, p)
	}
	return parts, nil
}

func quote(s string) string { return `"` + s + `"` }

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// keyInput is what keys are built from, read once per request.
type keyInput struct {
	identity string // the verified identity as a key part: "<provider>:<name>" ("" for none)
	peer     string // source.address, "1.2.3.4:5678" or "[::1]:5678"
	xff      string // x-forwarded-for, every value joined by ","
	route    string
	path     string
	method   string
	header   func(name string) (string, bool)
}

// keySep separates the parts of a key: header values cannot carry
// control characters, so "a"+"b+c" and "a+b"+"c" stay apart.
const keySep = '\x1f'

// buildKey appends the bucket key of the first alternative whose parts are
// all present, and returns it with that alternative's index, or -1 when
// none is complete.
func buildKey(dst []byte, alts [][]keyPart, trusted []netip.Prefix, in *keyInput) ([]byte, int) {
	start := len(dst)
	for ai, alt := range alts {
		dst = dst[:start]
		dst = append(dst, byte('a'+ai)) // ai < maxKeyAlternatives
		complete := true
		for _, p := range alt {
			dst = append(dst, keySep)
			var ok bool
			if dst, ok = appendPart(dst, p, trusted, in); !ok {
				complete = false
				break
			}
		}
		if complete {
			return dst, ai
		}
	}
	return dst[:start], -1
}

// appendPart appends one part's value; ok is false when it is absent.
// The client address is appended without a string in between: this runs
// on every request.
func appendPart(dst []byte, p keyPart, trusted []netip.Prefix, in *keyInput) ([]byte, bool) {
	if p.kind == partIP {
		ip, ok := clientIP(in.peer, in.xff, trusted)
		if !ok {
			return dst, false
		}
		return ip.AppendTo(dst), true
	}
	v, ok := partValue(p, trusted, in)
	return append(dst, v...), ok
}

// partValue is one part's value for the request; ok is false when absent.
func partValue(p keyPart, trusted []netip.Prefix, in *keyInput) (string, bool) {
	switch p.kind {
	case partIdentity:
		return in.identity, in.identity != ""
	case partIP:
		ip, ok := clientIP(in.peer, in.xff, trusted)
		if !ok {
			return "", false
		}
		return ip.String(), true
	case partHeader:
		if in.header == nil {
			return "", false
		}
		return in.header(p.name)
	case partRoute:
		return in.route, in.route != ""
	case partPath:
		path := rules.NormalizePath(in.path)
		return path, path != ""
	}
	return in.method, in.method != ""
}

// needsPeer reports whether the client address may be needed: some
// alternative with ip comes before the first alternative known to be
// complete (identity and route are known by then; a header, path or
// method part counts as unknown, so the address is read).
func needsPeer(alts [][]keyPart, in *keyInput) bool {
	for _, alt := range alts {
		complete := true
		for _, p := range alt {
			switch p.kind {
			case partIP:
				return true
			case partIdentity:
				complete = complete && in.identity != ""
			case partRoute:
				complete = complete && in.route != ""
			default:
				complete = false
			}
		}
		if complete {
			return false
		}
	}
	return false
}

// clientIP is the address limits apply to: the peer's, unless the peer is
// a trusted proxy, in which case x-forwarded-for is read from the right,
// skipping trusted proxies, and the first address no trusted proxy is
// known for is the client. A malformed entry ends the walk at the last
// address that was good, so garbage a client prepends cannot pick a key.
func clientIP(peer, xff string, trusted []netip.Prefix) (netip.Addr, bool) {
	ip, ok := peerAddr(peer)
	if !ok {
		return netip.Addr{}, false
	}
	if len(trusted) == 0 || !isTrusted(ip, trusted) {
		return ip, true
	}
	rest := xff
	for rest != "" {
		i := strings.LastIndexByte(rest, ',')
		entry := strings.TrimSpace(rest[i+1:])
		if i < 0 {
			rest = ""
		} else {
			rest = rest[:i]
		}
		a, err := netip.ParseAddr(entry)
		if err != nil {
			return ip, true
		}
		ip = a.Unmap()
		if !isTrusted(ip, trusted) {
			return ip, true
		}
	}
	return ip, true
}

func isTrusted(ip netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// peerAddr parses Envoy's source.address ("ip:port", "[ipv6]:port", or a
// bare address).
func peerAddr(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	return netip.Addr{}, false
}
