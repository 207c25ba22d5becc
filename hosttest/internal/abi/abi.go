// Package abi holds the proxy-wasm ABI 0.2.1 constants and the wire encoding
// of header maps and property paths, shared by the host and its tests.
// Spec: https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.2.1
package abi

import (
	"encoding/binary"
	"errors"
)

// Status is proxy_status_t.
type Status uint32

const (
	OK                  Status = 0
	NotFound            Status = 1
	BadArgument         Status = 2
	SerializationFailed Status = 3
	ParseFailure        Status = 4
	InvalidMemoryAccess Status = 6
	Empty               Status = 7
	CasMismatch         Status = 8
	InternalFailure     Status = 10
	Unimplemented       Status = 12
)

var statusNames = map[Status]string{
	OK: "OK", NotFound: "NOT_FOUND", BadArgument: "BAD_ARGUMENT", SerializationFailed: "SERIALIZATION_FAILURE",
	ParseFailure: "PARSE_FAILURE", InvalidMemoryAccess: "INVALID_MEMORY_ACCESS", Empty: "EMPTY",
	CasMismatch: "CAS_MISMATCH", InternalFailure: "INTERNAL_FAILURE", Unimplemented: "UNIMPLEMENTED",
}

func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return "STATUS_" + itoa(uint64(s))
}

// Action is proxy_action_t.
type Action uint32

const (
	Continue Action = 0
	Pause    Action = 1
)

// MapType is proxy_map_type_t.
type MapType uint32

const (
	RequestHeaders       MapType = 0
	RequestTrailers      MapType = 1
	ResponseHeaders      MapType = 2
	ResponseTrailers     MapType = 3
	CallResponseHeaders  MapType = 6
	CallResponseTrailers MapType = 7
)

// BufferType is proxy_buffer_type_t.
type BufferType uint32

const (
	RequestBody         BufferType = 0
	ResponseBody        BufferType = 1
	DownstreamData      BufferType = 2
	UpstreamData        BufferType = 3
	CallResponseBody    BufferType = 4
	GrpcCallMessage     BufferType = 5
	VMConfiguration     BufferType = 6
	PluginConfiguration BufferType = 7
	CallData            BufferType = 8
)

// StreamType is proxy_stream_type_t.
type StreamType uint32

const (
	StreamRequest    StreamType = 0
	StreamResponse   StreamType = 1
	StreamDownstream StreamType = 2
	StreamUpstream   StreamType = 3
)

// MetricType is proxy_metric_type_t.
type MetricType uint32

const (
	Counter   MetricType = 0
	Gauge     MetricType = 1
	Histogram MetricType = 2
)

// Envoy's per-call limits on maps the guest sends (PairsUtil::toPairs).
const (
	MaxPairsBytes = 1 << 20
	MaxPairs      = 1024
)

// Pair is one header (or property map) entry; order and duplicates matter.
type Pair struct{ Key, Value string }

// EncodePairs serialises pairs as the ABI does: u32 count, then u32 key and
// value sizes per pair, then each key and value NUL-terminated.
func EncodePairs(pairs []Pair) []byte {
	if len(pairs) == 0 {
		return nil
	}
	size := 4 + 8*len(pairs)
	for _, p := range pairs {
		size += len(p.Key) + len(p.Value) + 2
	}
	out := make([]byte, size)
	binary.LittleEndian.PutUint32(out, uint32(len(pairs)))
	off := 4
	for _, p := range pairs {
		binary.LittleEndian.PutUint32(out[off:], uint32(len(p.Key)))
		binary.LittleEndian.PutUint32(out[off+4:], uint32(len(p.Value)))
		off += 8
	}
	for _, p := range pairs {
		off += copy(out[off:], p.Key)
		out[off] = 0
		off++
		off += copy(out[off:], p.Value)
		out[off] = 0
		off++
	}
	return out
}

var errMalformed = errors.New("malformed pairs")

// DecodePairs parses the ABI map encoding. Like Envoy, callers treat an
// error as an empty map rather than failing the call.
func DecodePairs(b []byte) ([]Pair, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if len(b) > MaxPairsBytes || len(b) < 4 {
		return nil, errMalformed
	}
	n := int(binary.LittleEndian.Uint32(b))
	if n > MaxPairs || 4+8*n > len(b) {
		return nil, errMalformed
	}
	pairs := make([]Pair, n)
	data := 4 + 8*n
	for i := 0; i < n; i++ {
		kl := int(binary.LittleEndian.Uint32(b[4+8*i:]))
		vl := int(binary.LittleEndian.Uint32(b[8+8*i:]))
		if kl < 0 || vl < 0 || data+kl+vl+2 > len(b) {
			return nil, errMalformed
		}
		pairs[i].Key = string(b[data : data+kl])
		data += kl + 1
		pairs[i].Value = string(b[data : data+vl])
		data += vl + 1
	}
	return pairs, nil
}

func itoa(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return string(b[i:])
		}
	}
}
