package reply

import (
	"strconv"

	"github.com/concierge-wasm/concierge/shared/config"
	"github.com/concierge-wasm/concierge/shared/jsonenc"
)

// Format is the shape of denial bodies, chosen by the `error_format` option.
type Format uint8

const (
	// JSON is {"error": …, "requestId": …}, the default.
	JSON Format = iota
	// Problem is RFC 9457 problem details.
	Problem
)

// DefaultRequestIDHeader is where Envoy's HTTP connection manager and the
// request-id filter put the request ID.
const DefaultRequestIDHeader = "x-request-id"

// ParseFormat reads the `error_format` option ("json" or "problem+json").
func ParseFormat(o *config.Object) Format {
	if o.Enum("error_format", "json", "json", "problem+json") == "problem+json" {
		return Problem
	}
	return JSON
}

// String is the option value that selects f.
func (f Format) String() string {
	if f == Problem {
		return "problem+json"
	}
	return "json"
}

// ContentType is the media type of a body in format f.
func (f Format) ContentType() string {
	if f == Problem {
		return "application/problem+json"
	}
	return "application/json"
}

// AppendBody appends the body of a denial to dst. reason is the short,
// client-safe explanation ("missing bearer token"); it must never carry the
// credential itself. Any bytes in reason or requestID yield valid JSON.
func AppendBody(dst []byte, f Format, status int, reason, requestID string) []byte {
	if f == Problem {
		dst = append(dst, `{"type":"about:blank",`...)
		if title := StatusText(status); title != "" {
			dst = append(dst, `"title":`...)
			dst = jsonenc.AppendString(dst, title)
			dst = append(dst, ',')
		}
		dst = append(dst, `"status":`...)
		dst = strconv.AppendInt(dst, int64(status), 10)
		dst = append(dst, `,"detail":`...)
	} else {
		dst = append(dst, `{"error":`...)
	}
	dst = jsonenc.AppendString(dst, reason)
	dst = append(dst, `,"requestId":`...)
	dst = jsonenc.AppendString(dst, requestID)
	return append(dst, '}')
}

// Headers lists the headers of a denial: content-type, the request ID
// echoed under idHeader (when there is one), then extra (WWW-Authenticate,
// Retry-After…) in the order given. extra must not set content-type.
func Headers(f Format, idHeader, requestID string, extra ...[2]string) [][2]string {
	h := make([][2]string, 0, len(extra)+2)
	h = append(h, [2]string{"content-type", f.ContentType()})
	if requestID != "" {
		h = append(h, [2]string{idHeader, requestID})
	}
	return append(h, extra...)
}

// Replier sends one filter's denials.
type Replier struct {
	Format Format
	// RequestIDHeader is the request header that carries the request ID,
	// echoed under the same name in the reply; "" means
	// DefaultRequestIDHeader.
	RequestIDHeader string
}

func (r Replier) idHeader() string {
	if r.RequestIDHeader == "" {
		return DefaultRequestIDHeader
	}
	return r.RequestIDHeader
}
