package engine

import (
	"encoding/binary"
	"math"
	"sort"
	"strconv"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/concierge-wasm/concierge/hosttest/internal/abi"
)

// Envoy serves metadata and the node as protobuf messages seen through CEL
// (Context::getProperty): a path segment after a message names a field by
// its proto name, a map field becomes a map looked up by key, a repeated
// field a list indexed by a decimal segment, and the well-known types
// unwrap (a Struct is a map, a Value its number, string, bool, list or map,
// a Timestamp or Duration int64 ns). The value at the end of the path is
// then serialised as Envoy's serializeValue does: a message as its proto
// wire bytes, a map or list as proxy-wasm pairs, scalars as raw bytes or
// 8-byte little-endian numbers. celMap and celList model the CEL maps and
// lists; everything else is a Go scalar, nil (CEL null) or a
// protoreflect.Message.

type celMap interface {
	lookup(key string) (any, bool)
	entries() (keys, values []any)
}

type celList []any

// celOf converts a message as CEL's CelProtoWrapper does.
func celOf(m protoreflect.Message) any {
	switch v := m.Interface().(type) {
	case *structpb.Struct:
		return structMap{v}
	case *structpb.Value:
		return celOfValue(v)
	case *structpb.ListValue:
		return listOfValues(v)
	case *anypb.Any:
		inner, err := v.UnmarshalNew()
		if err != nil {
			return m
		}
		return celOf(inner.ProtoReflect())
	case *timestamppb.Timestamp:
		return v.AsTime().UnixNano()
	case *durationpb.Duration:
		return int64(v.AsDuration())
	case *wrapperspb.StringValue:
		return v.GetValue()
	case *wrapperspb.BytesValue:
		return v.GetValue()
	case *wrapperspb.BoolValue:
		return v.GetValue()
	case *wrapperspb.Int32Value:
		return int64(v.GetValue())
	case *wrapperspb.Int64Value:
		return v.GetValue()
	case *wrapperspb.UInt32Value:
		return uint64(v.GetValue())
	case *wrapperspb.UInt64Value:
		return v.GetValue()
	case *wrapperspb.FloatValue:
		return float64(v.GetValue())
	case *wrapperspb.DoubleValue:
		return v.GetValue()
	}
	return m
}

func celOfValue(v *structpb.Value) any {
	switch k := v.GetKind().(type) {
	case *structpb.Value_NumberValue:
		return k.NumberValue
	case *structpb.Value_StringValue:
		return k.StringValue
	case *structpb.Value_BoolValue:
		return k.BoolValue
	case *structpb.Value_StructValue:
		return structMap{k.StructValue}
	case *structpb.Value_ListValue:
		return listOfValues(k.ListValue)
	}
	return nil // null_value, or no kind
}

func listOfValues(l *structpb.ListValue) celList {
	out := make(celList, len(l.GetValues()))
	for i, v := range l.GetValues() {
		out[i] = celOfValue(v)
	}
	return out
}

type structMap struct{ s *structpb.Struct }

func (m structMap) lookup(key string) (any, bool) {
	v, ok := m.s.GetFields()[key]
	if !ok {
		return nil, false
	}
	return celOfValue(v), true
}

func (m structMap) entries() (keys, values []any) {
	names := make([]string, 0, len(m.s.GetFields()))
	for k := range m.s.GetFields() {
		names = append(names, k)
	}
	sort.Strings(names) // Envoy's order is the proto map's, unspecified
	for _, k := range names {
		keys = append(keys, k)
		values = append(values, celOfValue(m.s.GetFields()[k]))
	}
	return keys, values
}

// fieldMap is a map field of a message (FieldBackedMapImpl).
type fieldMap struct {
	m  protoreflect.Map
	fd protoreflect.FieldDescriptor
}

func (f fieldMap) lookup(key string) (any, bool) {
	// Envoy looks segments up as strings: a map keyed by numbers finds
	// nothing.
	if f.fd.MapKey().Kind() != protoreflect.StringKind {
		return nil, false
	}
	v := f.m.Get(protoreflect.ValueOfString(key).MapKey())
	if !v.IsValid() {
		return nil, false
	}
	return celScalar(f.fd.MapValue(), v), true
}

func (f fieldMap) entries() (keys, values []any) {
	var mk []protoreflect.MapKey
	f.m.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
		mk = append(mk, k)
		return true
	})
	sort.Slice(mk, func(i, j int) bool { return mk[i].String() < mk[j].String() })
	for _, k := range mk {
		keys = append(keys, celScalar(f.fd.MapKey(), k.Value()))
		values = append(values, celScalar(f.fd.MapValue(), f.m.Get(k)))
	}
	return keys, values
}

// celScalar converts one field value (not a whole map or list field).
func celScalar(fd protoreflect.FieldDescriptor, v protoreflect.Value) any {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return v.String()
	case protoreflect.BytesKind:
		return v.Bytes()
	case protoreflect.BoolKind:
		return v.Bool()
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return v.Int()
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return v.Uint()
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return v.Float()
	case protoreflect.EnumKind:
		return int64(v.Enum())
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return celOf(v.Message())
	}
	return nil
}

// celField is a message's field by proto name, as getProperty walks it.
func celField(m protoreflect.Message, name string) (any, bool) {
	fd := m.Descriptor().Fields().ByName(protoreflect.Name(name))
	if fd == nil {
		return nil, false
	}
	switch {
	case fd.IsMap():
		return fieldMap{m.Get(fd).Map(), fd}, true
	case fd.IsList():
		l := m.Get(fd).List()
		out := make(celList, l.Len())
		for i := range out {
			out[i] = celScalar(fd, l.Get(i))
		}
		return out, true
	}
	return celScalar(fd, m.Get(fd)), true
}

// walkProperty follows the rest of a property path from v.
func walkProperty(v any, rest []string) (any, bool) {
	for _, seg := range rest {
		switch x := v.(type) {
		case celMap:
			var ok bool
			if v, ok = x.lookup(seg); !ok {
				return nil, false
			}
		case protoreflect.Message:
			var ok bool
			if v, ok = celField(x, seg); !ok {
				return nil, false
			}
		case celList:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// protoProperty serves the path below a message-valued attribute.
func protoProperty(m proto.Message, rest []string) ([]byte, abi.Status) {
	v, ok := walkProperty(celOf(m.ProtoReflect()), rest)
	if !ok {
		return nil, abi.NotFound
	}
	return serializeCel(v)
}

// serializeCel is Envoy's serializeValue.
func serializeCel(v any) ([]byte, abi.Status) {
	switch x := v.(type) {
	case string:
		return []byte(x), abi.OK
	case []byte:
		return x, abi.OK
	case int64:
		return int64Bytes(x), abi.OK
	case uint64:
		return int64Bytes(int64(x)), abi.OK
	case float64:
		b := make([]byte, 8)
		binary.LittleEndian.PutUint64(b, math.Float64bits(x))
		return b, abi.OK
	case bool:
		if x {
			return []byte{1}, abi.OK
		}
		return []byte{0}, abi.OK
	case protoreflect.Message:
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(x.Interface())
		if err != nil {
			return nil, abi.SerializationFailed
		}
		return b, abi.OK
	case celMap:
		keys, values := x.entries()
		pairs := make([]abi.Pair, len(keys))
		for i := range keys {
			k, st := serializeCel(keys[i])
			if st != abi.OK {
				return nil, st
			}
			val, st := serializeCel(values[i])
			if st != abi.OK {
				return nil, st
			}
			pairs[i] = abi.Pair{Key: string(k), Value: string(val)}
		}
		return abi.EncodePairs(pairs), abi.OK
	case celList:
		pairs := make([]abi.Pair, len(x))
		for i, e := range x {
			k, st := serializeCel(e)
			if st != abi.OK {
				return nil, st
			}
			pairs[i] = abi.Pair{Key: string(k)}
		}
		return abi.EncodePairs(pairs), abi.OK
	}
	// CEL null (a Struct's null_value) and anything else: Envoy's
	// serializeValue has no encoding for it.
	return nil, abi.SerializationFailed
}
