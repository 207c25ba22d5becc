package main

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzEnvelope: the transform never panics; whenever it wraps, the output
// is valid JSON holding exactly the request ID, the timestamp and the body;
// otherwise the body goes through byte for byte. The stream, fed the same
// body in random chunks under a random limit, agrees with wrap.
func FuzzEnvelope(f *testing.F) {
	seeds := []string{
		`{"a":1}`, `[1,2,3]`, `"x"`, `42`, `null`, ` {"nested":{"a":[{"b":null}]}} `,
		`{"a":1,}`, `{} {}`, "\xff", `{"é":"😀"}`, "", " ", `[`, `"\u2028"`, "{\"a\":\"\x00\"}",
		strings.Repeat("[", 30) + strings.Repeat("]", 30),
	}
	for i, s := range seeds {
		f.Add([]byte(s), "0191e3c4-7b8e-7c1a-9f2e-3d4c5b6a7980", "data", uint64(i), uint16(i*7))
	}
	f.Add([]byte(`{"k":"v"}`), "a\"b\\c\r\n\xff", "d\"\u2028", uint64(99), uint16(3))
	f.Fuzz(func(t *testing.T, body []byte, id, dataField string, seed uint64, limit uint16) {
		if dataField == "" || dataField == "requestId" || dataField == "timestamp" {
			dataField = "data"
		}
		env := &envelopeConfig{
			enabled:      true,
			maxBodyBytes: int(limit) + 1,
			fields:       envelopeFields{requestID: "requestId", timestamp: "timestamp", data: dataField},
		}
		env.compile()
		orig := bytes.Clone(body)

		out, ok := env.wrap(nil, body, id, testNow())
		if !bytes.Equal(body, orig) {
			t.Fatalf("wrap modified its input")
		}
		if ok {
			checkEnvelope(t, out, "requestId", "timestamp", replaceInvalidUTF8(dataField), id, string(trimJSONSpace(body)))
			if len(out) != env.prefixLen(id)+len(trimJSONSpace(body))+1 {
				t.Fatalf("wrap(%q) is %d bytes, prefixLen says %d + body + 1", body, len(out), env.prefixLen(id))
			}
		} else if out != nil {
			t.Fatalf("wrap(%q) = %q, false, want nil", body, out)
		}

		// The stream, in random chunk sizes (including empty ones).
		r := rand.New(rand.NewPCG(seed, seed>>32))
		var parts [][]byte
		for rest := body; ; {
			n := min(r.IntN(max(len(body)/3, 2)+1), len(rest))
			parts = append(parts, rest[:n])
			rest = rest[n:]
			if len(rest) == 0 {
				break
			}
		}
		if r.IntN(2) == 0 {
			parts = append(parts, nil)
		}
		got := runStream(t, env, id, -1, parts)
		want := orig
		if ok && len(body) <= env.maxBodyBytes {
			want = out
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("stream(%q in %d chunks, limit %d) = %q, want %q", body, len(parts), env.maxBodyBytes, got, want)
		}
		if !bytes.Equal(body, orig) {
			t.Fatalf("stream modified its input")
		}
	})
}

// FuzzValidators: the validators never panic and what they accept is safe
// in a header.
func FuzzValidators(f *testing.F) {
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	f.Add("abc")
	f.Fuzz(func(t *testing.T, s string) {
		if validIncomingID(s) && strings.ContainsAny(s, "\r\n\x00 ,;\"") {
			t.Fatalf("validIncomingID(%q) = true", s)
		}
		if validTraceparent(s) && (len(s) < traceparentLen || strings.ContainsAny(s[:traceparentLen], "\r\n\x00 ,;\"ABCDEF")) {
			t.Fatalf("validTraceparent(%q) = true", s)
		}
	})
}

// FuzzValidJSON: validJSON agrees with encoding/json.Valid on every input,
// and validJSONBody also requires UTF-8.
func FuzzValidJSON(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `01`, `1.`, `-`, `"\u12"`, `[1,]`, "\"\x7f\"", `1e5`, `-0.0e-0`,
		`{"a" 1}`, ` `, `[]]`, `tru`, `nul`, "\"\t\"", `"\/"`, `1E+2`, `.5`, `+1`, `[1 2]`, `{"a":1 "b":2}`,
		`"12345678\"12345678"`, "\"1234567\x1f12345678\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkValidJSON(t, b)
	})
}

func checkValidJSON(tb testing.TB, b []byte) {
	tb.Helper()
	std := json.Valid(b)
	if got := validJSON(b, maxValidDepth); got != std {
		tb.Fatalf("validJSON(%q) = %v, json.Valid = %v", b, got, std)
	}
	if got, want := validJSONBody(b), std && utf8.Valid(b); got != want {
		tb.Fatalf("validJSONBody(%q) = %v, want %v", b, got, want)
	}
}
