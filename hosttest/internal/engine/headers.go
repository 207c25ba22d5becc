package engine

import (
	"strings"

	"github.com/concierge-wasm/concierge/hosttest/internal/abi"
)

// headerMap is an ordered multimap with lower-case keys, like Envoy's
// HeaderMapImpl as seen through the proxy-wasm ABI.
type headerMap struct{ pairs []abi.Pair }

func newHeaderMap(pairs []abi.Pair) *headerMap {
	m := &headerMap{pairs: make([]abi.Pair, 0, len(pairs))}
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
