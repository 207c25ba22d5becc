package engine

// CodecError is the downstream codec refusing the rest of a request after
// the stream began, e.g. an HTTP/1 request trailer whose name
// headers_with_underscores_action rejects. Envoy's HTTP/1 codec then sends
// a local reply with status through the connection manager when the
// response has not started (Bad Request, the given details), and resets
// the stream when it has.
func (s *Stream) CodecError(status int, body, details string) {
	s.w.call(func() {
		s.sendLocalReply(&localReply{status: status, body: []byte(body), details: details, by: "connection_manager"})
	})
}
