package identity

import (
	"strings"

	"github.com/concierge-wasm/concierge/shared/config"
)

// CanonicalName is a header name as the servers behind the gateway may read
// it: lower case, with every '_' turned into '-'. CGI (RFC 3875 §4.1.18)
// and the interfaces modelled on it (WSGI, Rack, PHP) hand an application
// `X-User-Id`, `x_user_id` and `X_USER-ID` as the one variable
// HTTP_X_USER_ID, so for an identity header they are all the same header.
func CanonicalName(name string) string {
	for i := 0; i < len(name); i++ {
		if c := name[i]; c == '_' || c >= 'A' && c <= 'Z' {
			b := []byte(name)
			for j := i; j < len(b); j++ {
				b[j] = canonicalByte(b[j])
			}
			return string(b)
		}
	}
	return name
}

// SameName reports whether a and b are one header to such a server
// (CanonicalName(a) == CanonicalName(b)), without allocating.
func SameName(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if canonicalByte(a[i]) != canonicalByte(b[i]) {
			return false
		}
	}
	return true
}

func canonicalByte(c byte) byte {
	switch {
	case c == '_':
		return '-'
	case c >= 'A' && c <= 'Z':
		return c + 'a' - 'A'
	}
	return c
}

// SpoofAction is what a filter does with a request that carries its own
// copy of an identity header the filter owns.
type SpoofAction uint8

const (
	// StripSpoofed removes the client's copies and goes on (the default).
	StripSpoofed SpoofAction = iota
	// RejectSpoofed removes them too, and the filter answers 400 with
	// SpoofReason instead of letting the request go on.
	RejectSpoofed
)

// SpoofOption is the configuration field, the same in every filter that
// owns identity headers, that picks the SpoofAction: "strip" or "reject".
const SpoofOption = "spoofed_identity_headers"

// SpoofReason is the error of the 400 a RejectSpoofed filter answers with.
const SpoofReason = "spoofed identity header"

// ParseSpoofAction reads SpoofOption from a filter's top-level
// configuration; anything but "strip" or "reject" is an error there.
func ParseSpoofAction(o *config.Object) SpoofAction {
	if o.Enum(SpoofOption, "strip", "strip", "reject") == "reject" {
		return RejectSpoofed
	}
	return StripSpoofed
}

// String is the option value that selects a.
func (a SpoofAction) String() string {
	if a == RejectSpoofed {
		return "reject"
	}
	return "strip"
}

// Guard recognises the client's copies of the identity headers a filter
// owns, in every spelling an upstream may take for them: any case, '_'
// for '-' (see CanonicalName). A filter builds one at configuration time
// and screens every request with it before anything else looks at the
// headers (Guard.ScreenRequestHeaders, Guard.StripRequestTrailers).
type Guard struct {
	// Action is what the filter does on a match.
	Action SpoofAction
	names  []string // canonical, without duplicates
}

// NewGuard returns a Guard for DefaultHeaders plus the filter's
// configured identity headers (claim headers, payload headers, ...).
func NewGuard(action SpoofAction, configured ...string) *Guard {
	g := &Guard{Action: action}
	for _, n := range StripList(configured...) {
		n = CanonicalName(n)
		if !g.Owns(n) {
			g.names = append(g.names, n)
		}
	}
	return g
}

// Except returns a Guard like g that no longer owns names (in any
// spelling): jwt-auth, after key-auth verified the request earlier in the
// chain, must leave the identity headers key-auth set.
func (g *Guard) Except(names ...string) *Guard {
	out := &Guard{Action: g.Action}
	for _, n := range g.names {
		keep := true
		for _, x := range names {
			if SameName(n, x) {
				keep = false
				break
			}
		}
		if keep {
			out.names = append(out.names, n)
		}
	}
	return out
}

// Names lists the owned headers in canonical spelling.
func (g *Guard) Names() []string { return append([]string(nil), g.names...) }

// Owns reports whether a header called name is, to some upstream, one of
// the identity headers g guards.
func (g *Guard) Owns(name string) bool {
	for _, n := range g.names {
		if SameName(name, n) {
			return true
		}
	}
	return false
}

// Spoofed returns the names, as the client spelt them, of the headers in
// hs that g owns, each once; nil when there are none, which is the common
// case and allocates nothing.
func (g *Guard) Spoofed(hs [][2]string) []string {
	var out []string
next:
	for _, h := range hs {
		if !g.Owns(h[0]) {
			continue
		}
		for _, o := range out {
			if strings.EqualFold(o, h[0]) {
				continue next
			}
		}
		out = append(out, h[0])
	}
	return out
}

// Without returns hs without the headers named in names (compared
// case-insensitively), in a new slice; hs itself when names is empty.
func Without(hs [][2]string, names []string) [][2]string {
	if len(names) == 0 {
		return hs
	}
	out := make([][2]string, 0, len(hs))
next:
	for _, h := range hs {
		for _, n := range names {
			if strings.EqualFold(h[0], n) {
				continue next
			}
		}
		out = append(out, h)
	}
	return out
}
