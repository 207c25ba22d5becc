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
//
// # Spoofed identity headers
//
// Removing `x-user-id` is not enough. CGI and the interfaces built on it
// (WSGI, Rack, PHP) hand an application `x-user-id`, `x_user_id` and
// `X-User_Id` as one variable, HTTP_X_USER_ID, so a client that sends
// `x_user_id: admin` past a filter that only removes `x-user-id` is admin
// to a Python or Ruby upstream. A Guard therefore compares names as those
// servers do (CanonicalName: lower case, '_' as '-'), and owns every
// identity header any concierge filter sets (DefaultHeaders: x-user-id,
// x-user-roles, x-consumer, x-consumer-permissions) plus the filter's
// configured ones, so that each auth filter also protects the headers of
// the others. A filter that owns identity headers:
//
//   - builds one Guard at configuration time, NewGuard(ParseSpoofAction(o),
//     configured...), reading the shared option "spoofed_identity_headers":
//     "strip" (default) or "reject";
//   - calls Guard.ScreenRequestHeaders first in OnHttpRequestHeaders, on
//     every request it sees, before its rules are matched: public
//     ("enabled": false), allow_missing and shadow routes included. The
//     client's copies are removed in both modes; in reject mode the filter
//     also answers 400 with SpoofReason (shadow mode only logs it);
//   - calls Guard.StripRequestTrailers in OnHttpRequestTrailers: trailers
//     can carry the same names (Envoy passes them on HTTP/2 always and on
//     HTTP/1 with http_protocol_options.enable_trailers).
//
// A filter Envoy does not run cannot strip anything: a route that sets
// typed_per_filter_config `disabled: true` for the filter, or a listener
// without it. The defence in depth there is the HTTP connection manager's
// common_http_protocol_options.headers_with_underscores_action:
// REJECT_REQUEST (or DROP_HEADER) removes every underscore spelling before
// any filter runs; the shipped Envoy configurations set it.
package identity
