package main

// The stored form of a cache entry: a compact binary record, read back by
// every worker VM. It is decoded from shared data, which another version of
// the filter may have written, so decoding checks every length and refuses
// anything it does not fully understand (a miss, never a panic).

import (
	"encoding/binary"
	"errors"
)

const (
	entryMagic   = 0xC5
	entryVersion = 1

	kindEntry  = 1 // a response
	kindVaried = 2 // a marker: the response at this key varies on names
)

// entry is one stored response, or a Vary marker.
type entry struct {
	kind uint8
	key  []byte // the full cache key, compared on every lookup
	uri  []byte // uriOf the request, for invalidation
	// Times in Unix seconds (the clock of whichever VM stored it).
	responseTime int64
	initialAge   int64 // corrected_initial_age, seconds
	lifetime     int64 // freshness lifetime, seconds
	// staleIfError is the response's stale-if-error (RFC 5861), seconds;
	// -1 when absent.
	staleIfError int64
	// staleWhileRevalidate is the response's stale-while-revalidate,
	// seconds; -1 when absent.
	staleWhileRevalidate int64
	flags                uint8
	status               uint16
	vary                 []string    // kindVaried: the varied header names
	headers              [][2]string // kindEntry: response headers to replay
	tags                 []string    // Surrogate-Key / Cache-Tag values
	body                 []byte
}

// entry flags.
const (
	flagNoCache        = 1 << 0 // response no-cache: revalidate each time
	flagMustRevalidate = 1 << 1 // never served stale
)

var errBadEntry = errors.New("malformed cache entry")

// maxListLen bounds counts read from an entry before they size anything.
const maxListLen = 1 << 16

func (e *entry) appendBinary(dst []byte) []byte {
	dst = append(dst, entryMagic, entryVersion, e.kind, e.flags)
	dst = appendBytes(dst, e.key)
	dst = appendBytes(dst, e.uri)
	dst = binary.AppendVarint(dst, e.responseTime)
	dst = binary.AppendVarint(dst, e.initialAge)
	dst = binary.AppendVarint(dst, e.lifetime)
	dst = binary.AppendVarint(dst, e.staleIfError)
	dst = binary.AppendVarint(dst, e.staleWhileRevalidate)
	dst = binary.AppendUvarint(dst, uint64(e.status))
	dst = binary.AppendUvarint(dst, uint64(len(e.vary)))
	for _, v := range e.vary {
		dst = appendString(dst, v)
	}
	dst = binary.AppendUvarint(dst, uint64(len(e.headers)))
	for _, h := range e.headers {
		dst = appendString(dst, h[0])
		dst = appendString(dst, h[1])
	}
	dst = binary.AppendUvarint(dst, uint64(len(e.tags)))
	for _, t := range e.tags {
		dst = appendString(dst, t)
	}
	return appendBytes(dst, e.body)
}

func appendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// decodeEntry parses b. Byte slices in the result alias b.
func decodeEntry(b []byte) (entry, error) {
	var e entry
	if len(b) < 4 || b[0] != entryMagic || b[1] != entryVersion {
		return e, errBadEntry
	}
	e.kind, e.flags = b[2], b[3]
	if e.kind != kindEntry && e.kind != kindVaried {
		return e, errBadEntry
	}
	r := reader{b: b[4:]}
	e.key = r.bytes()
	e.uri = r.bytes()
	e.responseTime = r.varint()
	e.initialAge = r.varint()
	e.lifetime = r.varint()
	e.staleIfError = r.varint()
	e.staleWhileRevalidate = r.varint()
	st := r.uvarint()
	if st > 999 {
		r.bad = true
	}
	e.status = uint16(st)
	if n := r.count(); n > 0 {
		e.vary = make([]string, n)
		for i := range e.vary {
			e.vary[i] = string(r.bytes())
		}
	}
	if n := r.count(); n > 0 {
		e.headers = make([][2]string, n)
		for i := range e.headers {
			e.headers[i] = [2]string{string(r.bytes()), string(r.bytes())}
		}
	}
	if n := r.count(); n > 0 {
		e.tags = make([]string, n)
		for i := range e.tags {
			e.tags[i] = string(r.bytes())
		}
	}
	e.body = r.bytes()
	if r.bad || len(r.b) != 0 {
		return entry{}, errBadEntry
	}
	return e, nil
}

// reader reads the record; after the first error every read returns zero
// values and bad stays set.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) uvarint() uint64 {
	if r.bad {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.bad {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) count() int {
	n := r.uvarint()
	// Each element takes at least one byte, so a count beyond what is
	// left is a lie.
	if n > maxListLen || n > uint64(len(r.b)) {
		r.bad = true
		return 0
	}
	return int(n)
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.bad || n > uint64(len(r.b)) {
		r.bad = true
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}
