package main

// Key-or-JWT: with accept_verified_identity, a request that key-auth,
// earlier in the same filter chain, already authenticated passes without a
// token. The identity is read from the stream property (shared/identity),
// which only filters can write, never from a header a client could send.

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"

	"github.com/concierge-wasm/concierge/shared/identity"
)

// keyAuthVerified reports whether key-auth verified the current request.
// A property that is present but unreadable counts as no identity.
func keyAuthVerified() bool {
	id, ok, err := identity.Get()
	if err != nil {
		proxywasm.LogWarnf("reading the identity property: %v", err)
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
