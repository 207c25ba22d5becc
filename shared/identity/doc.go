// Package identity carries the verified caller from the auth filters
// (jwt-auth, key-auth) to the filters after them (rate-limit,
// response-cache), per convention 4 of README.md's "Writing a filter".
//
// A header would be the obvious carrier, and the wrong one: a client can send
// any header, and a filter later in the chain cannot tell a header the
// gateway set from one the client forged. So the auth filter stores the
// identity in a stream property, Envoy filter state that only filters can
// write, and removes the identity headers the client sent before setting its
// own for the upstream.
//
// The property is named once, here (Property), and holds a small versioned
// JSON document (Encode/Decode). Each filter is a separate .wasm module that
// operators may upgrade one at a time, so Decode ignores fields it does not
// know and only a new version number makes it refuse a document.
//
// Envoy stores the property as filter state `wasm.concierge.identity`, so
// access logs (%FILTER_STATE(wasm.concierge.identity)%) and other Envoy
// filters can read it too.
package identity
