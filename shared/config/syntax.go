package config

import (
	"fmt"
	"strconv"
	"unicode/utf8"
)

// maxDepth bounds nesting so that a hostile or broken configuration cannot
// drive the recursive scanner (or gjson after it) arbitrarily deep.
const maxDepth = 1000

// checkSyntax reports whether data is exactly one JSON value (RFC 8259).
//
// gjson.Valid answers the same question with a bare bool, and gjson does not
// validate at all while reading. An operator who mistypes a brace in an Envoy
// YAML deserves the line and column, so this scanner exists only to produce
// that message; FuzzCheckSyntax keeps it in step with encoding/json.Valid.
func checkSyntax(data []byte) error {
	s := scanner{data: data}
	s.space()
	if !s.value(0) {
		return s.err
	}
	s.space()
	if s.i < len(s.data) {
		return s.fail("unexpected data after the top-level value")
	}
	return nil
}

type scanner struct {
	data []byte
	i    int
	err  error
}

func (s *scanner) fail(msg string) error {
	line, col := 1, 1
	for _, c := range s.data[:min(s.i, len(s.data))] {
		if c == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	s.err = fmt.Errorf("invalid JSON: line %d, column %d: %s", line, col, msg)
	return s.err
}

func (s *scanner) unexpected() bool {
	if s.i >= len(s.data) {
		s.fail("unexpected end of input")
	} else {
		r, _ := utf8.DecodeRune(s.data[s.i:])
		s.fail("unexpected " + strconv.QuoteRune(r))
	}
	return false
}

func (s *scanner) space() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) value(depth int) bool {
	if s.i >= len(s.data) {
		return s.unexpected()
	}
	switch c := s.data[s.i]; {
	case c == '{':
		return s.object(depth + 1)
	case c == '[':
		return s.array(depth + 1)
	case c == '"':
		return s.str()
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	}
	return s.unexpected()
}

func (s *scanner) object(depth int) bool {
	if depth > maxDepth {
		s.fail("nesting deeper than " + strconv.Itoa(maxDepth) + " levels")
		return false
	}
	s.i++ // '{'
	s.space()
	if s.i < len(s.data) && s.data[s.i] == '}' {
		s.i++
		return true
	}
	for {
		if s.i >= len(s.data) || s.data[s.i] != '"' {
			return s.unexpected()
		}
		if !s.str() {
			return false
		}
		s.space()
		if s.i >= len(s.data) || s.data[s.i] != ':' {
			return s.unexpected()
		}
		s.i++
		s.space()
		if !s.value(depth) {
			return false
		}
		s.space()
		if s.i >= len(s.data) {
			return s.unexpected()
		}
		switch s.data[s.i] {
		case ',':
			s.i++
			s.space()
		case '}':
			s.i++
			return true
		default:
			return s.unexpected()
		}
	}
}

func (s *scanner) array(depth int) bool {
	if depth > maxDepth {
		s.fail("nesting deeper than " + strconv.Itoa(maxDepth) + " levels")
		return false
	}
	s.i++ // '['
	s.space()
	if s.i < len(s.data) && s.data[s.i] == ']' {
		s.i++
		return true
	}
	for {
		if !s.value(depth) {
			return false
		}
		s.space()
		if s.i >= len(s.data) {
			return s.unexpected()
		}
		switch s.data[s.i] {
		case ',':
			s.i++
			s.space()
		case ']':
			s.i++
			return true
		default:
			return s.unexpected()
		}
	}
}

func (s *scanner) str() bool {
	s.i++ // opening quote
	for s.i < len(s.data) {
		c := s.data[s.i]
		switch {
		case c == '"':
			s.i++
			return true
		case c < 0x20:
			s.fail("control character " + strconv.QuoteRune(rune(c)) + " in string")
			return false
		case c == '\\':
			s.i++
			if s.i >= len(s.data) {
				return s.unexpected()
			}
			switch s.data[s.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i++
			case 'u':
				s.i++
				for range 4 {
					if s.i >= len(s.data) || !isHex(s.data[s.i]) {
						s.fail(`invalid \u escape in string`)
						return false
					}
					s.i++
				}
			default:
				s.fail("invalid escape " + strconv.Quote(`\`+string(s.data[s.i])) + " in string")
				return false
			}
		default:
			s.i++
		}
	}
	s.fail("unterminated string")
	return false
}

func (s *scanner) number() bool {
	if s.data[s.i] == '-' {
		s.i++
	}
	if s.i >= len(s.data) {
		return s.unexpected()
	}
	switch c := s.data[s.i]; {
	case c == '0':
		s.i++
	case c >= '1' && c <= '9':
		s.digits()
	default:
		return s.unexpected()
	}
	if s.i < len(s.data) && s.data[s.i] == '.' {
		s.i++
		if s.i >= len(s.data) || !isDigit(s.data[s.i]) {
			return s.unexpected()
		}
		s.digits()
	}
	if s.i < len(s.data) && (s.data[s.i] == 'e' || s.data[s.i] == 'E') {
		s.i++
		if s.i < len(s.data) && (s.data[s.i] == '+' || s.data[s.i] == '-') {
			s.i++
		}
		if s.i >= len(s.data) || !isDigit(s.data[s.i]) {
			return s.unexpected()
		}
		s.digits()
	}
	return true
}

func (s *scanner) digits() {
	for s.i < len(s.data) && isDigit(s.data[s.i]) {
		s.i++
	}
}

func (s *scanner) literal(word string) bool {
	for j := 0; j < len(word); j++ {
		if s.i >= len(s.data) || s.data[s.i] != word[j] {
			return s.unexpected()
		}
		s.i++
	}
	return true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isHex(c byte) bool {
	return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}
