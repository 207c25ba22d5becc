package engine

import (
	"strings"
	"unsafe"

	"github.com/concierge-wasm/concierge/hosttest/internal/abi"
)

// headerMap is an ordered multimap with lower-case keys, like Envoy's
// HeaderMapImpl as seen through the proxy-wasm ABI.
type headerMap struct{ pairs []abi.Pair }

// smallHeaderMap holds a map and room for its first pairs in one
// allocation: most header maps on the request path are that small.
type smallHeaderMap struct {
	m     headerMap
	space [8]abi.Pair
}

func newHeaderMap(pairs []abi.Pair) *headerMap { return newHeaderMapIn(nil, pairs) }

// newHeaderMapIn builds the map in room the caller owns (a stream's first
// map of a direction) when the pairs fit, else allocates it.
func newHeaderMapIn(room *smallHeaderMap, pairs []abi.Pair) *headerMap {
	var m *headerMap
	if len(pairs) <= len(smallHeaderMap{}.space) {
		if room == nil {
			room = &smallHeaderMap{}
		}
		room.m.pairs = room.space[:0]
		m = &room.m
	} else {
		m = &headerMap{pairs: make([]abi.Pair, 0, len(pairs))}
	}
	for _, p := range pairs {
		m.pairs = append(m.pairs, abi.Pair{Key: strings.ToLower(p.Key), Value: p.Value})
	}
	return m
}

func (m *headerMap) get(key string) (string, bool) {
	for _, p := range m.pairs {
		if p.Key == key {
			return p.Value, true
		}
	}
	return "", false
}

func (m *headerMap) add(key, value string) {
	m.pairs = append(m.pairs, abi.Pair{Key: key, Value: value})
}

// replace sets the first entry's value and drops the rest (Envoy setCopy);
// an absent key is appended.
func (m *headerMap) replace(key, value string) {
	out := m.pairs[:0]
	found := false
	for _, p := range m.pairs {
		if p.Key == key {
			if found {
				continue
			}
			found = true
			p.Value = value
		}
		out = append(out, p)
	}
	m.pairs = out
	if !found {
		m.add(key, value)
	}
}

func (m *headerMap) remove(key string) {
	out := m.pairs[:0]
	for _, p := range m.pairs {
		if p.Key != key {
			out = append(out, p)
		}
	}
	m.pairs = out
}

func (m *headerMap) byteSize() int {
	n := 0
	for _, p := range m.pairs {
		n += len(p.Key) + len(p.Value)
	}
	return n
}

func (m *headerMap) clone() []abi.Pair {
	if m == nil {
		return nil
	}
	return append([]abi.Pair(nil), m.pairs...)
}

// The host calls name headers in guest memory; these look them up without
// first making a lower-cased Go string. They apply to keys that are ASCII
// (asciiKey): for any other key the callers lower-case it with
// strings.ToLower as before, so what a plugin observes does not change.

// asciiKey reports whether b is all ASCII.
func asciiKey(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// equalLower reports whether stored (lower-case) equals key lower-cased;
// key must be ASCII.
func equalLower(stored string, key []byte) bool {
	if len(stored) != len(key) {
		return false
	}
	for i, c := range key {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if stored[i] != c {
			return false
		}
	}
	return true
}

// getASCII is get for an ASCII key in any case.
func (m *headerMap) getASCII(key []byte) (string, bool) {
	for _, p := range m.pairs {
		if equalLower(p.Key, key) {
			return p.Value, true
		}
	}
	return "", false
}

// removeASCII is remove for an ASCII key in any case.
func (m *headerMap) removeASCII(key []byte) {
	out := m.pairs[:0]
	for _, p := range m.pairs {
		if !equalLower(p.Key, key) {
			out = append(out, p)
		}
	}
	clear(m.pairs[len(out):]) // let the removed strings go
	m.pairs = out
}

// keyValue makes the lower-cased key and the value of a header edit from
// guest memory in one allocation.
func keyValue(key, value []byte) (string, string) {
	if !asciiKey(key) {
		return strings.ToLower(string(key)), string(value)
	}
	buf := make([]byte, len(key)+len(value))
	for i, c := range key {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	copy(buf[len(key):], value)
	s := unsafe.String(unsafe.SliceData(buf), len(buf)) // buf is never written again
	return s[:len(key)], s[len(key):]
}
