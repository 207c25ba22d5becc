// Package rules is the one implementation of convention 2 (README.md,
// "Writing a filter"): the per-route `rules` list every concierge filter
// accepts.
//
//	"shadow": false,
//	"rules": [
//	  {"match": {"prefix": "/healthz"}, "enabled": false},
//	  {"match": {"host": "*.internal.example.com", "methods": ["GET"]}, "shadow": true},
//	  {"match": {"route": "payments"}, "max_tokens": 10}
//	]
//
// Envoy can switch a filter off per route with typed_per_filter_config, but
// Istio cannot, and neither can tune a filter per route. A list of rules
// inside the filter's own configuration works on every proxy-wasm host; one
// shared implementation keeps the match semantics identical across filters,
// so an operator learns them once.
//
// The first rule whose match holds wins; no rule matching means the filter
// runs with its top-level settings. Besides `match`, `enabled` and `shadow`,
// a rule may carry the filter's own overrides: Parse hands each rule object
// to the filter's override parser, so those keys are type-checked and
// unknown-key detection covers them too.
//
// Matching runs on every request, so it does not allocate for the usual
// requests (see BenchmarkMatch). The request is a plain Request value: the
// matching logic has no proxy-wasm dependency and is tested natively; the
// Set's HostRequest method reads one from the current stream.
//
// # What a rule compares
//
// A filter sees the request the way the router that picks the route sees
// it, so the rules compare what the router compares, and a rule that
// weakens a filter must never reach a request the router sends elsewhere.
//
// Hosts: `host` has the syntax of Envoy's virtual-host domains and is
// compared as Envoy compares them, case-insensitively and with the port:
// "api.example.com" (exactly that authority: not "api.example.com:8443",
// not "api.example.com."), "api.example.com:8443", a suffix
// "*.example.com" or "*-api.example.com", a prefix "api.example.*" or
// "api.example.com:*" (a wildcard stands for at least one character), or
// "*". The router selects the virtual host on the authority as sent; when
// the HTTP connection manager strips the port (strip_any_host_port,
// strip_matching_host_port) or the trailing dot (strip_trailing_host_dot)
// it rewrites :authority before any filter runs, so the filter sees the
// stripped value too and the two still agree. Only Envoy's route-level
// ignore_port_in_host_matching makes the router ignore a port the filter
// sees: with it, write host rules without a port, and a rule that lowers
// protection then matches less than the router, never more.
//
// Paths: `prefix` and `path` are compared with two forms of :path, both
// without the query: the path as sent, which is what the router matches
// when normalize_path is off (Envoy's default), and NormalizePath's form
// (dot segments removed, slashes merged, unreserved escapes decoded),
// which is what most upstreams serve. A '#' is an ordinary byte, not the
// start of a fragment: Envoy refuses a path with one (Istio strips the
// fragment before the filters), and where a proxy lets one through, the
// upstream reads past it.
//
// # Rules that lower protection
//
// A rule lowers protection when it lets through what the top-level
// settings would stop: `"enabled": false`, `"shadow": true` under an
// enforcing top level, or an override whose type implements Lowerer and
// says so (jwt-auth's allow_missing). Such a rule applies only when every
// form of the request matches it: the authority as sent, and the path both
// as sent and normalized. So `{"match": {"prefix": "/open/"}, "enabled":
// false}` does not open "/api/orders/../../open/p" (the router sends it,
// as sent, to the /api/ route), nor "/open/../admin" (the upstream serves
// /admin), nor "//open/x" or "/%6Fpen/x" (no route with prefix /open/
// takes them), and `{"match": {"host": "public.example.com"}, "enabled":
// false}` does not open "public.example.com:8080" (the router sends it to
// another virtual host). Any other rule applies when either form matches,
// so that a rule that adds protection (jwt-auth's require) covers every
// spelling of its paths.
//
// The alternative, refusing such rules on a listener that does not
// normalize paths, needs what a filter cannot see: the connection
// manager's settings. Matching every form needs nothing but the request,
// and on a listener that normalizes (envoy/envoy.yaml sets normalize_path,
// merge_slashes and path_with_escaped_slashes_action) the forms coincide.
//
// For a public route, prefer `{"match": {"route": "public"}, "enabled":
// false}`: xds.route_name is the name of the route the router picked, so
// the rule and the router cannot disagree; on a host without the property
// the rule matches nothing and the filter stays on.
//
// # Cautions
//
// These follow Envoy's own route matching, and surprise people:
//
//   - `"prefix": "/admin/"` does not cover "/admin" (nor "/admin?x=1"):
//     write a second rule with `"path": "/admin"`, or use the prefix
//     "/admin", which also covers "/administrator".
//   - Path parameters and case are not normalized. "/admin;x=1/users" and
//     "/ADMIN/users" do not start with "/admin/", so a rule that adds
//     protection there does not apply, yet Tomcat and Spring (which drop
//     ";" parameters) or a case-insensitive upstream serve /admin/users.
//     And "/public/..;/admin" starts with "/public/" as sent and
//     normalized ("..;" is not a dot segment), so a rule that opens
//     "/public/" opens it, and Tomcat reads "..;" as "..". Protect by
//     default and open narrowly; prefer `route` rules to open.
//   - Encoded slashes stay encoded: with path_with_escaped_slashes_action
//     KEEP_UNCHANGED (Envoy's default), "/public/..%2Fadmin" starts with
//     "/public/" for the rules and for the router, and an upstream that
//     decodes %2F before resolving dot segments serves /admin. Set
//     REJECT_REQUEST (or UNESCAPE_AND_FORWARD) at the edge.
package rules
