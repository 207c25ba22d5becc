package hosttest

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/proto"

	"github.com/concierge-wasm/concierge/hosttest/internal/engine"
)

// Request is a request a test sends; build it with GET, POST or
// NewRequest and chain the setters.
type Request struct {
	method, path, authority, scheme string
	headers                         []Pair
	body                            [][]byte
	trailers                        []Pair
	disabled                        map[string]bool
	attrs                           map[string][]byte
	timeout                         time.Duration
	upstream                        http.Handler
	source                          string
	metadata                        map[string]*corev3.Metadata // by attribute: xds.route_metadata
}

// NewRequest starts a request with the pseudo-headers Envoy gives filters.
func NewRequest(method, path string) *Request {
	return &Request{method: method, path: path, authority: "localhost", scheme: "http"}
}

// GET is NewRequest("GET", path).
func GET(path string) *Request { return NewRequest(http.MethodGet, path) }

// POST is NewRequest("POST", path) with a body.
func POST(path, body string) *Request { return NewRequest(http.MethodPost, path).Body([]byte(body)) }

// Header appends a request header (keys are lower-cased, as in Envoy).
func (r *Request) Header(key, value string) *Request {
	r.headers = append(r.headers, Pair{Key: strings.ToLower(key), Value: value})
	return r
}

// Host sets :authority.
func (r *Request) Host(authority string) *Request { r.authority = authority; return r }

// Body sets the body, sent as one frame.
func (r *Request) Body(b []byte) *Request { r.body = [][]byte{b}; return r }

// BodyChunks sets the body, sent as one frame per chunk.
func (r *Request) BodyChunks(chunks ...[]byte) *Request { r.body = chunks; return r }

// Trailer appends a request trailer.
func (r *Request) Trailer(key, value string) *Request {
	r.trailers = append(r.trailers, Pair{Key: strings.ToLower(key), Value: value})
	return r
}

// Disable switches a filter off for this request, as a route's
// typed_per_filter_config FilterConfig{disabled: true} does.
func (r *Request) Disable(filter string) *Request {
	if r.disabled == nil {
		r.disabled = map[string]bool{}
	}
	r.disabled[filter] = true
	return r
}

// Attribute sets an Envoy attribute for proxy_get_property by dotted path
// ("xds.cluster_name").
func (r *Request) Attribute(path string, value []byte) *Request {
	if r.attrs == nil {
		r.attrs = map[string][]byte{}
	}
	r.attrs[path] = value
	return r
}

// Route sets xds.route_name, as Envoy does for the matched route.
func (r *Request) Route(name string) *Request { return r.Attribute("xds.route_name", []byte(name)) }

// Source sets the downstream address (source.address).
func (r *Request) Source(addr string) *Request { r.source = addr; return r }

// Timeout sets the route timeout, measured on the host clock: the router
// answers 504 when the upstream has not answered in time.
func (r *Request) Timeout(d time.Duration) *Request { r.timeout = d; return r }

// Upstream answers this request instead of the host's upstream.
func (r *Request) Upstream(h http.Handler) *Request { r.upstream = h; return r }

func (r *Request) engineRequest() engine.Request {
	// Room for the pseudo-headers, the request's own and x-forwarded-proto.
	hs := make([]Pair, 0, 5+len(r.headers))
	hs = append(hs, Pair{Key: ":method", Value: r.method}, Pair{Key: ":path", Value: r.path},
		Pair{Key: ":authority", Value: r.authority}, Pair{Key: ":scheme", Value: r.scheme})
	hs = append(hs, r.headers...)
	if headerValue(r.headers, "x-forwarded-proto") == "" {
		hs = append(hs, Pair{Key: "x-forwarded-proto", Value: r.scheme})
	}
	var msgs map[string]proto.Message
	for attr, md := range r.metadata {
		if msgs == nil {
			msgs = map[string]proto.Message{}
		}
		msgs[attr] = md
	}
	return engine.Request{Headers: hs, Body: r.body, Trailers: r.trailers, Disabled: r.disabled,
		Attributes: r.attrs, Messages: msgs, Timeout: r.timeout, Upstream: r.upstream, Source: r.source}
}

func headerValue(pairs []Pair, key string) string {
	for _, p := range pairs {
		if p.Key == key {
			return p.Value
		}
	}
	return ""
}

func headerValues(pairs []Pair, key string) []string {
	var out []string
	key = strings.ToLower(key)
	for _, p := range pairs {
		if p.Key == key {
			out = append(out, p.Value)
		}
	}
	return out
}

// Response is what the client received.
type Response struct {
	Status   int
	Headers  []Pair
	Body     []byte
	Chunks   int // body frames the client received
	Trailers []Pair
	// LocalReplyBy names the filter that answered without the upstream
	// ("router" for Envoy's own answers such as a route timeout,
	// "connection_manager" for a buffered body over the buffer limit).
	LocalReplyBy string
	// Details is Envoy's %RESPONSE_CODE_DETAILS%: "via_upstream", the
	// details a filter gave its local reply, "wasm_fail_stream", ...
	Details string
	// Upstream is what the upstream received, nil if it was never called.
	Upstream *UpstreamRequest
	Reset    bool // the stream was reset instead of answered
	// Flags are Envoy's response flags (%RESPONSE_FLAGS%, the
	// response.flags attribute): Flags.String() gives "UT", "UF,UC", "-".
	Flags  ResponseFlags
	Worker int // the worker that served it
}

// ResponseFlags is the bitmask of Envoy's response flags.
type ResponseFlags uint64

// String lists the flags by Envoy's short names, comma-separated, or "-"
// for none, as %RESPONSE_FLAGS% prints them.
func (f ResponseFlags) String() string { return engine.FlagString(uint64(f)) }

// Header returns the first value of a response header.
func (r *Response) Header(key string) string { return headerValue(r.Headers, strings.ToLower(key)) }

// HeaderValues returns every value of a response header.
func (r *Response) HeaderValues(key string) []string { return headerValues(r.Headers, key) }

// Trailer returns the first value of a response trailer.
func (r *Response) Trailer(key string) string { return headerValue(r.Trailers, strings.ToLower(key)) }

// String summarises the response for failure messages.
func (r *Response) String() string {
	by := "upstream"
	if r.LocalReplyBy != "" {
		by = "local reply by " + r.LocalReplyBy
	}
	return fmt.Sprintf("%d (%s, %s) body %q", r.Status, by, r.Details, truncate(string(r.Body), 200))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// UpstreamRequest is what the upstream received after the filters.
type UpstreamRequest struct {
	Headers  []Pair
	Body     []byte
	Trailers []Pair
}

// Header returns the first value of a header the upstream received.
func (u *UpstreamRequest) Header(key string) string {
	return headerValue(u.Headers, strings.ToLower(key))
}

// HeaderValues returns every value of a header the upstream received.
func (u *UpstreamRequest) HeaderValues(key string) []string { return headerValues(u.Headers, key) }

// Has reports whether the upstream received the header at all.
func (u *UpstreamRequest) Has(key string) bool { return len(headerValues(u.Headers, key)) > 0 }

// Path is the :path the upstream received.
func (u *UpstreamRequest) Path() string { return u.Header(":path") }

func newResponse(res engine.Result) *Response {
	// The response and what the upstream received in one allocation.
	both := &struct {
		r Response
		u UpstreamRequest
	}{}
	r := &both.r
	*r = Response{Status: res.Status, Headers: res.Headers, Body: res.Body, Chunks: res.Chunks, Trailers: res.Trailers,
		LocalReplyBy: res.LocalReplyBy, Details: res.Details, Reset: res.Reset, Flags: ResponseFlags(res.Flags), Worker: res.Worker}
	if res.Upstream != nil {
		both.u = UpstreamRequest{Headers: res.Upstream.Headers, Body: res.Upstream.Body, Trailers: res.Upstream.Trailers}
		r.Upstream = &both.u
	}
	return r
}

// Stream drives one request step by step: send the headers, then body
// frames and trailers as the test chooses, and wait for the response
// while advancing the clock or answering callouts in between.
type Stream struct {
	h *Host
	s *engine.Stream
	r *Request
}

// SendHeaders sends the request headers; endOfStream is implied when the
// request has no body and no trailers.
func (s *Stream) SendHeaders() *Stream { s.s.SendHeaders(); return s }

// SendBody sends one body frame.
func (s *Stream) SendBody(chunk []byte, endOfStream bool) *Stream {
	s.s.SendData(chunk, endOfStream)
	return s
}

// SendTrailers ends the request with the request's trailers.
func (s *Stream) SendTrailers() *Stream { s.s.SendTrailers(); return s }

// Reset hangs up as a client would: the filters get their access-log and
// teardown callbacks, response.flags gets DC, and the details become
// "downstream_remote_disconnect" unless the stream had others. It returns
// what the client had received.
func (s *Stream) Reset() *Response {
	res, ok := s.s.Reset("downstream_remote_disconnect")
	if !ok {
		s.h.t.Errorf("hosttest: resetting %s %s: worker %d is stuck inside a callback", s.r.method, s.r.path, res.Worker)
	}
	return newResponse(res)
}

// Complete reports whether the response has been fully received.
func (s *Stream) Complete() bool {
	select {
	case <-s.s.Done():
		return true
	default:
		return false
	}
}

// Holder says which filter holds the stream, e.g. `request paused by
// filter "jwt-auth" at headers`.
func (s *Stream) Holder() string { return s.s.Describe() }

// Wait waits up to d (real time) for the response; a stream still open is
// reset and ok is false.
func (s *Stream) Wait(d time.Duration) (resp *Response, ok bool) {
	res, ok := s.s.Wait(d)
	return newResponse(res), ok
}

func pseudoUUID(e *engine.Host) string {
	var b [16]byte
	e.ReadRandom(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
