package main

import (
	"strings"
	"testing"
	"time"
)

func TestAppendAccessLog(t *testing.T) {
	t.Parallel()
	const id = "0191e3c4-7b8e-7c1a-9f2e-3d4c5b6a7980"
	tests := []struct {
		name string
		in   accessLogEntry
		want string
	}{
		{"plain", accessLogEntry{id, "GET", "/api/users/1?x=1&y=2", 200, 1234567 * time.Nanosecond, 512, false},
			`request_id=` + id + ` method=GET path="/api/users/1?x=1&y=2" status=200 duration_ms=1.234 bytes=512`},
		{"bare path", accessLogEntry{id, "GET", "/api/users/1", 200, 0, 2, false},
			`request_id=` + id + ` method=GET path=/api/users/1 status=200 duration_ms=0.000 bytes=2`},
		{"no response", accessLogEntry{id, "POST", "/", 0, 0, 0, false},
			`request_id=` + id + ` method=POST path=/ status=0 duration_ms=0.000 bytes=0`},
		{"long and negative", accessLogEntry{id, "GET", "/", 503, 90*time.Second + 5*time.Microsecond, -1, false},
			`request_id=` + id + ` method=GET path=/ status=503 duration_ms=90000.005 bytes=0`},
		{"negative duration", accessLogEntry{id, "GET", "/", 200, -time.Second, 1, false},
			`request_id=` + id + ` method=GET path=/ status=200 duration_ms=0.000 bytes=1`},
		{"empty values", accessLogEntry{"", "", "", 200, time.Millisecond, 1, false},
			`request_id="" method="" path="" status=200 duration_ms=1.000 bytes=1`},
		{"crlf injection", accessLogEntry{id, "GET", "/a\r\nrequest_id=forged status=200", 404, 0, 9, false},
			`request_id=` + id + ` method=GET path="/a\r\nrequest_id=forged status=200" status=404 duration_ms=0.000 bytes=9`},
		{"quotes and backslash", accessLogEntry{id, "GET", `/a"b\c`, 200, 0, 0, false},
			`request_id=` + id + ` method=GET path="/a\"b\\c" status=200 duration_ms=0.000 bytes=0`},
		{"space and equals", accessLogEntry{id, "GET", "/a b=c", 200, 0, 0, false},
			`request_id=` + id + ` method=GET path="/a b=c" status=200 duration_ms=0.000 bytes=0`},
		{"control and non-UTF-8", accessLogEntry{id, "G\x00T", "/\x1b[31m\xff\u2028é", 200, 0, 0, false},
			`request_id=` + id + ` method="G\x00T" path="/\x1b[31m\xff\u2028é" status=200 duration_ms=0.000 bytes=0`},
		{"shadow", accessLogEntry{id, "GET", "/", 200, time.Millisecond, 2, true},
			`request_id=` + id + ` method=GET path=/ status=200 duration_ms=1.000 bytes=2 shadow=true`},
	}
	for _, tt := range tests {
		got := formatAccessLog(tt.in)
		if got != tt.want {
			t.Errorf("%s: formatAccessLog(%+v) =\n%s\nwant\n%s", tt.name, tt.in, got, tt.want)
		}
		checkOneLine(t, got)
	}
}

func TestAccessLogTruncatesPath(t *testing.T) {
	t.Parallel()
	path := "/" + strings.Repeat("a\n", 5000)
	got := formatAccessLog(accessLogEntry{requestID: "id", method: "GET", path: path, status: 200, shadow: true})
	checkOneLine(t, got)
	if !strings.HasSuffix(got, " path_truncated=true shadow=true") {
		t.Errorf("formatAccessLog(%d-byte path) = %.60q..., want path_truncated=true at the end", len(path), got)
	}
	if len(got) > 2*maxLoggedPath+200 {
		t.Errorf("formatAccessLog(%d-byte path) is %d bytes, want <= %d", len(path), len(got), 2*maxLoggedPath+200)
	}
}

// checkOneLine fails unless line is one printable line whose keys are the
// fixed ones, in order.
func checkOneLine(tb testing.TB, line string) {
	tb.Helper()
	for _, r := range line {
		if r < 0x20 || r == 0x7f || r == '\u2028' || r == '\u2029' || r == '\u0085' {
			tb.Fatalf("log line %q contains %U", line, r)
		}
	}
	keys := logKeys(line)
	want := "request_id method path status duration_ms bytes"
	rest, shadow := strings.CutSuffix(line, " shadow=true")
	if strings.HasSuffix(rest, " path_truncated=true") {
		want += " path_truncated"
	}
	if shadow {
		want += " shadow"
	}
	if strings.Join(keys, " ") != want {
		tb.Errorf("log line %q: keys %q, want %q", line, keys, want)
	}
}

// logKeys parses a logfmt line as a log reader would: key=value pairs
// separated by spaces, values bare or double-quoted with backslash escapes.
func logKeys(line string) []string {
	var keys []string
	for line != "" {
		eq := strings.IndexByte(line, '=')
		if eq < 0 {
			return append(keys, "!"+line)
		}
		keys = append(keys, line[:eq])
		line = line[eq+1:]
		if strings.HasPrefix(line, `"`) {
			i := 1
			for i < len(line) && line[i] != '"' {
				if line[i] == '\\' {
					i++
				}
				i++
			}
			line = line[min(i+1, len(line)):]
		} else if sp := strings.IndexByte(line, ' '); sp >= 0 {
			line = line[sp:]
		} else {
			line = ""
		}
		line = strings.TrimPrefix(line, " ")
	}
	return keys
}

func FuzzAccessLog(f *testing.F) {
	f.Add("id", "GET", "/a\r\nb=\"c\"", 200, int64(1e6), int64(5), false)
	f.Fuzz(func(t *testing.T, id, method, path string, status int, d, n int64, shadow bool) {
		checkOneLine(t, formatAccessLog(accessLogEntry{id, method, path, status, time.Duration(d), n, shadow}))
	})
}
