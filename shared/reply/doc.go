// Package reply writes the local responses concierge filters deny requests
// with (convention 3 in README.md, "Writing a filter"), so that a client sees one error shape
// whichever filter stopped it:
//
//	{"error":"missing bearer token","requestId":"5f0c…"}
//
// or, for teams that standardised on RFC 9457 (`"error_format":
// "problem+json"`):
//
//	{"type":"about:blank","title":"Unauthorized","status":401,
//	 "detail":"missing bearer token","requestId":"5f0c…"}
//
// The body builder and the header list are pure functions, tested natively;
// Replier.Send is the thin proxywasm call around them.
//
// requestId is always present, as "" when the request had no ID, rather than
// omitted: clients and log pipelines then parse one fixed shape, and an empty
// value says plainly that no request-id filter ran before this one.
package reply
