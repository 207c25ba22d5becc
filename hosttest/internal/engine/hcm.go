package engine

// Timeout is one of the HTTP connection manager's stream timers, which the
// gateway runs and the engine applies.
type Timeout int

const (
	// StreamIdleTimeout is stream_idle_timeout: no bytes either way for too
	// long.
	StreamIdleTimeout Timeout = iota
	// RequestTimeout is request_timeout: the whole request did not arrive
	// in time.
	RequestTimeout
)

// Expire applies a fired connection-manager timer to the stream, as
// Envoy's ActiveStream::onIdleTimeout and onRequestTimeout do: before any response, a local reply through
// the filters — 408 while the client has not sent the whole request, 504
// once it has (Http::Utility::maybeRequestTimeoutCode) — with Envoy's body
// and response code details. A stream idle timeout after the response has
// started resets the stream instead. A request timeout no longer applies
// once the request is complete or the response has started (Envoy disarms
// it then). It returns at once: the worker applies it when it is free.
func (s *Stream) Expire(t Timeout) {
	s.w.post(func() {
		if s.finished {
			return
		}
		switch t {
		case StreamIdleTimeout:
			if s.encodeStarted {
				s.result.Details = "stream_idle_timeout"
				s.reset("stream_idle_timeout")
				return
			}
			s.flags |= FlagStreamIdleTimeout
			s.sendLocalReply(s.timeoutReply("stream timeout", "stream_idle_timeout"))
		case RequestTimeout:
			if s.remoteDone || s.encodeStarted {
				return
			}
			s.sendLocalReply(s.timeoutReply("request timeout", "request_overall_timeout"))
		}
	})
}

func (s *Stream) timeoutReply(body, details string) *localReply {
	status := 408
	if s.remoteDone {
		status = 504
	}
	return &localReply{status: status, body: []byte(body), details: details, by: "http_connection_manager"}
}
