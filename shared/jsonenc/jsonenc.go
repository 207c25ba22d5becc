// Package jsonenc writes the few JSON strings concierge builds by hand
// (denial bodies, the identity property), so that they are valid JSON
// whatever a client or token put into them.
//
// gjson.AppendJSONString would do, but its HTML escaping is a process-wide
// switch, and exact bytes matter here: tests pin bodies, and the identity
// encoding is compared across filters.
package jsonenc

import "unicode/utf8"

const hex = "0123456789abcdef"

// AppendString appends s to dst as a JSON string. Control characters are
// escaped, invalid UTF-8 becomes U+FFFD (a JSON text must be UTF-8,
// RFC 8259 §8.1), and U+2028/U+2029 are escaped for readers that treat JSON
// as JavaScript. Everything else is copied as is.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = AppendStringContent(dst, s)
	return append(dst, '"')
}

// AppendStringContent appends s escaped as AppendString does, without the
// quotes: for a value written into a JSON template whose quotes are
// already there. StringContentLen gives its length beforehand.
func AppendStringContent(dst []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\ufffd"...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(dst, s[start:]...)
}

// StringContentLen is len(AppendStringContent(nil, s)), without writing
// it: the length of a body can be announced before it is built.
func StringContentLen(s string) int {
	n := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c >= 0x20 && c != '"' && c != '\\':
				n++
			case c == '"', c == '\\', c == '\n', c == '\r', c == '\t':
				n += 2
			default:
				n += 6
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			n += len("\ufffd")
		case r == '\u2028' || r == '\u2029':
			n += 6
		default:
			n += size
		}
		i += size
	}
	return n
}
