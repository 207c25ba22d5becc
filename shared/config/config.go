package config

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// Object is one JSON object of a configuration document, with the path that
// leads to it (`limits[0]`, or "" at the top level).
//
// Every Object of one document shares a single error state: a getter on any
// of them that meets a bad value records the error there, and Err on any of
// them reports the document's first error. Getters then return the default,
// so parsing can carry on without checking after each call.
//
// All methods accept a nil *Object and behave as for an empty one, so a
// filter may read an optional nested object without a nil check.
type Object struct {
	st *state
	// parent, name and elem say where the object sits: parent.name, or
	// parent.name[elem] for an element of an array (elem >= 0). The path
	// string is built only when something asks for it (an error, Path), so
	// a document of ten thousand objects does not build ten thousand paths.
	parent *Object
	name   string
	elem   int
	fields []field
	// index is built only for large objects (maps of consumers, keys…), where
	// a linear scan per getter and the duplicate check would turn quadratic.
	index map[string]int
}

type field struct {
	key  string
	val  gjson.Result
	read bool
}

type state struct {
	err error
	// chunks holds every Object handed out, in creation order, so that Err
	// can look for unread keys in nested objects too. Objects are allocated
	// a chunk at a time, and a chunk is never grown, so pointers stay valid.
	chunks [][]Object
	// slab is where the next objects' fields are cut from, for the same
	// reason: one allocation for many small objects.
	slab []field
	// objsScratch and strsScratch collect an array's elements before their
	// number is known.
	objsScratch []*Object
	strsScratch []string
}

// indexFrom is the object size from which lookups go through a map.
const indexFrom = 16

// Allocation batches. Objects come in chunks that start small, so that a
// small document costs a few allocations, and double up to a bound that
// keeps the waste of the last chunk small next to a large document. Fields
// come in slabs of a fixed, small size (1.6 KiB): in a filter's VM, larger
// slabs made even a 10-consumer key-auth start with 0.8 MiB more linear
// memory, which a Go VM never gives back.
const (
	firstChunk = 4
	maxChunk   = 512
	slabFields = 16
)

// Parse reads a configuration document. Empty or blank input means `{}`,
// because Envoy passes an absent configuration as zero bytes and every filter
// has usable defaults. Anything else must be one JSON object.
//
// The error is about the document as a whole (syntax, not an object). Errors
// about fields come later, from Err.
func Parse(data []byte) (*Object, error) {
	if isBlank(data) {
		data = []byte("{}")
	}
	if err := checkSyntax(data); err != nil {
		return nil, err
	}
	res := gjson.ParseBytes(data)
	if !res.IsObject() {
		return nil, errors.New("configuration must be a JSON object, got " + show(res))
	}
	return (&state{}).object(nil, "", -1, res), nil
}

func isBlank(data []byte) bool {
	for _, c := range data {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
	}
	return true
}

func (st *state) object(parent *Object, name string, elem int, res gjson.Result) *Object {
	o := st.newObject()
	*o = Object{st: st, parent: parent, name: name, elem: elem}
	// The fields go straight to the end of the slab; only when it fills up
	// mid-object are this object's fields moved, to a larger slab.
	start := len(st.slab)
	res.ForEach(func(k, v gjson.Result) bool {
		if len(st.slab) == cap(st.slab) {
			st.newSlab(start)
			start = 0
		}
		st.slab = append(st.slab, field{key: k.Str, val: v})
		return true
	})
	if n := len(st.slab); n > start {
		// Capacity clipped: no object can grow into its neighbour's fields.
		o.fields = st.slab[start:n:n]
	}
	if len(o.fields) >= indexFrom {
		o.index = make(map[string]int, len(o.fields))
	}
	for i, f := range o.fields {
		if o.index != nil {
			if _, dup := o.index[f.key]; dup {
				o.fail("", "duplicate field "+strconv.Quote(f.key))
				continue
			}
			o.index[f.key] = i
			continue
		}
		for _, g := range o.fields[:i] {
			if g.key == f.key {
				o.fail("", "duplicate field "+strconv.Quote(f.key))
				break
			}
		}
	}
	return o
}

// newObject returns a zero Object from the current chunk, starting a new
// chunk when it is full.
func (st *state) newObject() *Object {
	n := len(st.chunks)
	if n == 0 || len(st.chunks[n-1]) == cap(st.chunks[n-1]) {
		size := firstChunk
		if n > 0 {
			size = min(2*cap(st.chunks[n-1]), maxChunk)
		}
		st.chunks = append(st.chunks, make([]Object, 0, size))
		n++
	}
	c := st.chunks[n-1]
	c = c[:len(c)+1]
	st.chunks[n-1] = c
	return &c[len(c)-1]
}

// newSlab starts a larger slab, taking along the fields from start on: those
// of the object being read. The old slab stays with the objects cut from it.
func (st *state) newSlab(start int) {
	partial := st.slab[start:]
	slab := make([]field, len(partial), max(slabFields, 2*len(partial)))
	copy(slab, partial)
	clear(partial) // no longer anyone's: drop the references into the document
	st.slab = slab
}

// Path is where this object sits in the document, e.g. `limits[0]`; "" at
// the top level.
func (o *Object) Path() string {
	if o == nil || o.parent == nil {
		return ""
	}
	var buf [64]byte // most paths fit: one allocation, for the string
	return string(o.appendPath(buf[:0]))
}

// appendPath appends the object's path to b, as join would have built it
// from the parent's path: `parent.name`, `parent.name[elem]`, or the bare
// name (with its index) under the top level. An empty name adds nothing,
// so `{"": {}}` inside `a` is at `a`, as before.
func (o *Object) appendPath(b []byte) []byte {
	if o.parent == nil {
		return b
	}
	b = o.parent.appendPath(b)
	if o.elem < 0 && o.name == "" {
		return b
	}
	if len(b) > 0 {
		b = append(b, '.')
	}
	b = append(b, o.name...)
	if o.elem >= 0 {
		b = append(b, '[')
		b = strconv.AppendInt(b, int64(o.elem), 10)
		b = append(b, ']')
	}
	return b
}

// Keys lists the object's keys in document order. It does not mark them as
// read: it is meant for map-like objects (name → settings) whose entries the
// caller then reads one by one.
func (o *Object) Keys() []string {
	if o == nil {
		return nil
	}
	keys := make([]string, len(o.fields))
	for i, f := range o.fields {
		keys[i] = f.key
	}
	return keys
}

// Has reports whether key is present, without marking it as read, so that a
// presence check ("exactly one of a, b, c") cannot hide a key from the
// unknown-field check.
func (o *Object) Has(key string) bool {
	return o.find(key) >= 0
}

// Raw returns the value of key as gjson sees it (Exists false when absent)
// and marks the key as read. Nothing is checked: it is the escape hatch for
// values this package has no getter for.
func (o *Object) Raw(key string) gjson.Result {
	v, _ := o.get(key)
	return v
}

// String returns the string at key, or def when the key is absent.
func (o *Object) String(key, def string) string {
	v, ok := o.get(key)
	if !ok {
		return def
	}
	if v.Type != gjson.String {
		o.typeError(key, "a string", v)
		return def
	}
	return v.Str
}

// Enum is String restricted to the allowed values.
func (o *Object) Enum(key, def string, allowed ...string) string {
	v, ok := o.get(key)
	if !ok {
		return def
	}
	if v.Type == gjson.String {
		for _, a := range allowed {
			if v.Str == a {
				return a
			}
		}
	}
	want := "one of "
	for i, a := range allowed {
		if i > 0 {
			want += ", "
		}
		want += strconv.Quote(a)
	}
	o.typeError(key, want, v)
	return def
}

// Bool returns the boolean at key, or def when the key is absent. Strings
// such as "true" are rejected: YAML-to-JSON conversions quote them when the
// author did, and the intent is then unclear.
func (o *Object) Bool(key string, def bool) bool {
	v, ok := o.get(key)
	if !ok {
		return def
	}
	if v.Type != gjson.True && v.Type != gjson.False {
		o.typeError(key, "a boolean", v)
		return def
	}
	return v.Type == gjson.True
}

// Int returns the integer at key, or def when the key is absent. The JSON
// number must be written as an integer: 1.5, 1e3 and "1" are errors, so a
// float never gets silently truncated into a limit.
func (o *Object) Int(key string, def int) int {
	v, ok := o.get(key)
	if !ok {
		return def
	}
	if v.Type != gjson.Number {
		o.typeError(key, "an integer", v)
		return def
	}
	n, err := strconv.ParseInt(v.Raw, 10, 0)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			o.typeError(key, fmt.Sprintf("an integer between %d and %d", math.MinInt, math.MaxInt), v)
		} else {
			o.typeError(key, "an integer", v)
		}
		return def
	}
	return int(n)
}

// Duration returns the Go duration string at key ("500ms", "1m30s"), or def
// when the key is absent. Bare numbers are rejected because their unit would
// be a guess.
func (o *Object) Duration(key string, def time.Duration) time.Duration {
	v, ok := o.get(key)
	if !ok {
		return def
	}
	if v.Type == gjson.String {
		if d, err := time.ParseDuration(v.Str); err == nil {
			return d
		}
	}
	o.typeError(key, `a duration string like "500ms"`, v)
	return def
}

// Strings returns the array of strings at key, or def when the key is
// absent. An element of the wrong type is reported with its index.
func (o *Object) Strings(key string, def []string) []string {
	v, ok := o.get(key)
	if !ok {
		return def
	}
	if !v.IsArray() {
		o.typeError(key, "an array of strings", v)
		return def
	}
	out := o.st.strsScratch[:0]
	bad := false
	v.ForEach(func(_, e gjson.Result) bool {
		if e.Type != gjson.String {
			o.typeError(key+"["+strconv.Itoa(len(out))+"]", "a string", e)
			bad = true
			return false
		}
		out = append(out, e.Str)
		return true
	})
	o.st.strsScratch = out
	defer clear(out)
	if bad {
		return def
	}
	// Non-nil when empty: `[]` is a present, empty list.
	return append(make([]string, 0, len(out)), out...)
}

// Object returns the object at key. ok is false when the key is absent or
// holds something else (which is recorded as an error).
func (o *Object) Object(key string) (obj *Object, ok bool) {
	v, found := o.get(key)
	if !found {
		return nil, false
	}
	if !v.IsObject() {
		o.typeError(key, "an object", v)
		return nil, false
	}
	return o.st.object(o, key, -1, v), true
}

// Objects returns the array of objects at key, each with the path `key[i]`;
// nil when the key is absent or is not such an array. An element that is not
// an object is reported and left out, so the others are still checked.
func (o *Object) Objects(key string) []*Object {
	v, found := o.get(key)
	if !found {
		return nil
	}
	if !v.IsArray() {
		o.typeError(key, "an array of objects", v)
		return nil
	}
	// Elements are objects, never arrays, so no nested call can take the
	// scratch list from under this one.
	out := o.st.objsScratch[:0]
	i := 0
	v.ForEach(func(_, e gjson.Result) bool {
		if e.IsObject() {
			out = append(out, o.st.object(o, key, i, e))
		} else {
			o.typeError(key+"["+strconv.Itoa(i)+"]", "an object", e)
		}
		i++
		return true
	})
	o.st.objsScratch = out
	defer clear(out)
	// Non-nil when empty: `[]` is a present, empty list.
	return append(make([]*Object, 0, len(out)), out...)
}

// Known records `unknown field "x"` for the first key of o that is not one
// of names, before any value of o is checked, so that a typo ("isuer") is
// reported as itself rather than as the `issuer: required` it causes. Err
// reports unread keys too, but only after every other error. Known marks
// nothing as read.
func (o *Object) Known(names ...string) {
	if o == nil {
		return
	}
	for _, f := range o.fields {
		if !slices.Contains(names, f.key) {
			o.fail("", "unknown field "+strconv.Quote(f.key))
			return
		}
	}
}

// Errorf records a validation error about key, which the filter found in a
// value the getters accepted (`must be > 0, got 0`). key may be "" for the
// object itself, or carry an index (`methods[1]`). Only the first error of a
// document is kept.
func (o *Object) Errorf(key, format string, args ...any) {
	o.fail(key, fmt.Sprintf(format, args...))
}

// Err returns the first error recorded anywhere in the document; failing
// that, the first key that no getter read, as `path: unknown field "x"`.
// Call it once, after reading everything: keys read after it are not
// noticed.
func (o *Object) Err() error {
	if o == nil {
		return nil
	}
	if o.st.err != nil {
		return o.st.err
	}
	for _, chunk := range o.st.chunks {
		for i := range chunk {
			obj := &chunk[i]
			for _, f := range obj.fields {
				if !f.read {
					return errors.New(prefix(obj.Path()) + "unknown field " + strconv.Quote(f.key))
				}
			}
		}
	}
	return nil
}

func (o *Object) find(key string) int {
	if o == nil {
		return -1
	}
	if o.index != nil {
		if i, ok := o.index[key]; ok {
			return i
		}
		return -1
	}
	for i := range o.fields {
		if o.fields[i].key == key {
			return i
		}
	}
	return -1
}

func (o *Object) get(key string) (gjson.Result, bool) {
	i := o.find(key)
	if i < 0 {
		return gjson.Result{}, false
	}
	o.fields[i].read = true
	return o.fields[i].val, true
}

func (o *Object) join(key string) string {
	path := o.Path()
	switch {
	case path == "":
		return key
	case key == "":
		return path
	}
	return path + "." + key
}

func prefix(path string) string {
	if path == "" {
		return ""
	}
	return path + ": "
}

func (o *Object) fail(key, msg string) {
	if o == nil || o.st.err != nil {
		return
	}
	o.st.err = errors.New(prefix(o.join(key)) + msg)
}

func (o *Object) typeError(key, want string, got gjson.Result) {
	o.fail(key, "must be "+want+", got "+show(got))
}

// maxShown keeps a message about a large value (a whole object pasted in
// the wrong place) to one readable line.
const maxShown = 64

// Show renders a JSON value for an error message: its JSON text with the
// insignificant whitespace removed, cut at 64 bytes. Filters use it for
// the messages they build themselves, so every error reads alike.
func Show(v gjson.Result) string { return show(v) }

func show(v gjson.Result) string {
	raw := v.Raw
	b := make([]byte, 0, min(len(raw), maxShown+8))
	inString, escaped := false, false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			continue
		}
		if len(b) == maxShown {
			return string(trimPartialRune(b)) + "..."
		}
		b = append(b, c)
	}
	return string(b)
}

// trimPartialRune drops a multi-byte character cut in half at the end of b.
func trimPartialRune(b []byte) []byte {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return b[:i]
			}
			break
		}
	}
	return b
}
