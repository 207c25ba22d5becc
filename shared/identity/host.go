package identity

import (
	"errors"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

// propertyPath is a single segment: Envoy reads a set_property value back
// through get_property only under a one-segment path.
var propertyPath = []string{Property}

// Set stores id in the current stream for the filters after this one. It
// fails for an incomplete identity, and outside a stream (Envoy answers
// NOT_FOUND without stream info, e.g. in OnPluginStart).
func Set(id *Identity) error {
	if err := id.Validate(); err != nil {
		return err
	}
	return proxywasm.SetProperty(propertyPath, Encode(id))
}

// Get reads the identity an auth filter earlier in the chain stored. ok is
// false, with a nil error, when there is none: no auth filter ran, or it let
// the request through unauthenticated. An error means the property exists
// but cannot be trusted; treat the request as unauthenticated and log it.
func Get() (id Identity, ok bool, err error) {
	b, err := proxywasm.GetProperty(propertyPath)
	if errors.Is(err, types.ErrorStatusNotFound) {
		return Identity{}, false, nil
	}
	if err != nil {
		return Identity{}, false, err
	}
	if len(b) == 0 {
		return Identity{}, false, nil
	}
	id, err = Decode(b)
	if err != nil {
		return Identity{}, false, err
	}
	return id, true, nil
}

// Strip removes the named headers (see StripList) from the current request,
// every value of each. It tries them all and returns the first error.
func Strip(names []string) error {
	var first error
	for _, n := range names {
		if err := proxywasm.RemoveHttpRequestHeader(n); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// SetHeaders replaces the identity headers of the current request with
// id.Headers(). Call Strip first: a header id leaves out (an empty
// Consumer, say) must not keep the client's value.
func SetHeaders(id *Identity) error {
	var first error
	for _, h := range id.Headers() {
		if err := proxywasm.ReplaceHttpRequestHeader(h[0], h[1]); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// ScreenRequestHeaders removes from the current request every header g
// owns, in any spelling (see Guard), and returns headers without them;
// spoofed lists the names removed, as the client spelt them. Call it first
// in OnHttpRequestHeaders, on every request the filter sees (public and
// shadow routes included), with the headers just read from the host.
//
// reject is true when g.Action is RejectSpoofed and something was removed:
// the caller then answers 400 with SpoofReason (shared/reply) unless the
// request is in shadow mode. The headers are removed in both modes, so a
// request let through for any reason never carries them.
func (g *Guard) ScreenRequestHeaders(headers [][2]string) (rest [][2]string, spoofed []string, reject bool, err error) {
	spoofed = g.Spoofed(headers)
	if len(spoofed) == 0 {
		return headers, nil, false, nil
	}
	err = Strip(spoofed)
	return Without(headers, spoofed), spoofed, g.Action == RejectSpoofed, err
}

// StripRequestTrailers removes from the current request's trailers every
// header g owns, in any spelling, and returns the names removed. Call it
// in OnHttpRequestTrailers. Trailers are stripped whatever g.Action says:
// by the time they arrive the request has been streaming to the upstream,
// which may already have acted on it, so a 400 then would misinform the
// client; removing them keeps the upstream from ever seeing them.
func (g *Guard) StripRequestTrailers() (spoofed []string, err error) {
	trailers, err := proxywasm.GetHttpRequestTrailers()
	if err != nil {
		return nil, err
	}
	spoofed = g.Spoofed(trailers)
	var first error
	for _, n := range spoofed {
		if err := proxywasm.RemoveHttpRequestTrailer(n); err != nil && first == nil {
			first = err
		}
	}
	return spoofed, first
}
