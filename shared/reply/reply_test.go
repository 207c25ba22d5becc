package reply

import (
	"encoding/json"
	"net/http"
	"reflect"
	"testing"

	"github.com/concierge-wasm/concierge/shared/config"
)

func TestAppendBody(t *testing.T) {
	tests := []struct {
		name   string
		f      Format
		status int
		reason string
		id     string
		want   string
	}{
		{"json", JSON, 401, "missing bearer token", "5f0c",
			`{"error":"missing bearer token","requestId":"5f0c"}`},
		{"json without request ID", JSON, 429, "rate limited", "",
			`{"error":"rate limited","requestId":""}`},
		{"json escapes", JSON, 403, `role "admin" required\n`, "a\"b\\c\x01",
			`{"error":"role \"admin\" required\\n","requestId":"a\"b\\c\u0001"}`},
		{"json invalid UTF-8", JSON, 401, "bad\xff", "\xfe",
			"{\"error\":\"bad\ufffd\",\"requestId\":\"\ufffd\"}"},
		{"problem", Problem, 401, "missing bearer token", "5f0c",
			`{"type":"about:blank","title":"Unauthorized","status":401,"detail":"missing bearer token","requestId":"5f0c"}`},
		{"problem 503", Problem, 503, "circuit open", "",
			`{"type":"about:blank","title":"Service Unavailable","status":503,"detail":"circuit open","requestId":""}`},
		{"problem renamed phrase", Problem, 413, "body too large", "x",
			`{"type":"about:blank","title":"Content Too Large","status":413,"detail":"body too large","requestId":"x"}`},
		{"problem unknown status has no title", Problem, 499, "client closed", "x",
			`{"type":"about:blank","status":499,"detail":"client closed","requestId":"x"}`},
		{"problem escapes", Problem, 400, "<\"x\">", "\u2028",
			`{"type":"about:blank","title":"Bad Request","status":400,"detail":"<\"x\">","requestId":"\u2028"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := string(AppendBody(nil, tt.f, tt.status, tt.reason, tt.id))
			if got != tt.want {
				t.Errorf("AppendBody(%v, %d, %q, %q) = %s, want %s", tt.f, tt.status, tt.reason, tt.id, got, tt.want)
			}
			if !json.Valid([]byte(got)) {
				t.Errorf("AppendBody(%v, %d, %q, %q) = %s, not valid JSON", tt.f, tt.status, tt.reason, tt.id, got)
			}
		})
	}
}

func TestAppendBodyAppends(t *testing.T) {
	t.Parallel()
	got := string(AppendBody([]byte("prefix:"), JSON, 401, "r", "i"))
	if want := `prefix:{"error":"r","requestId":"i"}`; got != want {
		t.Errorf("AppendBody(prefix:, …) = %s, want %s", got, want)
	}
}

func FuzzAppendBody(f *testing.F) {
	f.Add(true, 401, "missing token", "id")
	f.Add(false, 999, "\xff\"\\\x00", "\u2028")
	f.Fuzz(func(t *testing.T, problem bool, status int, reason, id string) {
		format := JSON
		if problem {
			format = Problem
		}
		body := AppendBody(nil, format, status, reason, id)
		var got map[string]any
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("AppendBody(%v, %d, %q, %q) = %s, not valid JSON: %v", format, status, reason, id, body, err)
		}
		if _, ok := got["requestId"].(string); !ok {
			t.Fatalf("AppendBody(%v, %d, %q, %q) = %s, no requestId string", format, status, reason, id, body)
		}
	})
}

func TestHeaders(t *testing.T) {
	tests := []struct {
		name  string
		f     Format
		id    string
		extra [][2]string
		want  [][2]string
	}{
		{"json with ID and extra", JSON, "5f0c", [][2]string{{"www-authenticate", `Bearer realm="api"`}},
			[][2]string{{"content-type", "application/json"}, {"x-request-id", "5f0c"}, {"www-authenticate", `Bearer realm="api"`}}},
		{"no ID, no echo", JSON, "", [][2]string{{"retry-after", "3"}},
			[][2]string{{"content-type", "application/json"}, {"retry-after", "3"}}},
		{"problem", Problem, "x", nil,
			[][2]string{{"content-type", "application/problem+json"}, {"x-request-id", "x"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Headers(tt.f, DefaultRequestIDHeader, tt.id, tt.extra...)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Headers(%v, %q, %q) = %q, want %q", tt.f, DefaultRequestIDHeader, tt.id, got, tt.want)
			}
		})
	}
}

func TestParseFormat(t *testing.T) {
	tests := []struct {
		doc     string
		want    Format
		wantErr string
	}{
		{`{}`, JSON, ""},
		{`{"error_format":"json"}`, JSON, ""},
		{`{"error_format":"problem+json"}`, Problem, ""},
		{`{"error_format":"xml"}`, JSON, `error_format: must be one of "json", "problem+json", got "xml"`},
		{`{"error_format":true}`, JSON, `error_format: must be one of "json", "problem+json", got true`},
	}
	for _, tt := range tests {
		o, err := config.Parse([]byte(tt.doc))
		if err != nil {
			t.Fatalf("config.Parse(%s): %v", tt.doc, err)
		}
		got := ParseFormat(o)
		gotErr := ""
		if err := o.Err(); err != nil {
			gotErr = err.Error()
		}
		if got != tt.want || gotErr != tt.wantErr {
			t.Errorf("ParseFormat(%s) = %v, error %q; want %v, error %q", tt.doc, got, gotErr, tt.want, tt.wantErr)
		}
	}
}

func TestFormatStrings(t *testing.T) {
	for _, tt := range []struct {
		f                 Format
		name, contentType string
	}{
		{JSON, "json", "application/json"},
		{Problem, "problem+json", "application/problem+json"},
	} {
		if got := tt.f.String(); got != tt.name {
			t.Errorf("Format(%d).String() = %q, want %q", tt.f, got, tt.name)
		}
		if got := tt.f.ContentType(); got != tt.contentType {
			t.Errorf("Format(%d).ContentType() = %q, want %q", tt.f, got, tt.contentType)
		}
	}
}

// TestStatusText checks the table against net/http for every error status,
// except the phrases RFC 9110 renamed.
func TestStatusText(t *testing.T) {
	renamed := map[int]string{
		413: "Content Too Large",
		414: "URI Too Long",
		416: "Range Not Satisfiable",
		422: "Unprocessable Content",
	}
	for code := 0; code < 1000; code++ {
		want := ""
		if code >= 400 {
			want = http.StatusText(code)
		}
		if r, ok := renamed[code]; ok {
			want = r
		}
		if got := StatusText(code); got != want {
			t.Errorf("StatusText(%d) = %q, want %q", code, got, want)
		}
	}
}

func BenchmarkAppendBody(b *testing.B) {
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendBody(buf[:0], Problem, 429, "rate limit exceeded", "2f6a7c1e-8b1d-4c55-9a0e-6f8c1b2d3e4f")
	}
}
