package main

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// accessLogEntry is what one access-log line says about a finished stream.
type accessLogEntry struct {
	requestID string
	method    string
	path      string // :path as received, query included
	status    int    // response status; 0 when there was no response
	duration  time.Duration
	bytes     int64 // response body bytes sent downstream
	shadow    bool  // shadow mode: the filter decided but changed nothing
}

// maxLoggedPath is how much of a path goes into a log line; longer paths are
// cut and the line gets path_truncated=true.
const maxLoggedPath = 1024

// appendAccessLog appends the one-line access log for e, logfmt style:
//
//	request_id=0191e3c4-... method=GET path="/api/users?id=1" status=200 duration_ms=1.234 bytes=512
//
// Two flags follow when they apply: path_truncated=true (see maxLoggedPath)
// and shadow=true (the filter ran in shadow mode and changed nothing).
//
// Keys are fixed and always present, in this order, so `grep request_id=ID`
// finds a stream and `awk`/logfmt parsers read the rest. A value is written
// bare when it is non-empty printable ASCII without space, quote, backslash
// or '='; otherwise it is double-quoted with Go escapes (\n, \r, \", \\,
// \xNN for bytes that are not UTF-8, \u for non-printable runes), so no
// input can end the line or forge another key. When to quote follows logfmt
// (github.com/go-logfmt/logfmt), so a path with a query string is quoted; the
// escapes are Go's (strconv.Unquote reverses them), which unlike JSON's also
// escape every non-printable rune (C1 controls, bidi overrides, U+2028).
func appendAccessLog(dst []byte, e accessLogEntry) []byte {
	dst = append(dst, "request_id="...)
	dst = appendLogValue(dst, e.requestID)
	dst = append(dst, " method="...)
	dst = appendLogValue(dst, e.method)
	dst = append(dst, " path="...)
	path, truncated := e.path, false
	if len(path) > maxLoggedPath {
		path, truncated = path[:maxLoggedPath], true
	}
	dst = appendLogValue(dst, path)
	dst = append(dst, " status="...)
	dst = strconv.AppendInt(dst, int64(e.status), 10)
	dst = append(dst, " duration_ms="...)
	dst = appendMillis(dst, e.duration)
	dst = append(dst, " bytes="...)
	dst = strconv.AppendInt(dst, max(e.bytes, 0), 10)
	if truncated {
		dst = append(dst, " path_truncated=true"...)
	}
	if e.shadow {
		dst = append(dst, " shadow=true"...)
	}
	return dst
}

// formatAccessLog returns the access-log line for e (see appendAccessLog).
func formatAccessLog(e accessLogEntry) string {
	var b [256]byte
	return string(appendAccessLog(b[:0], e))
}

// appendLogValue appends v bare or quoted (see appendAccessLog).
func appendLogValue(dst []byte, v string) []byte {
	if v == "" {
		return append(dst, '"', '"')
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c <= ' ' || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '=' || c == 0x7f {
			return strconv.AppendQuote(dst, v)
		}
	}
	return append(dst, v...)
}

// appendMillis appends d in milliseconds with three decimals (microsecond
// precision), e.g. 1.234; negative durations are written as 0.000.
func appendMillis(dst []byte, d time.Duration) []byte {
	us := max(d.Microseconds(), 0)
	dst = strconv.AppendInt(dst, us/1000, 10)
	frac := us % 1000
	return append(dst, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
}
