package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	jsonconfig "github.com/concierge-wasm/concierge/shared/config"
)

// testEnvelope parses an "envelope" object over the defaults.
func testEnvelope(tb testing.TB, object string) *envelopeConfig {
	tb.Helper()
	o, err := jsonconfig.Parse([]byte(`{"envelope": ` + object + `}`))
	if err != nil {
		tb.Fatalf("parsing envelope %s: %v", object, err)
	}
	e := parseEnvelope(o, defaultEnvelopeConfig())
	if err := o.Err(); err != nil {
		tb.Fatalf("parseEnvelope(%s) error = %v", object, err)
	}
	return &e
}

const testStamp = "2026-11-27T04:40:18.123Z" // testNow() in the envelope

// wrapped is the expected envelope of data with the default field names.
func wrapped(id, data string) string {
	return `{"requestId":"` + id + `","timestamp":"` + testStamp + `","data":` + data + `}`
}

func TestEnvelopeDecide(t *testing.T) {
	t.Parallel()
	json := testEnvelope(t, `{"enabled": true}`)
	small := testEnvelope(t, `{"enabled": true, "max_body_bytes": 10}`)
	only200 := testEnvelope(t, `{"enabled": true, "statuses": [200, 201]}`)
	problem := testEnvelope(t, `{"enabled": true, "content_types": ["application/json", "Application/Problem+JSON"]}`)
	disabled := testEnvelope(t, `{"enabled": false}`)
	ct := func(v string) [2]string { return [2]string{"content-type", v} }
	tests := []struct {
		name    string
		env     *envelopeConfig
		method  string
		status  int
		headers [][2]string
		want    string // "" = wrap, else the reason
		wantCL  int64
	}{
		{"json", json, "GET", 200, [][2]string{ct("application/json")}, "", -1},
		{"charset", json, "GET", 200, [][2]string{ct("application/json; charset=utf-8")}, "", -1},
		{"case and spaces", json, "POST", 201, [][2]string{ct(" Application/JSON ;charset=UTF-8")}, "", -1},
		{"other headers", json, "GET", 200, [][2]string{{"x-request-id", "application/xml"}, {"x-content-type", "text/html"},
			{"content-language", "gzip"}, ct("application/json"), {"date", "x"}}, "", -1},
		{"header name case", json, "GET", 200, [][2]string{{"Content-Type", "application/json"}}, "", -1},
		{"json suffix not listed", json, "GET", 200, [][2]string{ct("application/problem+json")}, skipContentType, -1},
		{"listed problem+json", problem, "GET", 404, [][2]string{ct("application/problem+json; charset=utf-8")}, "", -1},
		{"prefix is not a match", json, "GET", 200, [][2]string{ct("application/jsonx")}, skipContentType, -1},
		{"html", json, "GET", 200, [][2]string{ct("text/html")}, skipContentType, -1},
		{"empty content-type", json, "GET", 200, [][2]string{ct("")}, skipContentType, -1},
		{"no content-type", json, "GET", 200, nil, skipNoContentType, -1},
		{"two content-types", json, "GET", 200, [][2]string{ct("application/json"), ct("text/html")}, skipMultipleHeaderCTs, -1},
		{"HEAD", json, "HEAD", 200, [][2]string{ct("application/json")}, skipHead, -1},
		{"204", json, "GET", 204, [][2]string{ct("application/json")}, skipNoBodyStatus, -1},
		{"205", json, "GET", 205, [][2]string{ct("application/json")}, skipNoBodyStatus, -1},
		{"304", json, "GET", 304, [][2]string{ct("application/json")}, skipNoBodyStatus, -1},
		{"101", json, "GET", 101, [][2]string{ct("application/json")}, skipNoBodyStatus, -1},
		{"500 by default", json, "GET", 500, [][2]string{ct("application/json")}, "", -1},
		{"statuses selects 201", only200, "GET", 201, [][2]string{ct("application/json")}, "", -1},
		{"statuses skips 500", only200, "GET", 500, [][2]string{ct("application/json")}, skipStatus, -1},
		{"gzip", json, "GET", 200, [][2]string{ct("application/json"), {"content-encoding", "gzip"}}, skipContentEncoding, -1},
		{"br", json, "GET", 200, [][2]string{{"content-encoding", "br"}, ct("application/json")}, skipContentEncoding, -1},
		{"gzip after identity", json, "GET", 200, [][2]string{ct("application/json"), {"content-encoding", "identity, gzip"}}, skipContentEncoding, -1},
		{"identity", json, "GET", 200, [][2]string{ct("application/json"), {"Content-Encoding", "Identity"}}, "", -1},
		{"empty encoding", json, "GET", 200, [][2]string{ct("application/json"), {"content-encoding", ""}}, "", -1},
		{"content-length at 1 MiB", json, "GET", 200, [][2]string{ct("application/json"), {"content-length", "1048576"}}, "", 1048576},
		{"content-length over 1 MiB", json, "GET", 200, [][2]string{ct("application/json"), {"content-length", "1048577"}}, skipTooLarge, 1048577},
		{"content-length at limit", small, "GET", 200, [][2]string{ct("application/json"), {"content-length", "10"}}, "", 10},
		{"content-length over limit", small, "GET", 200, [][2]string{ct("application/json"), {"content-length", "11"}}, skipTooLarge, 11},
		{"content-length 0", json, "GET", 200, [][2]string{ct("application/json"), {"content-length", "0"}}, "", 0},
		{"repeated equal content-length", json, "GET", 200, [][2]string{ct("application/json"), {"content-length", "5"}, {"content-length", "5"}}, "", 5},
		{"conflicting content-length", json, "GET", 200, [][2]string{ct("application/json"), {"content-length", "5"}, {"content-length", "6"}}, skipBadContentLength, -1},
		{"negative content-length", json, "GET", 200, [][2]string{ct("application/json"), {"content-length", "-1"}}, skipBadContentLength, -1},
		{"huge content-length", json, "GET", 200, [][2]string{ct("application/json"), {"content-length", "99999999999999999999"}}, skipBadContentLength, -1},
		{"trailers announced", json, "GET", 200, [][2]string{ct("application/json"), {"Trailer", "x-checksum"}}, skipTrailers, -1},
		{"disabled", disabled, "GET", 200, [][2]string{ct("application/json")}, skipDisabled, -1},
		{"zero config", &envelopeConfig{enabled: true}, "GET", 200, [][2]string{ct("application/json")}, skipDisabled, -1},
	}
	for _, tt := range tests {
		d := tt.env.decide(tt.method, tt.status, tt.headers)
		wantWrap := tt.want == ""
		if d.wrap != wantWrap || d.reason != tt.want {
			t.Errorf("%s: decide(%s, %d, %q) = wrap %v reason %q, want wrap %v reason %q",
				tt.name, tt.method, tt.status, tt.headers, d.wrap, d.reason, wantWrap, tt.want)
		}
		if wantWrap && d.contentLength != tt.wantCL {
			t.Errorf("%s: decide(%s, %d, %q).contentLength = %d, want %d",
				tt.name, tt.method, tt.status, tt.headers, d.contentLength, tt.wantCL)
		}
	}
}

func TestEnvelopeWrap(t *testing.T) {
	t.Parallel()
	env := testEnvelope(t, `{"enabled": true}`)
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	tests := []struct {
		name string
		body string
		want string // "" = passes unchanged
	}{
		{"object", `{"a":1}`, wrapped("id", `{"a":1}`)},
		{"nested", `{"user":{"id":7,"tags":["a",{"b":[null,true,false]}]},"n":-1.5e3}`,
			wrapped("id", `{"user":{"id":7,"tags":["a",{"b":[null,true,false]}]},"n":-1.5e3}`)},
		{"array", `[1,2,3]`, wrapped("id", `[1,2,3]`)},
		{"empty array", `[]`, wrapped("id", `[]`)},
		{"empty object", `{}`, wrapped("id", `{}`)},
		{"string", `"hello"`, wrapped("id", `"hello"`)},
		{"number", `42`, wrapped("id", `42`)},
		{"true", `true`, wrapped("id", `true`)},
		{"null", `null`, wrapped("id", `null`)},
		{"utf-8", `{"name":"Zoë 😀 日本","esc":"\u00e9\n"}`, wrapped("id", `{"name":"Zoë 😀 日本","esc":"\u00e9\n"}`)},
		{"whitespace around", " \r\n\t{\"a\" : [ 1 ]}\n ", wrapped("id", `{"a" : [ 1 ]}`)},
		{"depth 9999", deep(9999), wrapped("id", deep(9999))},
		{"depth 10000", deep(10000), ""},
		{"brackets in strings are not depth", `["` + strings.Repeat("[", 20000) + `"]`, wrapped("id", `["`+strings.Repeat("[", 20000)+`"]`)},
		{"empty", ``, ""},
		{"whitespace only", " \n", ""},
		{"trailing comma", `{"a":1,}`, ""},
		{"two values", `{} {}`, ""},
		{"trailing garbage", `{"a":1}x`, ""},
		{"single quotes", `{'a':1}`, ""},
		{"bom", "\ufeff{}", ""},
		{"invalid utf-8 in string", "{\"a\":\"\xff\"}", ""},
		{"control char in string", "\"a\x01\"", ""},
		{"html", `<html></html>`, ""},
		{"nan", `NaN`, ""},
		{"leading zero", `01`, ""},
		{"unterminated", `{"a":`, ""},
	}
	for _, tt := range tests {
		got, ok := env.wrap(nil, []byte(tt.body), "id", testNow())
		if tt.want == "" {
			if ok || got != nil {
				t.Errorf("%s: wrap(%.40q) = %.80q, %v, want nil, false", tt.name, tt.body, got, ok)
			}
		} else if !ok || string(got) != tt.want {
			t.Errorf("%s: wrap(%.40q) = %.80q, %v, want %.80q, true", tt.name, tt.body, got, ok, tt.want)
		}
		if ok && !json.Valid(got) {
			t.Errorf("%s: wrap(%.40q) = %.80q: not valid JSON", tt.name, tt.body, got)
		}
		// The stream must agree with wrap, whole and in 1-byte chunks.
		for _, size := range []int{0, 1, 7} {
			want := tt.want
			if want == "" {
				want = tt.body
			}
			if got := runStream(t, env, "id", -1, chunks([]byte(tt.body), size, true)); string(got) != want {
				t.Errorf("%s: stream in %d-byte chunks of %.40q = %.80q, want %.80q", tt.name, size, tt.body, got, want)
			}
		}
	}
}

func TestEnvelopeWrapAppendsToDst(t *testing.T) {
	t.Parallel()
	env := testEnvelope(t, `{"enabled": true}`)
	got, ok := env.wrap([]byte("prefix:"), []byte(`1`), "id", testNow())
	if want := "prefix:" + wrapped("id", "1"); !ok || string(got) != want {
		t.Errorf("wrap(prefix:, 1) = %q, %v, want %q, true", got, ok, want)
	}
}

// chunks splits body into size-byte chunks (size 0: one chunk). With
// emptyEnd, the end of stream arrives as a separate empty chunk, as Envoy
// sometimes delivers it.
func chunks(body []byte, size int, emptyEnd bool) [][]byte {
	var out [][]byte
	if size <= 0 {
		size = max(len(body), 1)
	}
	for len(body) > size {
		out = append(out, body[:size])
		body = body[size:]
	}
	out = append(out, body)
	if emptyEnd && len(body) > 0 {
		out = append(out, nil)
	}
	return out
}

// runStream feeds chunks (the last is end of stream) through an
// envelopeStream as the wiring would, and returns what went downstream. It
// fails when the stream holds more than max_body_bytes or acts after
// passing through.
func runStream(tb testing.TB, env *envelopeConfig, id string, contentLength int64, chunks [][]byte) []byte {
	tb.Helper()
	var s envelopeStream
	s.start(env, id, contentLength)
	var out []byte
	passing := false
	for i, c := range chunks {
		eos := i == len(chunks)-1
		act, b := s.write(c, eos, testNow())
		if passing && act != bodyPass {
			tb.Fatalf("chunk %d: write() = %v after pass-through, want pass", i, act)
		}
		if s.buf != nil && len(s.buf)-s.head > env.maxBodyBytes || cap(s.buf) > s.head+env.maxBodyBytes+1 {
			tb.Fatalf("chunk %d: stream holds %d bytes (capacity %d), limit %d", i, len(s.buf)-s.head, cap(s.buf)-s.head, env.maxBodyBytes)
		}
		switch act {
		case bodyPass:
			out = append(out, c...)
			passing = true
		case bodyHold:
			if b != nil || eos {
				tb.Fatalf("chunk %d: write(eos=%v) = hold, %q", i, eos, b)
			}
		case bodyPrepend:
			out = append(out, b...)
			out = append(out, c...)
			passing = true
		case bodyReplace:
			if !eos {
				tb.Fatalf("chunk %d: write(eos=false) = replace", i)
			}
			out = append(out, b...)
		}
	}
	if s.flush() != nil {
		tb.Fatalf("flush() after end of stream returned bytes")
	}
	return out
}

func TestEnvelopeStreamLimit(t *testing.T) {
	t.Parallel()
	const limit = 64
	env := testEnvelope(t, `{"enabled": true, "max_body_bytes": 64}`)
	// A valid JSON string body of exactly n bytes.
	body := func(n int) []byte { return []byte(`"` + strings.Repeat("x", n-2) + `"`) }
	for _, size := range []int{0, 1, 3, limit, limit + 1} {
		for _, emptyEnd := range []bool{false, true} {
			for _, cl := range []int64{-1, limit} {
				at := body(limit)
				got := runStream(t, env, "id", cl, chunks(at, size, emptyEnd))
				if want := wrapped("id", string(at)); string(got) != want {
					t.Errorf("stream(%d bytes = limit, chunks %d, emptyEnd %v, cl %d) = %q, want %q", len(at), size, emptyEnd, cl, got, want)
				}
				over := body(limit + 1)
				if got := runStream(t, env, "id", cl, chunks(over, size, emptyEnd)); !bytes.Equal(got, over) {
					t.Errorf("stream(%d bytes = limit+1, chunks %d, emptyEnd %v, cl %d) = %q, want unchanged %q", len(over), size, emptyEnd, cl, got, over)
				}
			}
		}
	}
}

func TestEnvelopeStreamGivesBackOnOverflow(t *testing.T) {
	t.Parallel()
	env := testEnvelope(t, `{"enabled": true, "max_body_bytes": 10}`)
	var s envelopeStream
	s.start(env, "id", -1)
	steps := []struct {
		chunk   string
		eos     bool
		wantAct bodyAction
		wantOut string
	}{
		{"[1,2,", false, bodyHold, ""},
		{"3,4,", false, bodyHold, ""},
		{"5,6]", false, bodyPrepend, "[1,2,3,4,"}, // 9 held + 4 > 10
		{"   ", false, bodyPass, ""},
		{"", true, bodyPass, ""},
	}
	for i, st := range steps {
		act, out := s.write([]byte(st.chunk), st.eos, testNow())
		if act != st.wantAct || string(out) != st.wantOut {
			t.Errorf("step %d: write(%q, %v) = %v, %q, want %v, %q", i, st.chunk, st.eos, act, out, st.wantAct, st.wantOut)
		}
	}
}

func TestEnvelopeStreamFlush(t *testing.T) {
	t.Parallel()
	env := testEnvelope(t, `{"enabled": true}`)
	var s envelopeStream
	s.start(env, "id", -1)
	for _, c := range []string{`{"a":`, `1`} {
		if act, _ := s.write([]byte(c), false, testNow()); act != bodyHold {
			t.Fatalf("write(%q) = %v, want hold", c, act)
		}
	}
	if got := s.flush(); string(got) != `{"a":1` {
		t.Errorf("flush() = %q, want %q", got, `{"a":1`)
	}
	if act, out := s.write([]byte(`}`), true, testNow()); act != bodyPass || out != nil {
		t.Errorf("write after flush = %v, %q, want pass, nil", act, out)
	}
	var zero envelopeStream
	zero.start(&envelopeConfig{enabled: true, maxBodyBytes: 100}, "id", -1)
	if act, out := zero.write([]byte(`{}`), true, testNow()); act != bodyPass || out != nil {
		t.Errorf("write with an uncompiled envelopeConfig = %v, %q, want pass, nil", act, out)
	}
	var idle envelopeStream
	if act, out := idle.write([]byte(`{}`), true, testNow()); act != bodyPass || out != nil {
		t.Errorf("write without start = %v, %q, want pass, nil", act, out)
	}
	if got := idle.flush(); got != nil {
		t.Errorf("flush without start = %q, want nil", got)
	}
}

// TestEnvelopeStreamAllocs: wrapping a body that arrives in pieces with a
// known content-length allocates one buffer and copies the body once.
func TestEnvelopeStreamAllocs(t *testing.T) {
	env := testEnvelope(t, `{"enabled": true}`)
	body := benchBody(t, 4<<10)
	parts := chunks(body, 1000, true)
	var s envelopeStream
	allocs := testing.AllocsPerRun(20, func() {
		s.start(env, "0191e3c4-7b8e-7c1a-9f2e-3d4c5b6a7980", int64(len(body)))
		for i, c := range parts {
			s.write(c, i == len(parts)-1, testNow())
		}
	})
	if allocs > 1 {
		t.Errorf("stream of %d bytes with content-length: %v allocations, want <= 1", len(body), allocs)
	}
}

func TestEnvelopeEscaping(t *testing.T) {
	t.Parallel()
	hostile := []string{
		`a"b`, `a\b`, "line\r\nx-injected: 1", "\x00\x1f\x7f", "\u2028\u2029", "\xff\xfe", `</script><script>`,
		`","data":{"forged":1},"x":"`, "Zoë 😀",
	}
	for _, id := range hostile {
		env := testEnvelope(t, `{"enabled": true}`)
		got, ok := env.wrap(nil, []byte(`{"k":1}`), id, testNow())
		if !ok {
			t.Fatalf("wrap(id %q) = _, false, want true", id)
		}
		checkEnvelope(t, got, "requestId", "timestamp", "data", id, `{"k":1}`)
	}
	for _, name := range hostile {
		if name == "" {
			continue
		}
		fields, _ := json.Marshal(map[string]string{"request_id": name, "timestamp": "t" + name, "data": "d" + name})
		env := testEnvelope(t, `{"enabled": true, "fields": `+string(fields)+`}`)
		got, ok := env.wrap(nil, []byte(`[true]`), "id", testNow())
		if !ok {
			t.Fatalf("wrap(field %q) = _, false, want true", name)
		}
		// Invalid UTF-8 in a name comes out as U+FFFD.
		want := replaceInvalidUTF8(name)
		checkEnvelope(t, got, want, "t"+want, "d"+want, "id", `[true]`)
	}
}

// checkEnvelope fails unless out is valid JSON with exactly the three fields.
func checkEnvelope(tb testing.TB, out []byte, idField, tsField, dataField, id, data string) {
	tb.Helper()
	if !json.Valid(out) || !utf8.Valid(out) {
		tb.Fatalf("envelope %q: not valid JSON", out)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(out, &m); err != nil {
		tb.Fatalf("json.Unmarshal(%q) error = %v", out, err)
	}
	if len(m) != 3 {
		tb.Errorf("envelope %q: %d fields, want 3", out, len(m))
	}
	var gotID, gotTS string
	_ = json.Unmarshal(m[idField], &gotID)
	_ = json.Unmarshal(m[tsField], &gotTS)
	if want := replaceInvalidUTF8(id); gotID != want {
		tb.Errorf("envelope %q: %q = %q, want %q", out, idField, gotID, want)
	}
	if gotTS != testStamp {
		tb.Errorf("envelope %q: %q = %q, want %q", out, tsField, gotTS, testStamp)
	}
	if string(m[dataField]) != data {
		tb.Errorf("envelope %q: %q = %s, want %s", out, dataField, m[dataField], data)
	}
}

// replaceInvalidUTF8 replaces each byte of s that is not part of valid UTF-8
// with U+FFFD, as appendJSONString (and encoding/json) do.
func replaceInvalidUTF8(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		b.WriteRune(r) // RuneError is U+FFFD
		i += size
	}
	return b.String()
}

func TestAppendTimestamp(t *testing.T) {
	t.Parallel()
	est := time.FixedZone("EST", -5*3600)
	tests := []struct {
		in   time.Time
		want string
	}{
		{testNow(), testStamp},
		{time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "2026-01-02T03:04:05.000Z"},
		{time.Date(2026, 12, 31, 23, 59, 59, 999999999, time.UTC), "2026-12-31T23:59:59.999Z"},
		{time.Date(2026, 11, 26, 23, 40, 18, 7e6, est), "2026-11-27T04:40:18.007Z"},
		{time.Unix(0, 0), "1970-01-01T00:00:00.000Z"},
		{time.Date(12345, 1, 1, 0, 0, 0, 0, time.UTC), "9999-01-01T00:00:00.000Z"},
		{time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC), "0000-01-01T00:00:00.000Z"},
	}
	for _, tt := range tests {
		if got := string(appendTimestamp(nil, tt.in)); got != tt.want {
			t.Errorf("appendTimestamp(%v) = %q, want %q", tt.in, got, tt.want)
		}
		if tt.in.Year() >= 0 && tt.in.Year() <= 9999 {
			if want := tt.in.UTC().Format("2006-01-02T15:04:05.000Z"); tt.want != want {
				t.Errorf("test table: %v formats as %q, table says %q", tt.in, want, tt.want)
			}
		}
	}
}

func TestValidJSONDepthMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, n := range []int{9999, 10000, 10001} {
		for _, doc := range [][]byte{
			[]byte(strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n)),
			[]byte(strings.Repeat(`[`, n) + strings.Repeat("]", n)),
		} {
			if got, want := validJSON(doc, maxValidDepth), json.Valid(doc); got != want {
				t.Errorf("validJSON(depth %d, %.3s…) = %v, json.Valid = %v", n, doc, got, want)
			}
			if got, want := validJSONBody(doc), n <= maxEnvelopeDepth; got != want {
				t.Errorf("validJSONBody(depth %d, %.3s…) = %v, want %v", n, doc, got, want)
			}
			// The envelope adds one level; encoding/json must still accept it.
			if wrappedDoc := []byte(`{"d":` + string(doc) + `}`); n <= maxEnvelopeDepth && !json.Valid(wrappedDoc) {
				t.Errorf("json.Valid(depth %d + 1) = false: maxEnvelopeDepth too large", n)
			}
		}
	}
}

func TestEnvelopeCompileFieldNames(t *testing.T) {
	t.Parallel()
	env := testEnvelope(t, `{"enabled": true, "fields": {"request_id": "id", "timestamp": "at", "data": "payload"}}`)
	got, _ := env.wrap(nil, []byte(`{}`), "r1", testNow())
	if want := `{"id":"r1","at":"` + testStamp + `","payload":{}}`; string(got) != want {
		t.Errorf("wrap with custom fields = %s, want %s", got, want)
	}
	if got, want := env.prefixLen("r1"), len(got)-len(`{}`)-len(`}`); got != want {
		t.Errorf("prefixLen(r1) = %d, want %d", got, want)
	}
}

// TestValidJSON: validJSON agrees with encoding/json.Valid, and
// validJSONBody also requires UTF-8.
func TestValidJSON(t *testing.T) {
	t.Parallel()
	long := strings.Repeat(`{"name":"user 1","email":"u@example.com","tags":["a","b"],"n":-1.5e+3},`, 200)
	for _, body := range []string{
		`{"a":1}`, `[1,2]`, `"s"`, `0`, `-0`, `-1.5e-3`, `1E+2`, `true`, `false`, `null`, `[]`, `{}`, ` [ ] `, "\t{\n}\r\n",
		`{"a":1,}`, `01`, `[1 2]`, `{"a" 1}`, `"\u12"`, `"\u12g4"`, `"\uABcd"`, "\"\t\"", "\"\x7f\"", `"\/"`, `"\x"`,
		`.5`, `+1`, `1.`, `1.e5`, `1e`, `-`, `--1`, `{}{}`, `[]]`, `[[]`, `{"a":}`, `{,}`, `[,]`, `[1,]`, `{"a":1 "b":2}`,
		`tru`, `nul`, `nulll`, `True`, `"abc`, `"abc\"`, `"a\\"`, "\"a\x00b\"", "\"\x1f\"", `"12345678\"1234567"`,
		"{\"a\":\"\xff\"}", `{"a":[{"b":{"c":[null,true,false,"x",1]}}]}`, `"` + strings.Repeat("x", 100) + `"`,
		"[" + long + "1]", "[" + long + "1,]", "[" + long + "01]", "[" + long + "\"\xff\"]", "[" + long + "\"\x01\"]",
		"", " ", "\xef\xbb\xbf{}", "{}\x00",
	} {
		checkValidJSON(t, []byte(body))
	}
}
