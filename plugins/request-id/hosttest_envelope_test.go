//go:build !wasm

package main

// The JSON envelope through the compiled module.

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/concierge-wasm/concierge/hosttest"
)

var stampFormat = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)

// checkWrapped fails unless resp's body is the envelope of data (with the
// given field names) carrying the response's request ID and a timestamp
// from the host clock between before and after.
func checkWrapped(t testing.TB, resp *hosttest.Response, data string, before, after time.Time, fields ...string) {
	t.Helper()
	idField, tsField, dataField := "requestId", "timestamp", "data"
	if len(fields) == 3 {
		idField, tsField, dataField = fields[0], fields[1], fields[2]
	}
	var env map[string]json.RawMessage
	if err := json.Unmarshal(resp.Body, &env); err != nil || len(env) != 3 {
		t.Fatalf("body %q is not a 3-field envelope: %v", resp.Body, err)
	}
	var id, stamp string
	json.Unmarshal(env[idField], &id)
	json.Unmarshal(env[tsField], &stamp)
	if want := resp.Header("x-request-id"); id != want || want == "" {
		t.Errorf("envelope %s = %q, want the response's x-request-id %q", idField, id, want)
	}
	ts, err := time.Parse(time.RFC3339Nano, stamp)
	if !stampFormat.MatchString(stamp) || err != nil {
		t.Errorf("envelope %s = %q, want RFC 3339 UTC with milliseconds", tsField, stamp)
	} else if ts.Before(before.Truncate(time.Millisecond)) || ts.After(after) {
		t.Errorf("envelope %s = %s, want the host clock, between %s and %s", tsField, stamp, before, after)
	}
	want := strings.Trim(data, " \t\r\n")
	if !bytes.Equal(env[dataField], []byte(want)) {
		t.Errorf("envelope %s = %s, want the original body %s byte for byte", dataField, env[dataField], want)
	}
	if !bytes.HasSuffix(resp.Body, []byte(want+"}")) {
		t.Errorf("body %q does not end with the original body and the closing brace", resp.Body)
	}
	if v := resp.HeaderValues("content-length"); v != nil {
		t.Errorf("content-length = %q on a wrapped body, want it removed", v)
	}
}

func gzipped(t testing.TB, s string) string {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.String()
}

func TestEnvelope(t *testing.T) {
	const obj = `{"id":1,"name":"Zoë 😀","tags":["a","b"],"nested":{"x":[{"y":null}]}}`
	cl := func(s string) string { return strconv.Itoa(len(s)) }
	tests := []struct {
		name    string
		method  string
		status  int
		headers []string
		chunks  []string
		wrap    bool
	}{
		{"object", "GET", 200, []string{"Content-Type", "application/json"}, []string{obj}, true},
		{"content-length removed", "GET", 200, []string{"Content-Type", "application/json", "Content-Length", cl(obj)}, []string{obj}, true},
		{"charset parameter", "GET", 200, []string{"Content-Type", "application/json; charset=utf-8"}, []string{obj}, true},
		{"media type case", "POST", 201, []string{"Content-Type", "Application/JSON"}, []string{obj}, true},
		{"array", "GET", 200, []string{"Content-Type", "application/json"}, []string{`[1,"two",{"three":3}]`}, true},
		{"string", "GET", 200, []string{"Content-Type", "application/json"}, []string{`"just a string"`}, true},
		{"number", "GET", 200, []string{"Content-Type", "application/json"}, []string{`42`}, true},
		{"null", "GET", 200, []string{"Content-Type", "application/json"}, []string{`null`}, true},
		{"surrounding whitespace", "GET", 200, []string{"Content-Type", "application/json"}, []string{" \n{\"a\":1}\n "}, true},
		{"many small chunks", "GET", 200, []string{"Content-Type", "application/json"}, strings.SplitAfter(obj, ","), true},
		{"one byte chunks", "GET", 200, []string{"Content-Type", "application/json"}, strings.Split(`{"a":[1,2,3]}`, ""), true},
		{"404", "GET", 404, []string{"Content-Type", "application/json"}, []string{`{"error":"not found"}`}, true},
		{"500", "GET", 500, []string{"Content-Type", "application/json"}, []string{`{"error":"boom"}`}, true},
		{"identity encoding", "GET", 200, []string{"Content-Type", "application/json", "Content-Encoding", "identity"}, []string{obj}, true},

		{"invalid JSON", "GET", 200, []string{"Content-Type", "application/json"}, []string{`{"a":1,}`}, false},
		{"truncated JSON in chunks", "GET", 200, []string{"Content-Type", "application/json"}, []string{`{"a":`, `[1,2`}, false},
		{"two values", "GET", 200, []string{"Content-Type", "application/json"}, []string{`{}{}`}, false},
		{"invalid UTF-8", "GET", 200, []string{"Content-Type", "application/json"}, []string{"\"\xff\""}, false},
		{"text/html", "GET", 200, []string{"Content-Type", "text/html"}, []string{"<p>hi</p>"}, false},
		{"problem+json not listed", "GET", 400, []string{"Content-Type", "application/problem+json"}, []string{`{"title":"x"}`}, false},
		{"no content-type", "GET", 200, nil, []string{obj}, false},
		{"gzip", "GET", 200, []string{"Content-Type", "application/json", "Content-Encoding", "gzip"}, []string{gzipped(t, obj)}, false},
		{"br", "GET", 200, []string{"Content-Type", "application/json", "Content-Encoding", "br"}, []string{"\x1b\x00\xff"}, false},
		{"content-length over the limit", "GET", 200, []string{"Content-Type", "application/json", "Content-Length", "1048577"}, []string{`{}`}, false},
		{"HEAD", "HEAD", 200, []string{"Content-Type", "application/json", "Content-Length", "123"}, nil, false},
		{"204", "GET", 204, []string{"Content-Type", "application/json"}, nil, false},
		{"304", "GET", 304, []string{"Content-Type", "application/json", "Content-Length", "77"}, nil, false},
		{"empty body", "GET", 200, []string{"Content-Type", "application/json", "Content-Length", "0"}, nil, false},
	}
	h := newHost(t, `{"envelope": {"enabled": true}}`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := strings.Join(tt.chunks, "")
			m := snapshot(h)
			before := h.Clock().Now()
			resp := h.Do(hosttest.NewRequest(tt.method, "/api/x").Upstream(respond(tt.status, tt.headers, tt.chunks...)))
			after := h.Clock().Now()
			if resp.Status != tt.status {
				t.Fatalf("status %d, want %d", resp.Status, tt.status)
			}
			if tt.wrap {
				checkWrapped(t, resp, body, before, after)
				if resp.Chunks != 1 {
					t.Errorf("client got %d body frames, want 1 (held chunks are sent as one envelope)", resp.Chunks)
				}
				if got := m.changed(); got != "enveloped_total+1 generated_total+1" {
					t.Errorf("counters moved: %q, want enveloped_total+1 generated_total+1", got)
				}
				return
			}
			if string(resp.Body) != body {
				t.Errorf("body = %q, want %q unchanged", resp.Body, body)
			}
			if got := m.changed(); got != "envelope_skipped_total+1 generated_total+1" {
				t.Errorf("counters moved: %q, want envelope_skipped_total+1 generated_total+1", got)
			}
			// content-length stays when the headers already rule out wrapping.
			for i := 0; i+1 < len(tt.headers); i += 2 {
				if tt.headers[i] == "Content-Length" {
					if got := resp.Header("content-length"); got != tt.headers[i+1] {
						t.Errorf("content-length = %q, want %q kept", got, tt.headers[i+1])
					}
				}
			}
		})
	}
}

// TestEnvelopeOptions: statuses, content_types, fields and per-route rules.
func TestEnvelopeOptions(t *testing.T) {
	const body = `{"ok":true}`
	hdr := []string{"Content-Type", "application/json"}
	tests := []struct {
		name   string
		cfg    string
		path   string
		status int
		ctype  string
		wrap   bool
		fields []string
	}{
		{"off by default", `{}`, "/api", 200, "application/json", false, nil},
		{"statuses selects", `{"envelope": {"enabled": true, "statuses": [200, 201]}}`, "/", 201, "application/json", true, nil},
		{"statuses skips", `{"envelope": {"enabled": true, "statuses": [200, 201]}}`, "/", 404, "application/json", false, nil},
		{"content_types adds problem+json", `{"envelope": {"enabled": true, "content_types": ["application/json", "application/problem+json"]}}`, "/", 400, "application/problem+json", true, nil},
		{"content_types replaces the default", `{"envelope": {"enabled": true, "content_types": ["application/vnd.api+json"]}}`, "/", 200, "application/json", false, nil},
		{"fields", `{"envelope": {"enabled": true, "fields": {"request_id": "trace", "timestamp": "at", "data": "payload"}}}`, "/", 200, "application/json", true, []string{"trace", "at", "payload"}},
		{"rule switches it on", `{"rules": [{"match": {"prefix": "/api/"}, "envelope": {"enabled": true}}]}`, "/api/users", 200, "application/json", true, nil},
		{"rule does not match", `{"rules": [{"match": {"prefix": "/api/"}, "envelope": {"enabled": true}}]}`, "/apix", 200, "application/json", false, nil},
		{"rule switches it off", `{"envelope": {"enabled": true}, "rules": [{"match": {"prefix": "/files/"}, "envelope": {"enabled": false}}]}`, "/files/a.json", 200, "application/json", false, nil},
		{"other routes keep the top level", `{"envelope": {"enabled": true}, "rules": [{"match": {"prefix": "/files/"}, "envelope": {"enabled": false}}]}`, "/api", 200, "application/json", true, nil},
		{"rule overrides only what it names", `{"envelope": {"enabled": true, "fields": {"data": "body"}}, "rules": [{"match": {"methods": ["GET"]}, "envelope": {"statuses": [200]}}]}`, "/", 200, "application/json", true, []string{"requestId", "timestamp", "body"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHost(t, tt.cfg, hosttest.Workers(1))
			hdr[1] = tt.ctype
			before := h.Clock().Now()
			resp := h.Do(hosttest.GET(tt.path).Upstream(respond(tt.status, hdr, body)))
			after := h.Clock().Now()
			if tt.wrap {
				checkWrapped(t, resp, body, before, after, tt.fields...)
			} else if string(resp.Body) != body {
				t.Errorf("body = %q, want %q unchanged", resp.Body, body)
			}
		})
	}
}

// TestEnvelopeLimit: a body over max_body_bytes streams through in its
// chunks, byte for byte; the filter holds at most the limit and never
// pauses. A body of exactly the limit is wrapped.
func TestEnvelopeLimit(t *testing.T) {
	const limit = 64 << 10
	h := newHost(t, `{"envelope": {"enabled": true, "max_body_bytes": 65536}}`, hosttest.Workers(1))
	jsonBody := func(n int) string { return `"` + strings.Repeat("x", n-2) + `"` }
	split := func(s string, size int) []string {
		var out []string
		for len(s) > size {
			out = append(out, s[:size])
			s = s[size:]
		}
		return append(out, s)
	}
	ct := []string{"Content-Type", "application/json"}
	t.Run("over the limit in 1 KiB chunks", func(t *testing.T) {
		body := jsonBody(4 * limit)
		chunks := split(body, 1<<10)
		m := snapshot(h)
		resp := h.Do(hosttest.GET("/").Upstream(respond(200, ct, chunks...)))
		if resp.Status != 200 || string(resp.Body) != body {
			t.Fatalf("over-limit body changed: status %d, %d bytes, want %d bytes unchanged", resp.Status, len(resp.Body), len(body))
		}
		// 64 chunks are held, the 65th goes over: the held bytes go out in
		// front of it, and every later chunk passes as it comes.
		if want := len(chunks) - limit>>10; resp.Chunks != want {
			t.Errorf("client got %d body frames, want %d", resp.Chunks, want)
		}
		if got := m.changed(); got != "envelope_skipped_total+1 generated_total+1" {
			t.Errorf("counters moved: %q", got)
		}
	})
	t.Run("over the limit by one byte, content-length unknown", func(t *testing.T) {
		body := jsonBody(limit + 1)
		resp := h.Do(hosttest.GET("/").Upstream(respond(200, ct, split(body, 999)...)))
		if string(resp.Body) != body {
			t.Errorf("body of limit+1 bytes changed (%d bytes back)", len(resp.Body))
		}
	})
	t.Run("exactly the limit in many chunks", func(t *testing.T) {
		body := jsonBody(limit)
		before := h.Clock().Now()
		resp := h.Do(hosttest.GET("/").Upstream(respond(200, ct, split(body, 1000)...)))
		checkWrapped(t, resp, body, before, h.Clock().Now())
	})
	t.Run("exactly the limit with content-length", func(t *testing.T) {
		body := jsonBody(limit)
		before := h.Clock().Now()
		resp := h.Do(hosttest.GET("/").Upstream(respond(200, []string{"Content-Type", "application/json", "Content-Length", strconv.Itoa(limit)}, split(body, 4096)...)))
		checkWrapped(t, resp, body, before, h.Clock().Now())
	})
}

// TestEnvelopeTrailers: trailers end a body without end of stream.
func TestEnvelopeTrailers(t *testing.T) {
	const body = `{"a":[1,2,3]}`
	upstream := func(announce, contentLength bool) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			if announce {
				w.Header().Set("Trailer", "X-Checksum")
			}
			if contentLength {
				w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			}
			w.Write([]byte(body[:5]))
			w.Write([]byte(body[5:]))
			if announce {
				w.Header().Set("X-Checksum", "abc")
			} else {
				w.Header().Set(http.TrailerPrefix+"X-Checksum", "abc")
			}
		})
	}
	h := newHost(t, `{"envelope": {"enabled": true}}`, hosttest.Workers(1))
	t.Run("announced: passed unchanged", func(t *testing.T) {
		resp := h.Do(hosttest.GET("/").Upstream(upstream(true, false)))
		if string(resp.Body) != body || resp.Trailer("x-checksum") != "abc" {
			t.Errorf("body %q, trailer %q; want %q unchanged and the trailer", resp.Body, resp.Trailer("x-checksum"), body)
		}
	})
	t.Run("unannounced with content-length: wrapped at the last byte", func(t *testing.T) {
		before := h.Clock().Now()
		resp := h.Do(hosttest.GET("/").Upstream(upstream(false, true)))
		checkWrapped(t, resp, body, before, h.Clock().Now())
		if resp.Trailer("x-checksum") != "abc" {
			t.Errorf("trailer x-checksum = %q, want abc", resp.Trailer("x-checksum"))
		}
	})
	// A documented limitation: proxy-wasm cannot write the body from the
	// trailers callback, so what was held is lost; it is counted and
	// logged.
	t.Run("unannounced without content-length: truncated, counted, logged", func(t *testing.T) {
		h.ClearLogs()
		m := snapshot(h)
		resp := h.Do(hosttest.GET("/").Upstream(upstream(false, false)))
		if string(resp.Body) != "" || resp.Trailer("x-checksum") != "abc" {
			t.Errorf("body %q, trailer %q; want the held body lost and the trailer passed", resp.Body, resp.Trailer("x-checksum"))
		}
		if got := m.changed(); got != "envelope_skipped_total+1 envelope_truncated_total+1 generated_total+1" {
			t.Errorf("counters moved: %q", got)
		}
		errs := errorLines(h)
		if len(errs) != 1 || !strings.HasSuffix(errs[0], ": response trailers arrived unannounced and without content-length; 13 held body bytes could not be sent") ||
			!strings.HasPrefix(errs[0], "request_id="+resp.Header("x-request-id")) {
			t.Errorf("error log = %q", errs)
		}
	})
}
