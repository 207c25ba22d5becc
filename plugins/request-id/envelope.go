package main

import (
	"github.com/concierge-wasm/concierge/shared/jsonenc"

	"strings"
	"time"
	"unicode/utf8"
)

// The JSON envelope: a response body B that qualifies becomes
//
//	{"requestId":"<id>","timestamp":"2026-11-27T04:40:18.123Z","data":B}
//
// with configurable field names. Everything here is plain Go: the wiring
// asks decide at response headers, then feeds body chunks to an
// envelopeStream.

// Defaults of the "envelope" configuration object.
const (
	defaultMaxBodyBytes   = 1 << 20 // 1 MiB
	defaultFieldRequestID = "requestId"
	defaultFieldTimestamp = "timestamp"
	defaultFieldData      = "data"
	defaultContentType    = "application/json"
)

// maxEnvelopeDepth is the deepest nesting of arrays and objects in a body
// that is wrapped. encoding/json (and so json.Valid) accepts at most 10000
// levels; the envelope adds one, so a wrapped body stays acceptable to it.
const maxEnvelopeDepth = 9999

// timestampLen is the length of the envelope timestamp,
// "2006-01-02T15:04:05.000Z".
const timestampLen = 24

// envelopeFields are the names of the three envelope fields.
type envelopeFields struct {
	requestID string
	timestamp string
	data      string
}

// envelopeConfig is the parsed "envelope" object. Build it with
// defaultEnvelopeConfig or parseEnvelope, which also precompute the JSON
// fragments; a zero envelopeConfig wraps nothing.
type envelopeConfig struct {
	enabled      bool
	contentTypes []string // lowercase media types, no parameters
	maxBodyBytes int
	statuses     []int // nil: every status
	fields       envelopeFields

	// JSON fragments around the request ID, timestamp and data, with the
	// field names escaped: open+ID+mid+timestamp+tail+data+"}".
	open, mid, tail string
}

// defaultEnvelopeConfig returns the envelope configuration used when the
// configuration has no "envelope" object: disabled, application/json, 1 MiB,
// every status, fields requestId/timestamp/data.
func defaultEnvelopeConfig() envelopeConfig {
	e := envelopeConfig{
		contentTypes: []string{defaultContentType},
		maxBodyBytes: defaultMaxBodyBytes,
		fields: envelopeFields{
			requestID: defaultFieldRequestID,
			timestamp: defaultFieldTimestamp,
			data:      defaultFieldData,
		},
	}
	e.compile()
	return e
}

// compile precomputes the JSON fragments from the field names.
func (e *envelopeConfig) compile() {
	b := make([]byte, 0, 32+len(e.fields.requestID)+len(e.fields.timestamp)+len(e.fields.data))
	b = append(b, '{')
	b = jsonenc.AppendString(b, e.fields.requestID)
	b = append(b, ':', '"')
	e.open = string(b)
	b = append(b[:0], '"', ',')
	b = jsonenc.AppendString(b, e.fields.timestamp)
	b = append(b, ':', '"')
	e.mid = string(b)
	b = append(b[:0], '"', ',')
	b = jsonenc.AppendString(b, e.fields.data)
	b = append(b, ':')
	e.tail = string(b)
}

// prefixLen is the length of everything before the data for requestID.
func (e *envelopeConfig) prefixLen(requestID string) int {
	return len(e.open) + jsonenc.StringContentLen(requestID) + len(e.mid) + timestampLen + len(e.tail)
}

// appendPrefix appends everything that comes before the data.
func (e *envelopeConfig) appendPrefix(dst []byte, requestID string, now time.Time) []byte {
	dst = append(dst, e.open...)
	dst = jsonenc.AppendStringContent(dst, requestID)
	dst = append(dst, e.mid...)
	dst = appendTimestamp(dst, now)
	return append(dst, e.tail...)
}

// Reasons decide gives for not wrapping a response (for debug logs and
// metrics labels).
const (
	skipDisabled          = "disabled"
	skipHead              = "head request"
	skipNoBodyStatus      = "status without body"
	skipStatus            = "status not selected"
	skipNoContentType     = "no content-type"
	skipContentType       = "content-type not selected"
	skipContentEncoding   = "content-encoding"
	skipTooLarge          = "content-length over max_body_bytes"
	skipBadContentLength  = "invalid content-length"
	skipMultipleHeaderCTs = "multiple content-type headers"
	skipTrailers          = "trailers announced"
)

// envelopeDecision is what decide found out from the response headers.
type envelopeDecision struct {
	wrap          bool   // feed the body to an envelopeStream
	reason        string // why not, when !wrap
	contentLength int64  // the content-length header, -1 when absent
}

// decide says whether a response may get an envelope, from what is known at
// response headers: the request method, the response status and headers
// (names compared case-insensitively; values as sent). It never looks at
// the body; an envelopeStream makes the final call at end of stream.
//
// A response is skipped when the envelope is disabled; the request was
// HEAD; the status carries no body (1xx, 204, 205, 304, RFC 9110 §6.4.1) or
// is not in statuses; the content-type is absent, repeated or its media type
// (parameters ignored, case-insensitive) is not in content_types; any
// content-encoding other than identity is present; content-length is over
// max_body_bytes or malformed; or a "trailer" header announces trailers.
//
// When wrap is true the wiring must remove content-length from the response
// headers (the body length changes, and it cannot be known before the end
// of the body).
func (e *envelopeConfig) decide(method string, status int, headers [][2]string) envelopeDecision {
	d := envelopeDecision{contentLength: -1}
	switch {
	case !e.enabled || e.open == "":
		d.reason = skipDisabled
		return d
	case method == "HEAD":
		d.reason = skipHead
		return d
	case status < 200 || status == 204 || status == 205 || status == 304:
		d.reason = skipNoBodyStatus
		return d
	case !e.statusSelected(status):
		d.reason = skipStatus
		return d
	}
	var contentType string
	contentTypes := 0
	for _, h := range headers {
		name, value := h[0], h[1]
		// Switch on the length first: most headers are skipped without a
		// string comparison.
		switch len(name) {
		case len("content-type"):
			if !strings.EqualFold(name, "content-type") {
				continue
			}
			contentType = value
			contentTypes++
		case len("content-encoding"):
			if strings.EqualFold(name, "content-encoding") && !identityEncoding(value) {
				d.reason = skipContentEncoding
				return d
			}
		case len("trailer"):
			// Announced trailers: the end of the body would come without
			// end of stream, and held bytes could not be put back then.
			if strings.EqualFold(name, "trailer") {
				d.reason = skipTrailers
				return d
			}
		case len("content-length"):
			if !strings.EqualFold(name, "content-length") {
				continue
			}
			n, ok := parseContentLength(value)
			if !ok || (d.contentLength >= 0 && d.contentLength != n) {
				d.reason = skipBadContentLength
				return d
			}
			d.contentLength = n
		}
	}
	switch {
	case contentTypes == 0:
		d.reason = skipNoContentType
		return d
	case contentTypes > 1:
		d.reason = skipMultipleHeaderCTs
		return d
	case !e.contentTypeSelected(contentType):
		d.reason = skipContentType
		return d
	case d.contentLength > int64(e.maxBodyBytes):
		d.reason = skipTooLarge
		return d
	}
	d.wrap = true
	return d
}

func (e *envelopeConfig) statusSelected(status int) bool {
	if e.statuses == nil {
		return true
	}
	for _, s := range e.statuses {
		if s == status {
			return true
		}
	}
	return false
}

// contentTypeSelected matches the media type of a content-type value
// ("Application/JSON; charset=utf-8" → application/json) against the
// configured list, which parseEnvelope keeps lowercase.
func (e *envelopeConfig) contentTypeSelected(value string) bool {
	mediaType := value
	if i := strings.IndexByte(mediaType, ';'); i >= 0 {
		mediaType = mediaType[:i]
	}
	mediaType = strings.Trim(mediaType, " \t")
	for _, ct := range e.contentTypes {
		if strings.EqualFold(mediaType, ct) {
			return true
		}
	}
	return false
}

// identityEncoding reports whether a content-encoding value lists no coding
// other than identity ("", "identity", "identity, identity").
func identityEncoding(value string) bool {
	for value != "" {
		coding := value
		if i := strings.IndexByte(value, ','); i >= 0 {
			coding, value = value[:i], value[i+1:]
		} else {
			value = ""
		}
		coding = strings.Trim(coding, " \t")
		if coding != "" && !strings.EqualFold(coding, "identity") {
			return false
		}
	}
	return true
}

// parseContentLength parses a content-length value: 1 to 18 decimal digits.
func parseContentLength(s string) (int64, bool) {
	s = strings.Trim(s, " \t")
	if len(s) == 0 || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// wrap appends to dst the envelope of body and reports true, when body is
// valid JSON (validJSONBody); otherwise it returns dst unchanged and false.
// Whitespace around body is dropped. It does not check max_body_bytes.
func (e *envelopeConfig) wrap(dst, body []byte, requestID string, now time.Time) ([]byte, bool) {
	if e.open == "" || !validJSONBody(body) {
		return dst, false
	}
	body = trimJSONSpace(body)
	if dst == nil {
		dst = make([]byte, 0, e.prefixLen(requestID)+len(body)+1)
	}
	dst = e.appendPrefix(dst, requestID, now)
	dst = append(dst, body...)
	return append(dst, '}'), true
}

// validJSONBody reports whether body is JSON the envelope may embed: a
// single JSON value of any type with optional whitespace around it, valid
// UTF-8 (RFC 8259 §8.1), and nested at most maxEnvelopeDepth deep.
func validJSONBody(body []byte) bool {
	return utf8.Valid(body) && validJSON(body, maxEnvelopeDepth)
}

func isJSONSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r'
}

// trimJSONSpace returns b without leading and trailing JSON whitespace.
func trimJSONSpace(b []byte) []byte {
	i, j := 0, len(b)
	for i < j && isJSONSpace(b[i]) {
		i++
	}
	for j > i && isJSONSpace(b[j-1]) {
		j--
	}
	return b[i:j]
}

// bodyAction tells the wiring what to do with the body chunk it just passed
// to envelopeStream.write.
type bodyAction uint8

const (
	// bodyPass: leave this chunk as it is.
	bodyPass bodyAction = iota
	// bodyHold: the stream keeps a copy; replace this chunk with nothing.
	bodyHold
	// bodyPrepend: the limit was exceeded; emit out before this chunk (the
	// bytes held so far, unchanged) and leave the chunk as it is. Every
	// later chunk gets bodyPass.
	bodyPrepend
	// bodyReplace: end of stream; replace this chunk with out (the
	// enveloped body, or the held bytes and this chunk unchanged).
	bodyReplace
)

func (a bodyAction) String() string {
	switch a {
	case bodyPass:
		return "pass"
	case bodyHold:
		return "hold"
	case bodyPrepend:
		return "prepend"
	case bodyReplace:
		return "replace"
	}
	return "unknown"
}

// Stream states.
const (
	streamIdle      = iota // start not called: everything passes
	streamBuffering        // holding the body
	streamPassing          // limit exceeded or finished: everything passes
)

// envelopeStream accumulates one response body arriving in chunks, for one
// HTTP stream. It never holds more than max_body_bytes of body: the chunk
// that would go over the limit makes it give back what it holds (bodyPrepend)
// and pass everything from then on. At end of stream it wraps the body if it
// is valid JSON, or gives the original bytes back unchanged.
//
// The body is stored after room reserved for the envelope prefix, so
// wrapping writes the prefix in front of it and a closing brace after it
// without copying the body: one allocation per stream (exact when the
// content-length is known).
type envelopeStream struct {
	env     *envelopeConfig
	id      string
	buf     []byte // buf[:head] is reserved; the body is buf[head:]
	head    int
	hint    int // expected body size, from content-length
	state   uint8
	wrapped bool // the body was wrapped (set at end of stream)
	// budget, when set, is shared by every stream of the VM: buf's
	// capacity is taken from it before buf grows (reserved) and given back
	// when the stream lets buf go. A chunk the budget has no room for makes
	// the stream give back what it holds and pass everything, as a body
	// over max_body_bytes does (overBudget).
	budget     *heldBudget
	reserved   int
	overBudget bool
}

// heldBudget is max_buffered_bytes: the body bytes all envelope streams of
// one plugin instance (one VM, one worker) may hold at once.
type heldBudget struct{ limit, used int }

func (b *heldBudget) take(n int) bool {
	if b.used+n > b.limit {
		return false
	}
	b.used += n
	return true
}

func (b *heldBudget) give(n int) { b.used -= n }

// done reports whether the stream has made its final call: it wrapped the
// body, gave it back unchanged, or passes everything. A stream that was
// never started is not done.
func (s *envelopeStream) done() bool { return s.state == streamPassing }

// didWrap reports whether the stream wrapped the body.
func (s *envelopeStream) didWrap() bool { return s.wrapped }

// start prepares s for a response that decide chose to wrap: env (which must
// outlive the stream), the request ID that goes into the envelope, and the
// content-length (-1 when unknown) as a size hint.
func (s *envelopeStream) start(env *envelopeConfig, requestID string, contentLength int64) {
	if env == nil || env.open == "" {
		*s = envelopeStream{} // not compiled: pass everything
		return
	}
	*s = envelopeStream{env: env, id: requestID, state: streamBuffering}
	s.head = env.prefixLen(requestID)
	switch {
	case contentLength >= 0 && contentLength <= int64(env.maxBodyBytes):
		s.hint = int(contentLength)
	default:
		// Unknown length: start small (or at the first chunk's size) and
		// double, up to the limit.
		s.hint = min(env.maxBodyBytes, 4<<10)
	}
}

// write takes the next chunk of the body; eos marks the last one (it may be
// empty). now is the time written into the envelope, read only when it wraps.
// out is a buffer the stream has let go of (never chunk itself); the wiring
// copies it into the host and drops it. See bodyAction for what the wiring
// does with the chunk.
func (s *envelopeStream) write(chunk []byte, eos bool, now time.Time) (bodyAction, []byte) {
	if s.state != streamBuffering {
		return bodyPass, nil
	}
	held := len(s.buf) - s.head
	if s.buf == nil {
		held = 0
	}
	if held+len(chunk) > s.env.maxBodyBytes {
		return s.giveUp()
	}
	if eos {
		if held == 0 {
			// The whole body is this chunk: no copy unless it is wrapped.
			s.state = streamPassing
			s.buf = nil
			out, ok := s.env.wrap(nil, chunk, s.id, now)
			if !ok {
				return bodyPass, nil
			}
			s.wrapped = true
			return bodyReplace, out
		}
		if !s.append(chunk) {
			s.overBudget = true
			return s.giveUp()
		}
		s.state = streamPassing
		return bodyReplace, s.finish(now)
	}
	if len(chunk) > 0 && !s.append(chunk) {
		s.overBudget = true
		return s.giveUp()
	}
	return bodyHold, nil
}

// giveUp stops holding: the bytes held so far go out in front of the
// current chunk, and everything after passes.
func (s *envelopeStream) giveUp() (bodyAction, []byte) {
	s.state = streamPassing
	out := s.release()
	if len(out) == 0 {
		return bodyPass, nil
	}
	return bodyPrepend, out
}

// unreserve gives buf's capacity back to the budget.
func (s *envelopeStream) unreserve() {
	if s.budget != nil {
		s.budget.give(s.reserved)
	}
	s.reserved = 0
}

// flush gives back the bytes held so far, unchanged, and makes the stream
// pass everything from now on: for a body that cannot be finished (response
// trailers arrived without being announced, the stream was reset).
func (s *envelopeStream) flush() []byte {
	if s.state != streamBuffering {
		return nil
	}
	s.state = streamPassing
	return s.release()
}

// release returns the held body bytes and forgets them.
func (s *envelopeStream) release() []byte {
	s.unreserve()
	if s.buf == nil {
		return nil
	}
	out := s.buf[s.head:]
	s.buf = nil
	return out
}

// append adds chunk to the held body, growing buf at most to head +
// max_body_bytes + 1 (the closing brace). It reports false, holding
// nothing more, when the budget has no room for the growth.
func (s *envelopeStream) append(chunk []byte) bool {
	newCap := 0
	if s.buf == nil {
		newCap = s.head + max(s.hint, len(chunk)) + 1
	} else if need := len(s.buf) + len(chunk) + 1; need > cap(s.buf) {
		limit := s.head + s.env.maxBodyBytes + 1
		newCap = min(max(2*cap(s.buf), need), limit)
	}
	if newCap > 0 && s.budget != nil {
		// The old buffer stays live until it is copied: both count.
		if !s.budget.take(newCap) {
			return false
		}
		s.budget.give(s.reserved)
		s.reserved = newCap
	}
	switch {
	case s.buf == nil:
		s.buf = make([]byte, s.head, newCap)
	case newCap > 0:
		nb := make([]byte, len(s.buf), newCap)
		copy(nb, s.buf)
		s.buf = nb
	}
	s.buf = append(s.buf, chunk...)
	return true
}

// finish wraps the held body in place if it is valid JSON, or returns it
// unchanged.
func (s *envelopeStream) finish(now time.Time) []byte {
	s.unreserve()
	buf := s.buf
	s.buf = nil
	body := buf[s.head:]
	if !validJSONBody(body) {
		return body
	}
	s.wrapped = true
	i, j := 0, len(body)
	for i < j && isJSONSpace(body[i]) {
		i++
	}
	for j > i && isJSONSpace(body[j-1]) {
		j--
	}
	pos := s.head + i - s.env.prefixLen(s.id)
	if pos < 0 {
		// Unreachable: head is the prefix length. Never corrupt a body.
		out, _ := s.env.wrap(nil, body, s.id, now)
		return out
	}
	// The capacity of the slice ends where the body starts: were the prefix
	// longer than computed, append would reallocate rather than overwrite.
	if p := s.env.appendPrefix(buf[pos:pos:s.head+i], s.id, now); len(p) != s.head+i-pos || &p[0] != &buf[pos] {
		// Unreachable while prefixLen agrees with appendPrefix.
		out, _ := s.env.wrap(nil, body, s.id, now)
		return out
	}
	end := s.head + j
	if end < len(buf) {
		buf[end] = '}'
	} else {
		buf = append(buf, '}')
	}
	return buf[pos : end+1]
}

// appendTimestamp appends t in UTC as "2006-01-02T15:04:05.000Z", always
// 24 bytes (years outside 0000–9999 are clamped).
func appendTimestamp(dst []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	hour, minute, sec := t.Clock()
	year = min(max(year, 0), 9999)
	ms := t.Nanosecond() / 1e6
	var b [timestampLen]byte
	b[0] = byte('0' + year/1000)
	b[1] = byte('0' + year/100%10)
	b[2] = byte('0' + year/10%10)
	b[3] = byte('0' + year%10)
	b[4] = '-'
	put2(b[5:], int(month))
	b[7] = '-'
	put2(b[8:], day)
	b[10] = 'T'
	put2(b[11:], hour)
	b[13] = ':'
	put2(b[14:], minute)
	b[16] = ':'
	put2(b[17:], sec)
	b[19] = '.'
	b[20] = byte('0' + ms/100)
	b[21] = byte('0' + ms/10%10)
	b[22] = byte('0' + ms%10)
	b[23] = 'Z'
	return append(dst, b[:]...)
}

func put2(b []byte, v int) {
	b[0] = byte('0' + v/10)
	b[1] = byte('0' + v%10)
}
