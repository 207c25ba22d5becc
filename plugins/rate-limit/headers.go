package main

import (
	"strconv"
	"unicode/utf8"
)

// appendHeaders appends the rate limit headers of format f describing v
// (over the limits ls) to h.
//
//	x-ratelimit: X-RateLimit-Limit: 100, X-RateLimit-Remaining: 42, X-RateLimit-Reset: 6
//	ietf:        RateLimit-Policy: "minute";q=100;w=60, "hour";q=1000;w=3600
//	             RateLimit: "minute";r=42;t=6
//
// Limit, remaining and reset are the tightest bucket's (verdict.tightest);
// reset is the whole seconds until it is full again. RateLimit-Policy
// lists every limit, as the IETF draft (draft-ietf-httpapi-ratelimit-headers)
// intends; w is the seconds an empty bucket takes to fill.
func appendHeaders(h [][2]string, f headerFormat, ls []limit, v *verdict) [][2]string {
	if f == headersNone {
		return h
	}
	l := &ls[v.tightest]
	reset := strconv.FormatInt(seconds(v.reset), 10)
	remaining := strconv.FormatInt(v.remaining, 10)
	if f == headersXRateLimit || f == headersBoth {
		h = append(h,
			[2]string{"x-ratelimit-limit", strconv.FormatInt(l.maxTokens, 10)},
			[2]string{"x-ratelimit-remaining", remaining},
			[2]string{"x-ratelimit-reset", reset})
	}
	if f == headersIETF || f == headersBoth {
		var b []byte
		for i := range ls {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = strconv.AppendQuote(b, ls[i].name) // names are plain ASCII (validName)
			b = append(b, ";q="...)
			b = strconv.AppendInt(b, ls[i].maxTokens, 10)
			b = append(b, ";w="...)
			b = strconv.AppendInt(b, ls[i].windowSecs, 10)
		}
		h = append(h, [2]string{"ratelimit-policy", string(b)})
		h = append(h, [2]string{"ratelimit", strconv.Quote(l.name) + ";r=" + remaining + ";t=" + reset})
	}
	return h
}

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced by U+FFFD.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+n]...)
		}
		i += n
	}
	return append(dst, '"')
}
