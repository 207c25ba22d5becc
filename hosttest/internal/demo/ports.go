package demo

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Shift moves every port of p by offset, so that a second demo, or a user
// with something on 8080, runs the tour on other ports.
func (p Ports) Shift(offset int) Ports {
	users := make([]int, len(p.Users))
	for i, u := range p.Users {
		users[i] = u + offset
	}
	return Ports{Users: users, Orders: p.Orders + offset, Flaky: p.Flaky + offset, IdP: p.IdP + offset}
}

// ShiftLoopbackPorts adds offset to the port of every loopback socket
// address in a bootstrap (listeners, admin, cluster endpoints), wherever the
// message sits, so that envoy/local.yaml follows the demo services when
// they move (Ports.Shift). Addresses off loopback are left alone: the demo
// never starts anything there.
func ShiftLoopbackPorts(m proto.Message, offset int) {
	if offset == 0 {
		return
	}
	shift(m.ProtoReflect(), uint32(offset))
}

func shift(m protoreflect.Message, offset uint32) {
	if sa, ok := m.Interface().(*corev3.SocketAddress); ok {
		if isLoopback(sa.GetAddress()) && sa.GetPortValue() != 0 {
			sa.PortSpecifier = &corev3.SocketAddress_PortValue{PortValue: sa.GetPortValue() + offset}
		}
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				shift(l.Get(i).Message(), offset)
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				shift(mv.Message(), offset)
				return true
			})
		case fd.Message() != nil && !fd.IsList() && !fd.IsMap():
			shift(v.Message(), offset)
		}
		return true
	})
}

func isLoopback(addr string) bool {
	switch addr {
	case "127.0.0.1", "localhost", "::1":
		return true
	}
	return false
}
