package engine

import (
	"context"
	"net/http"
	"strconv"
	"strings"
)

// Response flags: the bits of Envoy's `response.flags` attribute
// (%RESPONSE_FLAGS%), in Envoy's CoreResponseFlag order, as far as the
// router and connection manager here can raise them.
const (
	FlagFailedLocalHealthCheck          uint64 = 1 << 0  // LH
	FlagNoHealthyUpstream               uint64 = 1 << 1  // UH
	FlagUpstreamRequestTimeout          uint64 = 1 << 2  // UT
	FlagLocalReset                      uint64 = 1 << 3  // LR
	FlagUpstreamRemoteReset             uint64 = 1 << 4  // UR
	FlagUpstreamConnectionFailure       uint64 = 1 << 5  // UF
	FlagUpstreamConnectionTermination   uint64 = 1 << 6  // UC
	FlagUpstreamOverflow                uint64 = 1 << 7  // UO
	FlagNoRouteFound                    uint64 = 1 << 8  // NR
	FlagDownstreamConnectionTermination uint64 = 1 << 14 // DC
	FlagStreamIdleTimeout               uint64 = 1 << 16 // SI
	FlagOverloadManager                 uint64 = 1 << 25 // OM
)

var flagNames = []struct {
	bit  uint64
	name string
}{
	{FlagFailedLocalHealthCheck, "LH"}, {FlagNoHealthyUpstream, "UH"}, {FlagUpstreamRequestTimeout, "UT"},
	{FlagLocalReset, "LR"}, {FlagUpstreamRemoteReset, "UR"}, {FlagUpstreamConnectionFailure, "UF"},
	{FlagUpstreamConnectionTermination, "UC"}, {FlagUpstreamOverflow, "UO"}, {FlagNoRouteFound, "NR"},
	{FlagDownstreamConnectionTermination, "DC"}, {FlagStreamIdleTimeout, "SI"}, {FlagOverloadManager, "OM"},
}

// FlagString prints flags as %RESPONSE_FLAGS% does: short names joined
// by commas, "-" for none; bits without a name here print in hex.
func FlagString(flags uint64) string {
	var out []string
	for _, f := range flagNames {
		if flags&f.bit != 0 {
			out = append(out, f.name)
			flags &^= f.bit
		}
	}
	if flags != 0 {
		out = append(out, "0x"+strconv.FormatUint(flags, 16))
	}
	if len(out) == 0 {
		return "-"
	}
	return strings.Join(out, ",")
}

// RouterReply is an answer Envoy's router gives itself instead of the
// upstream's: no route, a direct response, no healthy host. Like Envoy's,
// it goes through the encoder filters.
type RouterReply struct {
	Status  int
	Body    string
	Details string // %RESPONSE_CODE_DETAILS%, e.g. "no_healthy_upstream"
	Flags   uint64
}

// UpstreamFailure is a failed exchange with the upstream host, in Envoy's
// words (Envoy 1.31 and later): Reason is the stream reset reason
// ("remote connection failure", "connection timeout", "connection
// termination"), TransportFailure the socket's ("delayed connect error:
// Connection refused"), which Envoy reports as
// upstream.transport_failure_reason.
type UpstreamFailure struct {
	Reason           string
	TransportFailure string
	Flags            uint64
}

// Details is Envoy's response code details for the failure, whitespace
// turned to underscores as Envoy does for every details string.
func (f UpstreamFailure) Details(started bool) string {
	d := "upstream_reset_before_response_started{"
	if started {
		d = "upstream_reset_after_response_started{"
	}
	d += f.Reason
	if f.TransportFailure != "" {
		d += "|" + f.TransportFailure
	}
	return strings.Join(strings.Fields(d+"}"), "_")
}

// Body is the text of Envoy's 503 for a failure before the response began.
func (f UpstreamFailure) Body() string {
	b := "upstream connect error or disconnect/reset before headers. reset reason: " + f.Reason
	if f.TransportFailure != "" {
		b += ", transport failure reason: " + f.TransportFailure
	}
	return b
}

// routerLink ties an upstream handler's request to its stream, so that the
// handler (the gateway's router) can report what Envoy's router knows.
type routerLink struct {
	s *Stream
	w *upstreamWriter
}

type routerKey struct{}

func withRouterLink(ctx context.Context, l *routerLink) context.Context {
	return context.WithValue(ctx, routerKey{}, l)
}

func linkOf(r *http.Request) *routerLink {
	l, _ := r.Context().Value(routerKey{}).(*routerLink)
	return l
}

// ReplyFromRouter answers r, a request the engine gave its upstream
// handler, with the router's own reply; the handler then returns without
// writing. It reports false if r did not come from a stream (the caller
// answers it itself) or the handler had already begun a response.
func ReplyFromRouter(r *http.Request, rr RouterReply) bool {
	l := linkOf(r)
	if l == nil || l.w.wroteHeader {
		return false
	}
	l.w.replied = true
	s := l.s
	s.w.post(func() {
		// A filter's reply may have come first: then the router's flags
		// do not apply either.
		if !s.finished && !s.encodeStarted {
			s.flags |= rr.Flags
			s.sendLocalReply(&localReply{status: rr.Status, body: []byte(rr.Body), details: rr.Details, by: "router"})
		}
	})
	return true
}

// FailFromRouter reports that the exchange for r failed: before the
// response began, the router answers 503 as Envoy's does; after, the stream
// is reset. The handler then returns without writing. It reports false if
// r did not come from a stream.
func FailFromRouter(r *http.Request, f UpstreamFailure) bool {
	l := linkOf(r)
	if l == nil {
		return false
	}
	l.w.replied = true
	l.s.upstreamFailed(f, l.w)
	return true
}

// upstreamFailed runs on the handler goroutine, which owns w.
func (s *Stream) upstreamFailed(f UpstreamFailure, w *upstreamWriter) {
	started, host := w.headersSent, w.upstreamHost
	s.w.post(func() {
		s.upstreamHost = host
		switch {
		case s.finished:
			return
		case !started && !s.encodeStarted:
			s.flags |= f.Flags
			s.transportFailure = f.TransportFailure
			s.sendLocalReply(&localReply{status: 503, body: []byte(f.Body()), details: f.Details(false), by: "router"})
		case s.fromUpstream:
			s.flags |= f.Flags
			s.transportFailure = f.TransportFailure
			s.reset(f.Details(true))
		}
	})
}

// SetUpstreamHost records the host the router picked for r: the
// upstream.address and upstream.port attributes, which the filters see
// with the response (or the failure).
func SetUpstreamHost(r *http.Request, address string) {
	if l := linkOf(r); l != nil {
		l.w.upstreamHost = address
	}
}
