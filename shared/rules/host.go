package rules

import "github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"

// routeNameProperty is Envoy's attribute for the matched route's name.
var routeNameProperty = []string{"xds", "route_name"}

// HostRequest reads the request attributes that rules match on from the
// current HTTP stream; call it from OnHttpRequestHeaders. The route name is
// read only when a rule uses it: it costs a host call, and hosts other than
// Envoy may not have it (Route is then "", which no route rule matches).
func (s Set[T]) HostRequest() Request {
	req := Request{Header: hostHeader}
	req.Host, _ = proxywasm.GetHttpRequestHeader(":authority")
	req.Path, _ = proxywasm.GetHttpRequestHeader(":path")
	req.Method, _ = proxywasm.GetHttpRequestHeader(":method")
	if s.usesRoute {
		if b, err := proxywasm.GetProperty(routeNameProperty); err == nil {
			req.Route = string(b)
		}
	}
	return req
}

// hostHeader is a plain function, not a closure, so that storing it in a
// Request does not allocate.
func hostHeader(name string) (string, bool) {
	v, err := proxywasm.GetHttpRequestHeader(name)
	return v, err == nil
}
