package gateway

import (
	"fmt"
	"os"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"sigs.k8s.io/yaml"

	// The typed_config types the gateway understands or warns about,
	// registered so that an Any holding one resolves. Any other type is a
	// parse error naming it, as Envoy's "didn't find a registered
	// implementation" is.
	_ "github.com/cncf/xds/go/udpa/type/v1"
	_ "github.com/cncf/xds/go/xds/type/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	// Known so that a bootstrap using them is refused by name, not as an
	// unknown type: network filters are not emulated.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/wasm/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/resource_monitors/fixed_heap/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
)

// LoadFile reads an Envoy bootstrap YAML (or JSON) file.
func LoadFile(path string) (*bootstrapv3.Bootstrap, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	bs, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return bs, nil
}

// Parse parses an Envoy v3 bootstrap as Envoy does: enums in any case and
// TypedStruct-wrapped typed_configs accepted, and mistakes reported with
// their YAML line and field path (readAsEnvoy); then YAML to JSON, the proto
// JSON mapping with unknown fields refused, and protoc-gen-validate rules on
// the bootstrap and on every typed_config inside it.
func Parse(yamlOrJSON []byte) (*bootstrapv3.Bootstrap, error) {
	bs := &bootstrapv3.Bootstrap{}
	doc, err := readAsEnvoy(yamlOrJSON, bs.ProtoReflect().Descriptor())
	if err != nil {
		return nil, err
	}
	j, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return nil, fmt.Errorf("not YAML: %w", err)
	}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(j, bs); err != nil {
		return nil, fmt.Errorf("not an Envoy v3 bootstrap: %w", err)
	}
	if err := ValidateDeep(bs, "bootstrap"); err != nil {
		return nil, err
	}
	return bs, nil
}

// ValidateDeep runs the validation rules of m and of every Any inside it,
// unpacked: ValidateAll alone stops at an Any.
func ValidateDeep(m proto.Message, at string) error {
	if v, ok := m.(interface{ ValidateAll() error }); ok {
		if err := v.ValidateAll(); err != nil {
			return fmt.Errorf("%s: invalid: %w", at, err)
		}
	}
	var first error
	walkAnys(m.ProtoReflect(), at, func(a *anypb.Any, p string) {
		if first != nil {
			return
		}
		inner, err := a.UnmarshalNew()
		if err != nil {
			first = fmt.Errorf("%s: %s: %w", p, a.GetTypeUrl(), err)
			return
		}
		first = ValidateDeep(inner, p)
	})
	return first
}

// walkAnys calls fn for every Any reachable from m without crossing another.
func walkAnys(m protoreflect.Message, at string, fn func(*anypb.Any, string)) {
	visit := func(v protoreflect.Message, p string) {
		if a, ok := v.Interface().(*anypb.Any); ok {
			fn(a, p)
			return
		}
		walkAnys(v, p, fn)
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		p := at + "." + string(fd.Name())
		switch {
		case fd.IsList():
			if fd.Message() != nil {
				l := v.List()
				for i := 0; i < l.Len(); i++ {
					visit(l.Get(i).Message(), fmt.Sprintf("%s[%d]", p, i))
				}
			}
		case fd.IsMap():
			if fd.MapValue().Message() != nil {
				v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
					visit(mv.Message(), fmt.Sprintf("%s[%s]", p, k.String()))
					return true
				})
			}
		case fd.Message() != nil:
			visit(v.Message(), p)
		}
		return true
	})
}
