package config

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// errString flattens an error for comparison; "" means no error.
func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// mustParse parses a document the test expects to be well-formed JSON.
func mustParse(t testing.TB, doc string) *Object {
	t.Helper()
	o, err := Parse([]byte(doc))
	if err != nil {
		t.Fatalf("Parse(%q) error = %v, want nil", doc, err)
	}
	return o
}

func TestParseDocument(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want string
	}{
		{"empty input means {}", "", ""},
		{"blank input means {}", " \n\t\r ", ""},
		{"empty object", "{}", ""},
		{"surrounding whitespace", " \n{ } \n", ""},
		{"array", "[1,2]", "configuration must be a JSON object, got [1,2]"},
		{"null", "null", "configuration must be a JSON object, got null"},
		{"string", `"x"`, `configuration must be a JSON object, got "x"`},
		{"number", `5`, `configuration must be a JSON object, got 5`},
		{"missing value", `{"a":}`, `invalid JSON: line 1, column 6: unexpected '}'`},
		{"trailing comma", "{\n  \"a\": 1,\n}", `invalid JSON: line 3, column 1: unexpected '}'`},
		{"unterminated", `{"a": "b`, `invalid JSON: line 1, column 9: unterminated string`},
		{"truncated", `{"a": 1`, `invalid JSON: line 1, column 8: unexpected end of input`},
		{"two values", `{} {}`, `invalid JSON: line 1, column 4: unexpected data after the top-level value`},
		{"single quotes", `{'a': 1}`, `invalid JSON: line 1, column 2: unexpected '\''`},
		{"non-ASCII outside string", `{"a": é}`, `invalid JSON: line 1, column 7: unexpected 'é'`},
		{"bad escape", `{"a": "\x"}`, `invalid JSON: line 1, column 9: invalid escape "\\x" in string`},
		{"bad unicode escape", `{"a": "\u12g4"}`, `invalid JSON: line 1, column 12: invalid \u escape in string`},
		{"raw newline in string", "{\"a\": \"x\ny\"}", `invalid JSON: line 1, column 9: control character '\n' in string`},
		{"leading zero", `{"a": 01}`, `invalid JSON: line 1, column 8: unexpected '1'`},
		{"bare minus", `{"a": -}`, `invalid JSON: line 1, column 8: unexpected '}'`},
		{"bad literal", `{"a": tru}`, `invalid JSON: line 1, column 10: unexpected '}'`},
		{"too deep", strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1),
			"invalid JSON: line 1, column 1001: nesting deeper than 1000 levels"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o, err := Parse([]byte(tt.doc))
			if got := errString(err); got != tt.want {
				t.Fatalf("Parse(%q) error = %q, want %q", tt.doc, got, tt.want)
			}
			if err == nil {
				if got := errString(o.Err()); got != "" {
					t.Errorf("Parse(%q).Err() = %q, want nil", tt.doc, got)
				}
			}
		})
	}
}

// TestErrors pins the exact messages filters show to operators.
func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		read func(o *Object)
		want string
	}{
		{
			name: "all keys read",
			doc:  `{"realm":"api","limits":[{"max_tokens":5,"fill_interval":"1s"}]}`,
			read: func(o *Object) {
				o.String("realm", "")
				for _, l := range o.Objects("limits") {
					l.Int("max_tokens", 0)
					l.Duration("fill_interval", 0)
				}
			},
			want: "",
		},
		{
			name: "top-level type error has no prefix",
			doc:  `{"realm":3}`,
			read: func(o *Object) { o.String("realm", "") },
			want: "realm: must be a string, got 3",
		},
		{
			name: "duration given as number",
			doc:  `{"limits":[{"fill_interval":5}]}`,
			read: func(o *Object) {
				for _, l := range o.Objects("limits") {
					l.Duration("fill_interval", 0)
				}
			},
			want: `limits[0].fill_interval: must be a duration string like "500ms", got 5`,
		},
		{
			name: "duration string without unit",
			doc:  `{"timeout":"5"}`,
			read: func(o *Object) { o.Duration("timeout", 0) },
			want: `timeout: must be a duration string like "500ms", got "5"`,
		},
		{
			name: "validation error from the filter",
			doc:  `{"limits":[{"max_tokens":1},{"max_tokens":0}]}`,
			read: func(o *Object) {
				for _, l := range o.Objects("limits") {
					if n := l.Int("max_tokens", 0); n <= 0 {
						l.Errorf("max_tokens", "must be > 0, got %d", n)
					}
				}
			},
			want: "limits[1].max_tokens: must be > 0, got 0",
		},
		{
			name: "validation error about the object itself",
			doc:  `{"match":{"prefix":"/a","path":"/b"}}`,
			read: func(o *Object) {
				m, _ := o.Object("match")
				m.String("prefix", "")
				m.String("path", "")
				m.Errorf("", "prefix and path are mutually exclusive")
			},
			want: "match: prefix and path are mutually exclusive",
		},
		{
			name: "validation error about the document",
			doc:  `{}`,
			read: func(o *Object) { o.Errorf("", "at least one of a, b is required") },
			want: "at least one of a, b is required",
		},
		{
			name: "validation error with an index",
			doc:  `{"methods":["GET",""]}`,
			read: func(o *Object) {
				o.Strings("methods", nil)
				o.Errorf("methods[1]", "must not be empty")
			},
			want: "methods[1]: must not be empty",
		},
		{
			name: "unknown nested field",
			doc:  `{"limits":[{"max_tokens":5,"max_tokns":6}]}`,
			read: func(o *Object) {
				for _, l := range o.Objects("limits") {
					l.Int("max_tokens", 0)
				}
			},
			want: `limits[0]: unknown field "max_tokns"`,
		},
		{
			name: "unknown top-level field",
			doc:  `{"realm":"a","relam":"b"}`,
			read: func(o *Object) { o.String("realm", "") },
			want: `unknown field "relam"`,
		},
		{
			name: "unknown field in an object two levels down",
			doc:  `{"a":{"b":{"c":1}}}`,
			read: func(o *Object) {
				a, _ := o.Object("a")
				a.Object("b")
			},
			want: `a.b: unknown field "c"`,
		},
		{
			name: "nested object never opened is one unknown field",
			doc:  `{"a":{"b":1}}`,
			read: func(o *Object) {},
			want: `unknown field "a"`,
		},
		{
			name: "type errors come before unknown fields",
			doc:  `{"zzz":1,"realm":3}`,
			read: func(o *Object) { o.String("realm", "") },
			want: "realm: must be a string, got 3",
		},
		{
			name: "first error wins",
			doc:  `{"a":1,"b":2}`,
			read: func(o *Object) {
				o.String("b", "")
				o.String("a", "")
			},
			want: "b: must be a string, got 2",
		},
		{
			name: "Has does not count as reading",
			doc:  `{"a":1}`,
			read: func(o *Object) { o.Has("a") },
			want: `unknown field "a"`,
		},
		{
			name: "Keys does not count as reading",
			doc:  `{"a":1}`,
			read: func(o *Object) { o.Keys() },
			want: `unknown field "a"`,
		},
		{
			name: "Raw counts as reading",
			doc:  `{"a":{"anything":[1]}}`,
			read: func(o *Object) { o.Raw("a") },
			want: "",
		},
		{
			name: "duplicate top-level key",
			doc:  `{"a":1,"b":2,"a":3}`,
			read: func(o *Object) { o.Int("a", 0); o.Int("b", 0) },
			want: `duplicate field "a"`,
		},
		{
			name: "duplicate nested key",
			doc:  `{"limits":[{"x":1,"x":1}]}`,
			read: func(o *Object) {
				for _, l := range o.Objects("limits") {
					l.Int("x", 0)
				}
			},
			want: `limits[0]: duplicate field "x"`,
		},
		{
			name: "duplicate key in a large object",
			doc:  `{` + manyKeys(20) + `,"k7":0}`,
			read: func(o *Object) {
				for _, k := range o.Keys() {
					o.Int(k, 0)
				}
			},
			want: `duplicate field "k7"`,
		},
		{
			name: "large object read through the index",
			doc:  `{` + manyKeys(40) + `}`,
			read: func(o *Object) {
				for i := 39; i >= 0; i-- {
					o.Int("k"+itoa(i), 0)
				}
			},
			want: "",
		},
		{
			name: "large object with an unread key",
			doc:  `{` + manyKeys(40) + `}`,
			read: func(o *Object) {
				for i := 0; i < 40; i++ {
					if i != 33 {
						o.Int("k"+itoa(i), 0)
					}
				}
			},
			want: `unknown field "k33"`,
		},
		{
			name: "null is a type error",
			doc:  `{"rules":null}`,
			read: func(o *Object) { o.Objects("rules") },
			want: "rules: must be an array of objects, got null",
		},
		{
			name: "bool given as string",
			doc:  `{"shadow":"true"}`,
			read: func(o *Object) { o.Bool("shadow", false) },
			want: `shadow: must be a boolean, got "true"`,
		},
		{
			name: "int given as float",
			doc:  `{"n":1.5}`,
			read: func(o *Object) { o.Int("n", 0) },
			want: "n: must be an integer, got 1.5",
		},
		{
			name: "int given as string",
			doc:  `{"n":"1"}`,
			read: func(o *Object) { o.Int("n", 0) },
			want: `n: must be an integer, got "1"`,
		},
		{
			name: "int with exponent",
			doc:  `{"n":1e3}`,
			read: func(o *Object) { o.Int("n", 0) },
			want: "n: must be an integer, got 1e3",
		},
		{
			name: "int out of range",
			doc:  `{"n":9223372036854775808}`,
			read: func(o *Object) { o.Int("n", 0) },
			want: "n: must be an integer between -9223372036854775808 and 9223372036854775807, got 9223372036854775808",
		},
		{
			name: "strings given as string",
			doc:  `{"methods":"GET"}`,
			read: func(o *Object) { o.Strings("methods", nil) },
			want: `methods: must be an array of strings, got "GET"`,
		},
		{
			name: "strings element of wrong type",
			doc:  `{"m":{"methods":["GET",3]}}`,
			read: func(o *Object) {
				m, _ := o.Object("m")
				m.Strings("methods", nil)
			},
			want: "m.methods[1]: must be a string, got 3",
		},
		{
			name: "object given as array",
			doc:  `{"match":[]}`,
			read: func(o *Object) { o.Object("match") },
			want: "match: must be an object, got []",
		},
		{
			name: "objects element of wrong type",
			doc:  `{"rules":[{},"x",{}]}`,
			read: func(o *Object) { o.Objects("rules") },
			want: `rules[1]: must be an object, got "x"`,
		},
		{
			name: "enum",
			doc:  `{"error_format":"xml"}`,
			read: func(o *Object) { o.Enum("error_format", "json", "json", "problem+json") },
			want: `error_format: must be one of "json", "problem+json", got "xml"`,
		},
		{
			name: "long value is compacted and cut",
			doc: `{"realm": {
				"a": "0123456789",
				"b": "0123456789",
				"c": "0123456789",
				"d": "0123456789"
			}}`,
			read: func(o *Object) { o.String("realm", "") },
			want: `realm: must be a string, got {"a":"0123456789","b":"0123456789","c":"0123456789","d":"0123456...`,
		},
		{
			name: "whitespace inside strings is kept",
			doc:  `{"n": "a  b"}`,
			read: func(o *Object) { o.Int("n", 0) },
			want: `n: must be an integer, got "a  b"`,
		},
		{
			name: "cut never splits a character",
			doc:  `{"n":"` + strings.Repeat("a", 62) + `é"}`,
			read: func(o *Object) { o.Int("n", 0) },
			want: `n: must be an integer, got "` + strings.Repeat("a", 62) + `...`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := mustParse(t, tt.doc)
			tt.read(o)
			if got := errString(o.Err()); got != tt.want {
				t.Errorf("Err() after reading %s = %q, want %q", tt.doc, got, tt.want)
			}
		})
	}
}

func manyKeys(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"k` + itoa(i) + `":` + itoa(i))
	}
	return b.String()
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}

// TestValues checks what the getters return, for present, absent and bad
// values (a bad value yields the default).
func TestValues(t *testing.T) {
	doc := `{
		"s": "x\u00e9\"", "b": true, "f": false, "i": -42, "z": 0,
		"d": "1m30s", "neg": "-2s", "ss": ["a", "b"], "empty": [],
		"o": {"k": "v"}, "os": [{"k": 1}, {"k": 2}],
		"bad": {}, "e": "problem+json"
	}`
	tests := []struct {
		name string
		read func(o *Object) any
		want any
	}{
		{"String", func(o *Object) any { return o.String("s", "def") }, "xé\""},
		{"String absent", func(o *Object) any { return o.String("nope", "def") }, "def"},
		{"String bad", func(o *Object) any { return o.String("bad", "def") }, "def"},
		{"Bool true", func(o *Object) any { return o.Bool("b", false) }, true},
		{"Bool false", func(o *Object) any { return o.Bool("f", true) }, false},
		{"Bool absent", func(o *Object) any { return o.Bool("nope", true) }, true},
		{"Bool bad", func(o *Object) any { return o.Bool("bad", true) }, true},
		{"Int", func(o *Object) any { return o.Int("i", 7) }, -42},
		{"Int zero", func(o *Object) any { return o.Int("z", 7) }, 0},
		{"Int absent", func(o *Object) any { return o.Int("nope", 7) }, 7},
		{"Int bad", func(o *Object) any { return o.Int("s", 7) }, 7},
		{"Duration", func(o *Object) any { return o.Duration("d", 0) }, 90 * time.Second},
		{"Duration negative", func(o *Object) any { return o.Duration("neg", 0) }, -2 * time.Second},
		{"Duration absent", func(o *Object) any { return o.Duration("nope", time.Second) }, time.Second},
		{"Duration bad", func(o *Object) any { return o.Duration("s", time.Second) }, time.Second},
		{"Strings", func(o *Object) any { return o.Strings("ss", nil) }, []string{"a", "b"}},
		{"Strings empty is not nil", func(o *Object) any { return o.Strings("empty", nil) }, []string{}},
		{"Strings absent", func(o *Object) any { return o.Strings("nope", []string{"d"}) }, []string{"d"}},
		{"Strings bad", func(o *Object) any { return o.Strings("os", []string{"d"}) }, []string{"d"}},
		{"Enum", func(o *Object) any { return o.Enum("e", "json", "json", "problem+json") }, "problem+json"},
		{"Enum absent", func(o *Object) any { return o.Enum("nope", "json", "json", "problem+json") }, "json"},
		{"Object", func(o *Object) any {
			c, ok := o.Object("o")
			return []any{ok, c.Path(), c.String("k", "")}
		}, []any{true, "o", "v"}},
		{"Object absent", func(o *Object) any {
			c, ok := o.Object("nope")
			return []any{ok, c == nil}
		}, []any{false, true}},
		{"Object bad", func(o *Object) any {
			c, ok := o.Object("s")
			return []any{ok, c == nil}
		}, []any{false, true}},
		{"Objects", func(o *Object) any {
			var got []any
			for _, c := range o.Objects("os") {
				got = append(got, c.Path(), c.Int("k", 0))
			}
			return got
		}, []any{"os[0]", 1, "os[1]", 2}},
		{"Objects empty is not nil", func(o *Object) any { return o.Objects("empty") != nil }, true},
		{"Objects absent", func(o *Object) any { return o.Objects("nope") == nil }, true},
		{"Raw", func(o *Object) any { return o.Raw("os").Raw }, `[{"k": 1}, {"k": 2}]`},
		{"Raw absent", func(o *Object) any { return o.Raw("nope").Exists() }, false},
		{"Has", func(o *Object) any { return []bool{o.Has("s"), o.Has("nope")} }, []bool{true, false}},
		{"Path at top level", func(o *Object) any { return o.Path() }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := mustParse(t, doc)
			if got := tt.read(o); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s = %#v, want %#v", tt.name, got, tt.want)
			}
		})
	}
}

func TestKeysInDocumentOrder(t *testing.T) {
	t.Parallel()
	o := mustParse(t, `{"b":1,"a":2,"c":{"x":1}}`)
	want := []string{"b", "a", "c"}
	if got := o.Keys(); !reflect.DeepEqual(got, want) {
		t.Errorf("Keys() = %q, want %q", got, want)
	}
}

// TestNilObject pins that an absent optional object can be read without a
// nil check and contributes nothing.
func TestNilObject(t *testing.T) {
	t.Parallel()
	var o *Object
	got := []any{
		o.String("a", "d"), o.Bool("a", true), o.Int("a", 3), o.Duration("a", time.Second),
		o.Strings("a", nil) == nil, o.Objects("a") == nil, o.Raw("a").Exists(), o.Has("a"),
		o.Path(), o.Keys() == nil, o.Err() == nil, o.Enum("a", "x", "x"),
	}
	want := []any{"d", true, 3, time.Second, true, true, false, false, "", true, true, "x"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("getters on nil *Object = %v, want %v", got, want)
	}
	o.Errorf("a", "ignored") // must not panic
	if c, ok := o.Object("a"); c != nil || ok {
		t.Errorf("nil.Object(a) = %v, %v, want nil, false", c, ok)
	}
}

// TestErrFromChild pins that Err on a nested object reports the whole
// document, so a helper handed only a sub-object cannot lose errors.
func TestErrFromChild(t *testing.T) {
	t.Parallel()
	o := mustParse(t, `{"a":{"b":1},"c":"x"}`)
	a, _ := o.Object("a")
	a.Int("b", 0)
	o.Int("c", 0)
	const want = `c: must be an integer, got "x"`
	if got := errString(a.Err()); got != want {
		t.Errorf("child Err() = %q, want %q", got, want)
	}
}

// TestPathsOfDeepObjects pins the paths that are built only when asked for:
// through objects and arrays, an empty key, and an element past the first
// allocation batch of objects.
func TestPathsOfDeepObjects(t *testing.T) {
	t.Parallel()
	o := mustParse(t, `{"a":{"b":[{"c":{}},{"d":[{},{},{},{},{},{"e":1}]}],"":{"f":2}}}`)
	a, _ := o.Object("a")
	bs := a.Objects("b")
	c, _ := bs[0].Object("c")
	ds := bs[1].Objects("d")
	empty, _ := a.Object("")
	got := []string{a.Path(), bs[0].Path(), bs[1].Path(), c.Path(), ds[0].Path(), ds[5].Path(), empty.Path()}
	want := []string{"a", "a.b[0]", "a.b[1]", "a.b[0].c", "a.b[1].d[0]", "a.b[1].d[5]", "a"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("paths = %q, want %q", got, want)
	}
	ds[5].Errorf("e", "bad")
	if got, want := errString(o.Err()), "a.b[1].d[5].e: bad"; got != want {
		t.Errorf("Err() = %q, want %q", got, want)
	}
}

// TestUnreadInLaterBatch pins that Err finds an unread key in an object
// created after many others (past several allocation batches).
func TestUnreadInLaterBatch(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString(`{"xs":[`)
	for i := range 100 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"k":1}`)
	}
	b.WriteString(`,{"k":1,"typo":2}]}`)
	o := mustParse(t, b.String())
	for _, x := range o.Objects("xs") {
		x.Int("k", 0)
	}
	if got, want := errString(o.Err()), `xs[100]: unknown field "typo"`; got != want {
		t.Errorf("Err() = %q, want %q", got, want)
	}
}

func TestKnown(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, doc string
		names     []string
		want      string
	}{
		{"all known", `{"a":{"x":1,"y":2}}`, []string{"x", "y", "z"}, ""},
		{"first unknown wins", `{"a":{"x":1,"q":2,"r":3}}`, []string{"x"}, `a: unknown field "q"`},
		{"before a later error", `{"a":{"q":1,"x":"s"}}`, []string{"x"}, `a: unknown field "q"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := mustParse(t, tt.doc)
			a, _ := o.Object("a")
			a.Known(tt.names...)
			a.Int("x", 0)
			a.Int("y", 0)
			if got := errString(o.Err()); got != tt.want {
				t.Errorf("Err() = %q, want %q", got, tt.want)
			}
		})
	}
	var nilObj *Object
	nilObj.Known("x") // must not panic
}

// TestFieldsAcrossBatches pins that an object whose fields do not fit in
// what is left of the current batch keeps all of them, in order, and that
// objects read before and after it keep theirs.
func TestFieldsAcrossBatches(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString(`{"a":{"x":1,"y":2,"z":3},"big":{`)
	for i := range 100 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"f%d":%d`, i, i)
	}
	b.WriteString(`},"c":{"x":7,"typo":8}}`)
	o := mustParse(t, b.String())
	a, _ := o.Object("a")
	big, _ := o.Object("big")
	c, _ := o.Object("c")
	if got := []int{a.Int("x", 0), a.Int("y", 0), a.Int("z", 0), c.Int("x", 0)}; !reflect.DeepEqual(got, []int{1, 2, 3, 7}) {
		t.Errorf("small objects read %v, want [1 2 3 7]", got)
	}
	keys := big.Keys()
	if len(keys) != 100 {
		t.Fatalf("big has %d keys, want 100", len(keys))
	}
	for i, k := range keys {
		if want := fmt.Sprintf("f%d", i); k != want {
			t.Fatalf("key %d = %q, want %q", i, k, want)
		}
		if v := big.Int(k, -1); v != i {
			t.Errorf("%s = %d, want %d", k, v, i)
		}
	}
	if got, want := errString(o.Err()), `c: unknown field "typo"`; got != want {
		t.Errorf("Err() = %q, want %q", got, want)
	}
}
