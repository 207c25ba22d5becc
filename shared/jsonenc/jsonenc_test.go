package jsonenc

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestAppendString(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", `""`},
		{"plain", `"plain"`},
		{`a "quoted" \ path`, `"a \"quoted\" \\ path"`},
		{"line\nbreak\r\ttab", `"line\nbreak\r\ttab"`},
		{"\x00\x1f\x7f", `"\u0000\u001f` + "\x7f" + `"`},
		{"<script>&", `"<script>&"`},
		{"héllo, 世界", `"héllo, 世界"`},
		{"bad\xffutf8\xc3", "\"bad\ufffdutf8\ufffd\""},
		{"\u2028\u2029", `"\u2028\u2029"`},
		{"\b\f", `"\u0008\u000c"`},
		{"é😀", `"é😀"`},
		{"\xed\xa0\x80", "\"\ufffd\ufffd\ufffd\""}, // an encoded surrogate is not UTF-8
	}
	for _, tt := range tests {
		got := string(AppendString(nil, tt.in))
		if got != tt.want {
			t.Errorf("AppendString(%q) = %s, want %s", tt.in, got, tt.want)
		}
		if n := StringContentLen(tt.in) + 2; n != len(got) {
			t.Errorf("StringContentLen(%q) + 2 = %d, want %d", tt.in, n, len(got))
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a\"b", "\xff", "\u2028", "\x00", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := AppendString([]byte("x"), s)
		if out[0] != 'x' {
			t.Fatalf("AppendString overwrote dst")
		}
		if n := StringContentLen(s) + 2; n != len(out)-1 {
			t.Fatalf("StringContentLen(%q) + 2 = %d, AppendString wrote %d", s, n, len(out)-1)
		}
		var back string
		if err := json.Unmarshal(out[1:], &back); err != nil {
			t.Fatalf("AppendString(%q) = %s, not valid JSON: %v", s, out[1:], err)
		}
		if want := strings.ToValidUTF8(s, "\ufffd"); back != want && utf8.ValidString(s) {
			t.Fatalf("AppendString(%q) decodes to %q", s, back)
		}
	})
}
