package main

// Key-or-JWT: with accept_verified_identity, a request that key-auth,
// earlier in the same filter chain, already authenticated passes without a
// token. The identity is read from the stream property (shared/identity),
// which only filters can write, never from a header a client could send.

import (
	"slices"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"

	"github.com/concierge-wasm/concierge/shared/identity"
)

// keyAuthVerified reports whether key-auth verified the current request.
// A property that is present but unreadable counts as no identity.
func keyAuthVerified() bool {
	id, ok, err := identity.Get()
	if err != nil {
		proxywasm.LogWarnf("jwt-auth: reading the identity property: %v", err)
		return false
	}
	return ok && id.Method == identity.MethodKeyAuth
}

// acceptsVerified reports whether a route takes a key-auth identity in
// place of a token: not when its rule asks for claims or providers, which
// only a token has.
func (o *ruleOverride) acceptsVerified() bool {
	return o == nil || (len(o.require.claims) == 0 && o.providers == nil)
}

// withoutDefaultIdentity is strip without identity.DefaultHeaders: when
// key-auth has verified the request it has already removed the client's
// copies of those (every concierge auth filter strips them) and set its
// own, which must reach the upstream. This filter's other identity headers
// (claim_to_headers, forward_payload_header) are still stripped.
func withoutDefaultIdentity(strip []string) []string {
	def := identity.DefaultHeaders()
	return slices.DeleteFunc(slices.Clone(strip), func(h string) bool { return slices.Contains(def, h) })
}
