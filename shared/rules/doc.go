// Package rules is the one implementation of convention 2 (README.md,
// "Writing a filter"): the
// per-route `rules` list every concierge filter accepts.
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
// Paths are compared after NormalizePath (dot segments removed, slashes
// merged, unreserved escapes decoded). Without that, a rule such as
// `{"match": {"prefix": "/public"}, "enabled": false}` would switch
// authentication off for `/public/../admin`. Encoded slashes (%2F) are left
// alone, as RFC 3986 and Envoy's default do; gateways should still set the
// HTTP connection manager's normalize_path, merge_slashes and
// path_with_escaped_slashes_action so that filters and upstreams see the
// same path.
package rules
