package gateway

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// readAsEnvoy walks a bootstrap YAML document against the proto it
// describes, before the proto JSON mapping reads it, and does what Envoy's
// parser does that the plain mapping does not:
//
//   - enum values are matched case-insensitively (Envoy parses JSON with
//     case_insensitive_enum_parsing): `codec_type: auto` is AUTO;
//   - an Any holding a udpa.type.v1.TypedStruct or xds.type.v3.TypedStruct
//     becomes an Any of the inner type, its `value` the inner message, as
//     Envoy's translateOpaqueConfig unwraps it;
//
// and it reports the first mistake a user makes most (an unknown field, an
// unknown enum value or Any type, a YAML boolean where a string belongs)
// with the YAML line and the field path, where the JSON mapping could only
// point into the converted JSON.
//
// It returns the document to hand to the JSON mapping, rewritten only where
// it changed something.
func readAsEnvoy(doc []byte, md protoreflect.MessageDescriptor) ([]byte, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(doc, &root); err != nil {
		return nil, fmt.Errorf("not YAML: %w", err)
	}
	if root.Kind != yaml.DocumentNode || len(root.Content) == 0 {
		return doc, nil // empty: the JSON mapping says what is missing
	}
	r := &yamlReader{}
	if err := r.message(root.Content[0], md, ""); err != nil {
		return nil, err
	}
	if !r.changed {
		return doc, nil
	}
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	if err := enc.Encode(&root); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

type yamlReader struct {
	changed bool
}

// yamlError is a mistake at a line of the document.
func yamlError(n *yaml.Node, path, format string, args ...any) error {
	return fmt.Errorf("line %d: %s: %s", n.Line, strings.TrimPrefix(path, "."), fmt.Sprintf(format, args...))
}

// freeForm are the well-known types whose JSON form is not a message of
// fields: their content is the JSON mapping's to check.
var freeForm = map[protoreflect.FullName]bool{
	"google.protobuf.Struct": true, "google.protobuf.Value": true, "google.protobuf.ListValue": true,
	"google.protobuf.Duration": true, "google.protobuf.Timestamp": true, "google.protobuf.FieldMask": true,
	"google.protobuf.Empty": true, "google.protobuf.NullValue": true,
	"google.protobuf.DoubleValue": true, "google.protobuf.FloatValue": true, "google.protobuf.Int64Value": true,
	"google.protobuf.UInt64Value": true, "google.protobuf.Int32Value": true, "google.protobuf.UInt32Value": true,
	"google.protobuf.BoolValue": true, "google.protobuf.StringValue": true, "google.protobuf.BytesValue": true,
}

// typedStructs are the wrappers Envoy unwraps in an Any.
var typedStructs = map[protoreflect.FullName]bool{
	"udpa.type.v1.TypedStruct": true,
	"xds.type.v3.TypedStruct":  true,
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func (r *yamlReader) message(n *yaml.Node, md protoreflect.MessageDescriptor, path string) error {
	n = resolveAlias(n)
	if isNull(n) || freeForm[md.FullName()] {
		return nil
	}
	if md.FullName() == "google.protobuf.Any" {
		return r.any(n, path)
	}
	if n.Kind != yaml.MappingNode {
		return yamlError(n, path, "expected a mapping (%s), got %s", md.Name(), describe(n))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		fd := md.Fields().ByJSONName(key.Value)
		if fd == nil {
			fd = md.Fields().ByName(protoreflect.Name(key.Value))
		}
		if fd == nil {
			return yamlError(key, path+"."+key.Value, "unknown field%s", suggestField(key.Value, md))
		}
		if err := r.field(val, fd, path+"."+string(fd.Name())); err != nil {
			return err
		}
	}
	return nil
}

func (r *yamlReader) field(n *yaml.Node, fd protoreflect.FieldDescriptor, path string) error {
	n = resolveAlias(n)
	if isNull(n) {
		return nil
	}
	switch {
	case fd.IsList():
		if n.Kind != yaml.SequenceNode {
			return yamlError(n, path, "expected a list, got %s", describe(n))
		}
		for i, e := range n.Content {
			if err := r.value(e, fd, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		return nil
	case fd.IsMap():
		if n.Kind != yaml.MappingNode {
			return yamlError(n, path, "expected a mapping, got %s", describe(n))
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := r.value(n.Content[i+1], fd.MapValue(), fmt.Sprintf("%s[%s]", path, n.Content[i].Value)); err != nil {
				return err
			}
		}
		return nil
	}
	return r.value(n, fd, path)
}

func (r *yamlReader) value(n *yaml.Node, fd protoreflect.FieldDescriptor, path string) error {
	n = resolveAlias(n)
	if isNull(n) {
		return nil
	}
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return r.message(n, fd.Message(), path)
	case protoreflect.EnumKind:
		return r.enum(n, fd.Enum(), path)
	case protoreflect.StringKind:
		if n.Kind == yaml.ScalarNode && n.Style == 0 && yaml11Bool[n.Value] {
			return yamlError(n, path, "YAML reads %s as a boolean, and a string is expected: quote it (\"%s\")", n.Value, n.Value)
		}
	}
	return nil
}

// yaml11Bool are the plain scalars YAML 1.1 (Envoy's YAML reader, and the
// one the JSON conversion here uses) reads as booleans.
var yaml11Bool = map[string]bool{}

func init() {
	for _, w := range []string{"y", "yes", "n", "no", "true", "false", "on", "off"} {
		yaml11Bool[w] = true
		yaml11Bool[strings.ToUpper(w)] = true
		yaml11Bool[strings.ToUpper(w[:1])+w[1:]] = true
	}
}

func (r *yamlReader) enum(n *yaml.Node, ed protoreflect.EnumDescriptor, path string) error {
	if n.Kind != yaml.ScalarNode {
		return yamlError(n, path, "expected one of %s, got %s", enumNames(ed), describe(n))
	}
	if n.Tag == "!!int" {
		return nil // a number: the JSON mapping takes it as the enum's value
	}
	values := ed.Values()
	if values.ByName(protoreflect.Name(n.Value)) != nil {
		return nil
	}
	for i := 0; i < values.Len(); i++ {
		if name := string(values.Get(i).Name()); strings.EqualFold(name, n.Value) {
			n.Value, n.Style, n.Tag = name, 0, "!!str"
			r.changed = true
			return nil
		}
	}
	return yamlError(n, path, "unknown value %q; one of %s", n.Value, enumNames(ed))
}

func enumNames(ed protoreflect.EnumDescriptor) string {
	var names []string
	for i := 0; i < ed.Values().Len(); i++ {
		names = append(names, string(ed.Values().Get(i).Name()))
	}
	return strings.Join(names, ", ")
}

// any checks an Any: its @type must name a type this gateway knows (Envoy:
// "didn't find a registered implementation"), a TypedStruct is unwrapped
// in place, and the fields are checked against the type.
func (r *yamlReader) any(n *yaml.Node, path string) error {
	if n.Kind != yaml.MappingNode {
		return yamlError(n, path, "expected a mapping with @type, got %s", describe(n))
	}
	typeURL, at := mappingValue(n, "@type")
	if typeURL == nil {
		if len(n.Content) == 0 {
			return nil
		}
		return yamlError(n, path, "an Any needs @type")
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByURL(typeURL.Value)
	if err != nil {
		return yamlError(typeURL, path+".@type", "%s is not a type this gateway knows (Envoy: didn't find a registered implementation)", typeURL.Value)
	}
	if typedStructs[mt.Descriptor().FullName()] {
		inner, _ := mappingValue(n, "type_url")
		if inner == nil {
			inner, _ = mappingValue(n, "typeUrl")
		}
		if inner == nil || inner.Value == "" {
			return yamlError(n, path, "%s: type_url is required", mt.Descriptor().FullName())
		}
		content := []*yaml.Node{n.Content[at-1], {Kind: yaml.ScalarNode, Tag: "!!str", Value: inner.Value, Line: inner.Line, Column: inner.Column}}
		if v, _ := mappingValue(n, "value"); v != nil {
			v = resolveAlias(v)
			if v.Kind != yaml.MappingNode && !isNull(v) {
				return yamlError(v, path+".value", "expected a mapping, got %s", describe(v))
			}
			if v.Kind == yaml.MappingNode {
				content = append(content, v.Content...)
			}
		}
		n.Content = content
		r.changed = true
		return r.any(n, path)
	}
	md := mt.Descriptor()
	if freeForm[md.FullName()] {
		return nil // {"@type": …, "value": …}: the JSON mapping's
	}
	rest := &yaml.Node{Kind: yaml.MappingNode, Line: n.Line, Column: n.Column}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value != "@type" {
			rest.Content = append(rest.Content, n.Content[i], n.Content[i+1])
		}
	}
	return r.message(rest, md, path)
}

// mappingValue returns the value under key in a mapping, and its index.
func mappingValue(n *yaml.Node, key string) (*yaml.Node, int) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return resolveAlias(n.Content[i+1]), i + 1
		}
	}
	return nil, -1
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

// suggestField names the field closest to a misspelt one, if any is close.
func suggestField(name string, md protoreflect.MessageDescriptor) string {
	type cand struct {
		name string
		d    int
	}
	var best []cand
	fields := md.Fields()
	for i := 0; i < fields.Len(); i++ {
		f := string(fields.Get(i).Name())
		if d := editDistance(strings.ToLower(name), f); d <= 2 {
			best = append(best, cand{f, d})
		}
	}
	if len(best) == 0 {
		return ""
	}
	sort.Slice(best, func(i, j int) bool {
		return best[i].d < best[j].d || best[i].d == best[j].d && best[i].name < best[j].name
	})
	return fmt.Sprintf(" (did you mean %s?)", best[0].name)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
