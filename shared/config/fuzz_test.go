package config

import (
	"encoding/json"
	"testing"
)

// FuzzCheckSyntax keeps the hand-written scanner in step with the standard
// library on what is valid JSON.
func FuzzCheckSyntax(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `[]`, `{"a":[1,-2.5e+3,true,false,null,"x\u00e9\n"]}`, `{"a":}`, `[1,]`,
		`"\ud800"`, "\"\xff\"", `01`, `-`, `1.`, `1e`, `{"a" 1}`, ` 1 `, `tru`, `[[[[`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := checkSyntax(data)
		if want := json.Valid(data); (err == nil) != want {
			t.Fatalf("checkSyntax(%q) = %v, but json.Valid = %v", data, err, want)
		}
	})
}

// FuzzParse checks that no document makes Parse or the getters panic, and
// that a document Parse accepts is one JSON object.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `{"a":1,"a":2}`, `{"rules":[{"match":{"prefix":"/"}},3]}`,
		`{"s":"x","d":"1s","i":1.5,"ss":["a",1],"o":{"k":null}}`, `[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := Parse(data)
		if err != nil {
			return
		}
		if !isBlank(data) {
			var v map[string]any
			if jerr := json.Unmarshal(data, &v); jerr != nil || v == nil {
				t.Fatalf("Parse(%q) accepted a document encoding/json reads as %v (%v)", data, v, jerr)
			}
		}
		for _, k := range o.Keys() {
			o.String(k, "")
			o.Bool(k, false)
			o.Int(k, 0)
			o.Duration(k, 0)
			o.Strings(k, nil)
			o.Enum(k, "", "a")
			for _, c := range o.Objects(k) {
				c.Keys()
			}
			if c, ok := o.Object(k); ok {
				c.Err()
			}
		}
		_ = o.Err()
	})
}
