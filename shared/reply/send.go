package reply

import "github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"

// Send answers the current request with a local response and returns the
// request ID it found ("" if none), for the filter's log line. Call it while
// the request headers are still readable (OnHttpRequestHeaders, or while the
// request is paused) and then return types.ActionPause. Envoy sends the
// reply after the callback returns, and it passes through the response
// callbacks of this filter and of the filters before it.
func (r Replier) Send(status int, reason string, extra ...[2]string) (requestID string, err error) {
	requestID, _ = proxywasm.GetHttpRequestHeader(r.idHeader())
	return requestID, r.SendWithID(requestID, status, reason, extra...)
}

// SendWithID is Send for a caller that already holds the request ID, e.g.
// after the request headers stopped being readable.
func (r Replier) SendWithID(requestID string, status int, reason string, extra ...[2]string) error {
	body := AppendBody(make([]byte, 0, 128+len(reason)+len(requestID)), r.Format, status, reason, requestID)
	// -1 forces no gRPC status; for a gRPC request Envoy maps the HTTP
	// status to one.
	return proxywasm.SendHttpResponse(uint32(status), Headers(r.Format, r.idHeader(), requestID, extra...), body, -1)
}
