package gateway

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// fields says, for one message type, what the gateway does with each
// field that can be set: emulate it (use), or accept it with a warning
// naming what is not emulated (warn). A set field in neither is refused
// at start-up.
type fields struct {
	use  string            // space-separated field names the gateway emulates or that change nothing here
	warn map[string]string // field name → what is not emulated
}

// checker collects the refusals and warnings of one configuration.
type checker struct {
	errs     []string
	warnings []string
	// engineNames are the engine filter names given so far: the gateway
	// runs every listener's and service's filters in one engine, where
	// each needs a name of its own.
	engineNames map[string]bool
}

// engineName is name, or name#2, name#3... if an earlier filter (of any
// listener or service) has it: Envoy accepts two filters of one name and
// one config.name (the Go SDK's dispatch_call_on_tick has two bare
// envoy.filters.http.wasm); the engine tells them apart by a suffix that
// only the gateway's own messages show.
func (c *checker) engineName(name string) string {
	if c.engineNames == nil {
		c.engineNames = map[string]bool{}
	}
	out := name
	for i := 2; c.engineNames[out]; i++ {
		out = name + "#" + strconv.Itoa(i)
	}
	c.engineNames[out] = true
	return out
}

func (c *checker) errorf(format string, args ...any) {
	c.errs = append(c.errs, fmt.Sprintf(format, args...))
}

func (c *checker) warnf(format string, args ...any) {
	c.warnings = append(c.warnings, fmt.Sprintf(format, args...))
}

// check applies f to every set field of m; at names m for messages.
func (c *checker) check(m proto.Message, at string, f fields) {
	if m == nil {
		return
	}
	r := m.ProtoReflect()
	if !r.IsValid() {
		return
	}
	use := map[string]bool{}
	for _, n := range strings.Fields(f.use) {
		use[n] = true
	}
	var set []protoreflect.FieldDescriptor
	r.Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		set = append(set, fd)
		return true
	})
	sort.Slice(set, func(i, j int) bool { return set[i].Number() < set[j].Number() })
	for _, fd := range set {
		name := string(fd.Name())
		switch {
		case use[name]:
		case f.warn[name] != "":
			c.warnf("%s.%s: accepted, not emulated (%s)", at, name, f.warn[name])
		default:
			c.errorf("%s.%s: not supported by concierge-gateway (it would change routing or what the filters see); remove it, or run this configuration in Envoy", at, name)
		}
	}
}
