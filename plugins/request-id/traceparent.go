package main

import "io"

// W3C Trace Context (https://www.w3.org/TR/trace-context/#traceparent-header):
//
//	traceparent = version "-" trace-id "-" parent-id "-" trace-flags
//	version     = 2HEXDIGLC   ; "ff" is invalid
//	trace-id    = 32HEXDIGLC  ; all zeros is invalid
//	parent-id   = 16HEXDIGLC  ; all zeros is invalid
//	trace-flags = 2HEXDIGLC
//
// HEXDIGLC is lowercase hex only.

// traceparentLen is the length of a version 00 traceparent.
const traceparentLen = 55

// maxTraceparentLen bounds a future-version traceparent. The spec sets no
// limit; 256 leaves room for several more fields of the kind version 00 has.
const maxTraceparentLen = 256

// validTraceparent reports whether s is a traceparent the filter keeps.
//
// Version 00 must be exactly 55 characters. A higher version (anything but
// 00 and ff) is read as the spec asks parsers to read future versions: its
// first 55 characters parse as version 00 fields and character 55, if any,
// is "-". What follows that dash — fields no version defines yet — is kept
// only when it is well formed the way every defined field is: one or more
// "-"-separated non-empty runs of lowercase hex, the whole header at most
// maxTraceparentLen. Anything else in the tail (spaces, quotes, text,
// empty fields) is dropped with the header: the filter forwards a kept
// traceparent unchanged (it is not a tracer), so an unchecked tail would
// carry whatever a client wrote into every upstream's tracing and logs.
func validTraceparent(s string) bool {
	if len(s) < traceparentLen {
		return false
	}
	if !isLowerHex(s[0:2]) || s[0:2] == "ff" {
		return false
	}
	if s[0:2] == "00" {
		if len(s) != traceparentLen {
			return false
		}
	} else if len(s) > traceparentLen && !wellFormedTail(s[traceparentLen:]) {
		return false
	}
	if s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return false
	}
	traceID, parentID, flags := s[3:35], s[36:52], s[53:55]
	return isLowerHex(traceID) && !allZero(traceID) &&
		isLowerHex(parentID) && !allZero(parentID) &&
		isLowerHex(flags)
}

// wellFormedTail reports whether tail, what follows the flags of a future
// version, is ("-" 1*HEXDIGLC)+ and keeps the header within
// maxTraceparentLen.
func wellFormedTail(tail string) bool {
	if len(tail) > maxTraceparentLen-traceparentLen || len(tail) < 2 || tail[0] != '-' {
		return false
	}
	field := 0
	for i := 1; i < len(tail); i++ {
		c := tail[i]
		switch {
		case c == '-':
			if field == 0 {
				return false
			}
			field = 0
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
			field++
		default:
			return false
		}
	}
	return field > 0
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func allZero(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '0' {
			return false
		}
	}
	return true
}

// newTraceparent returns a fresh version 00 traceparent with a random
// trace-id and parent-id read from rand.
//
// The flags are 01 (sampled). The filter records nothing itself, but it
// creates the traceparent only so that downstream tracing has a root: with
// 00, the common parent-based samplers (OpenTelemetry's default is
// ParentBased(AlwaysOn)) would drop every trace that starts here, which is
// worse than sending no traceparent at all. With 01 a downstream service
// behaves as if it were the root with its default sampler; a service that
// samples by ratio at its root should configure its sampler for remote
// parents too.
func newTraceparent(rand io.Reader) (string, error) {
	var b [24]byte // 16 trace-id, 8 parent-id
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return "", err
	}
	// All-zero IDs are invalid; the chance is 2^-128 and 2^-64, but a
	// broken or test randomness source must not produce an invalid header.
	if allZeroBytes(b[:16]) {
		b[15] = 1
	}
	if allZeroBytes(b[16:]) {
		b[23] = 1
	}
	var out [traceparentLen]byte
	out[0], out[1], out[2] = '0', '0', '-'
	j := 3
	for i, c := range b {
		if i == 16 {
			out[j] = '-'
			j++
		}
		out[j] = hexDigits[c>>4]
		out[j+1] = hexDigits[c&0x0f]
		j += 2
	}
	out[52], out[53], out[54] = '-', '0', '1'
	return string(out[:]), nil
}

func allZeroBytes(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
