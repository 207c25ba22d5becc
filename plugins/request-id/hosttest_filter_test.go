//go:build !wasm

package main

// Configuration at start, per-route rules, shadow mode, the access log and
// metrics, through the compiled module.

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/concierge-wasm/concierge/hosttest"
)

// TestBadConfigRefusedAtStart: the host refuses the filter, and the one
// error line the plugin logged is the exact parseConfig message with the
// plugin name in front.
func TestBadConfigRefusedAtStart(t *testing.T) {
	tests := []struct{ cfg, want string }{
		{`{`, `invalid JSON: line 1, column 2: unexpected end of input`},
		{`[]`, `configuration must be a JSON object, got []`},
		{`{"headr": "x"}`, `unknown field "headr"`},
		{`{"header": "X-Request-Id"}`, `header: must be a valid lowercase HTTP header name, got "X-Request-Id"`},
		{`{"header": "content-length"}`, `header: must not be "content-length": the proxy, HTTP framing or tracing owns it`},
		{`{"trust_incoming": "yes"}`, `trust_incoming: must be true, false or "internal", got "yes"`},
		{`{"generator": "uuid1"}`, `generator: must be one of "uuidv4", "uuidv7", got "uuid1"`},
		{`{"error_format": "xml"}`, `error_format: must be one of "json", "problem+json", got "xml"`},
		{`{"shadow": "true"}`, `shadow: must be a boolean, got "true"`},
		{`{"envelope": {"enabled": true, "max_body_bytes": 0}}`, `envelope.max_body_bytes: must be > 0, got 0`},
		{`{"envelope": {"statuses": [204]}}`, `envelope.statuses[0]: a 204 response has no body to wrap, got 204`},
		{`{"envelope": {"content_types": ["application/*"]}}`, `envelope.content_types[0]: must be a media type like "application/json" (no parameters, no wildcards), got "application/*"`},
		{`{"rules": [{"match": {"prefix": "/a"}, "envelope": {"enabeld": true}}]}`, `rules[0].envelope: unknown field "enabeld"`},
		{`{"rules": [{"match": {"prefix": "/a"}, "max_tokens": 1}]}`, `rules[0]: unknown field "max_tokens"`},
		{`{"rules": [{"match": {"path": "/a/../b"}}]}`, `rules[0].match.path: must be a normalized path ("/b"), got "/a/../b"`},
	}
	for _, tt := range tests {
		t.Run(tt.cfg, func(t *testing.T) {
			h, err := hosttest.Start(hosttest.Plugin("."), hosttest.Config(tt.cfg))
			if err == nil {
				h.Close()
				t.Fatalf("Start(%s) succeeded, want the configuration refused", tt.cfg)
			}
			msg := err.Error()
			if !strings.Contains(msg, `filter "request-id" refused to start: proxy_on_configure returned false`) {
				t.Errorf("Start(%s) error = %q, want on_configure to refuse", tt.cfg, msg)
			}
			var logged []string
			for _, line := range strings.Split(msg, "\n")[1:] {
				logged = append(logged, strings.TrimPrefix(line, "  "))
			}
			want := "[error] " + tt.want
			if len(logged) != 1 || logged[0] != want {
				t.Errorf("Start(%s) plugin logs = %q, want exactly [%q]", tt.cfg, logged, want)
			}
		})
	}
}

// TestConfigAccepted: absent, empty and full configurations start.
func TestConfigAccepted(t *testing.T) {
	for _, cfg := range []string{"", " \n", `{}`, fullConfig} {
		h, err := hosttest.Start(hosttest.Plugin("."), hosttest.Config(cfg))
		if err != nil {
			t.Errorf("Start(%q) error = %v", cfg, err)
			continue
		}
		h.Close()
	}
}

// fullConfig sets every option.
const fullConfig = `{
	"header": "x-correlation-id",
	"trust_incoming": false,
	"external_id_header": "x-client-correlation-id",
	"max_buffered_bytes": 16777216,
	"generator": "uuidv4",
	"response_header": true,
	"traceparent": true,
	"access_log": true,
	"envelope": {
		"enabled": false,
		"content_types": ["application/json", "application/problem+json"],
		"max_body_bytes": 262144,
		"statuses": [200, 201, 400, 404, 422],
		"fields": {"request_id": "requestId", "timestamp": "timestamp", "data": "data"}
	},
	"shadow": false,
	"rules": [
		{"match": {"prefix": "/healthz"}, "enabled": false},
		{"match": {"host": "api.example.com", "prefix": "/v2/", "methods": ["GET", "POST"]}, "envelope": {"enabled": true}},
		{"match": {"headers": [{"name": "x-canary", "exact": "1"}]}, "shadow": true, "envelope": {"enabled": true}}
	],
	"error_format": "problem+json"
}`

func TestRules(t *testing.T) {
	const cfg = `{
		"rules": [
			{"match": {"prefix": "/healthz"}, "enabled": false},
			{"match": {"host": "*.internal.example.com"}, "enabled": false},
			{"match": {"methods": ["OPTIONS"]}, "enabled": false},
			{"match": {"headers": [{"name": "x-synthetic", "present": true}]}, "enabled": false},
			{"match": {"route": "legacy"}, "enabled": false},
			{"match": {"prefix": "/api/"}, "envelope": {"enabled": true}}
		]
	}`
	h := newHost(t, cfg)
	ct := []string{"Content-Type", "application/json"}
	tests := []struct {
		name    string
		req     *hosttest.Request
		handled bool
		wrap    bool
	}{
		{"prefix", hosttest.GET("/healthz/live"), false, false},
		{"prefix inside after normalization", hosttest.GET("/healthz/x/../live"), false, false},
		// Rules that switch the filter off apply only where the router
		// sends the request: path in the prefix as sent and normalized,
		// authority as sent (a port selects another virtual host).
		{"prefix only after normalization", hosttest.GET("/x/../healthz"), true, false},
		{"host", hosttest.GET("/").Host("db.internal.example.com"), false, false},
		{"host with a port", hosttest.GET("/").Host("db.internal.example.com:8443"), true, false},
		{"method", hosttest.NewRequest("OPTIONS", "/api/users"), false, false},
		{"header", hosttest.GET("/").Header("x-synthetic", "probe"), false, false},
		{"route", hosttest.GET("/").Route("legacy"), false, false},
		{"other route", hosttest.GET("/").Route("payments"), true, false},
		{"no rule", hosttest.GET("/other").Host("api.example.com"), true, false},
		{"envelope rule", hosttest.GET("/api/users"), true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.ClearLogs()
			m := snapshot(h)
			resp := h.Do(tt.req.Header("x-request-id", "bad id").Upstream(respond(200, ct, `{"a":1}`)))
			up := resp.Upstream.Header("x-request-id")
			if !tt.handled {
				if up != "bad id" || resp.Header("x-request-id") != "" || string(resp.Body) != `{"a":1}` {
					t.Errorf("switched-off request: upstream x-request-id %q, response %q, body %q; want all untouched",
						up, resp.Header("x-request-id"), resp.Body)
				}
				if got := m.changed(); got != "" {
					t.Errorf("switched-off request moved counters: %q", got)
				}
				if lines := accessLines(h); lines != nil {
					t.Errorf("switched-off request logged %q", lines)
				}
				return
			}
			if !uuidV7.MatchString(up) || resp.Header("x-request-id") != up {
				t.Errorf("upstream x-request-id %q, response %q; want the same fresh UUIDv7", up, resp.Header("x-request-id"))
			}
			if wrapped := strings.HasPrefix(string(resp.Body), `{"requestId":`); wrapped != tt.wrap {
				t.Errorf("body %q: wrapped %v, want %v", resp.Body, wrapped, tt.wrap)
			}
			if lines := accessLines(h); len(lines) != 1 {
				t.Errorf("access log = %q, want one line", lines)
			}
		})
	}
}

// TestShadow: in shadow mode the filter decides, logs and counts as
// usual, but the request and the response pass exactly as they came.
func TestShadow(t *testing.T) {
	const body = `{"items":[1,2,3]}`
	upstream := respond(200, []string{"Content-Type", "application/json", "Content-Length", strconv.Itoa(len(body)),
		"X-Request-Id", "upstream-1"}, body[:4], body[4:])
	t.Run("top level", func(t *testing.T) {
		h := newHost(t, `{"shadow": true, "traceparent": true, "envelope": {"enabled": true}}`)
		m := snapshot(h)
		resp := h.Do(hosttest.GET("/api").Header("x-request-id", "bad id").Header("tracestate", "k=v").Upstream(upstream))
		up := resp.Upstream
		wantOne(t, "upstream x-request-id", up.HeaderValues("x-request-id"), "bad id")
		if up.Has("traceparent") || up.Header("tracestate") != "k=v" {
			t.Errorf("upstream traceparent %q, tracestate %q; want none and k=v untouched", up.Header("traceparent"), up.Header("tracestate"))
		}
		wantOne(t, "response x-request-id", resp.HeaderValues("x-request-id"), "upstream-1")
		if string(resp.Body) != body || resp.Header("content-length") != strconv.Itoa(len(body)) {
			t.Errorf("body %q, content-length %q; want %q unchanged with its content-length", resp.Body, resp.Header("content-length"), body)
		}
		if got, want := m.changed(), "enveloped_total+1 replaced_total+1 shadow_total+1 traceparent_created_total+1"; got != want {
			t.Errorf("counters moved: %q, want %q (what the filter would have done)", got, want)
		}
		lines := accessLines(h)
		if len(lines) != 1 || !strings.HasSuffix(lines[0], " shadow=true") || !uuidV7.MatchString(strings.Fields(lines[0])[0][len("request_id="):]) {
			t.Errorf("access log = %q, want one line with the ID it would have set and shadow=true", lines)
		}
	})
	t.Run("per rule", func(t *testing.T) {
		h := newHost(t, `{"envelope": {"enabled": true}, "rules": [{"match": {"prefix": "/beta/"}, "shadow": true}]}`)
		resp := h.Do(hosttest.GET("/beta/x").Upstream(upstream))
		if resp.Upstream.Has("x-request-id") || string(resp.Body) != body {
			t.Errorf("shadow rule: upstream x-request-id %q, body %q; want none and unchanged", resp.Upstream.Header("x-request-id"), resp.Body)
		}
		resp = h.Do(hosttest.GET("/live").Upstream(upstream))
		if !resp.Upstream.Has("x-request-id") || !strings.HasPrefix(string(resp.Body), `{"requestId":`) {
			t.Errorf("other routes: upstream x-request-id %q, body %q; want an ID and an envelope", resp.Upstream.Header("x-request-id"), resp.Body)
		}
	})
	t.Run("over the limit", func(t *testing.T) {
		h := newHost(t, `{"shadow": true, "envelope": {"enabled": true, "max_body_bytes": 10}}`)
		m := snapshot(h)
		resp := h.Do(hosttest.GET("/").Upstream(upstream))
		if string(resp.Body) != body || resp.Chunks != 2 {
			t.Errorf("body %q in %d frames, want %q in the upstream's 2 frames", resp.Body, resp.Chunks, body)
		}
		if got, want := m.changed(), "envelope_skipped_total+1 generated_total+1 shadow_total+1"; got != want {
			t.Errorf("counters moved: %q, want %q", got, want)
		}
	})
}

// TestErrorFormat: the shared option is accepted (and validated, see
// TestBadConfigRefusedAtStart); request-id sends no responses of its own,
// so it changes nothing.
func TestErrorFormat(t *testing.T) {
	for _, f := range []string{"json", "problem+json"} {
		h := newHost(t, `{"error_format": "`+f+`"}`)
		resp := h.Do(hosttest.GET("/").Header("x-request-id", "abc"))
		if resp.Status != 200 || resp.Header("x-request-id") != "abc" || string(resp.Body) != "ok" {
			t.Errorf("error_format %s: response %v, x-request-id %q; want the upstream's 200 with the ID", f, resp, resp.Header("x-request-id"))
		}
	}
}

var accessLine = regexp.MustCompile(`^request_id=(\S+) method=(\S+) path=(\S+|"(?:[^"\\]|\\.)*") status=(\d+) duration_ms=(\d+\.\d{3}) bytes=(\d+)$`)

func TestAccessLog(t *testing.T) {
	h := newHost(t, `{"envelope": {"enabled": true}}`, hosttest.Workers(1))
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.Clock().Advance(1500 * time.Millisecond) // the upstream takes 1.5 s of host time
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(201)
		w.Write([]byte(`{"created":true}`))
	})
	tests := []struct {
		name     string
		req      *hosttest.Request
		method   string
		wantPath string
		minMs    float64
	}{
		{"enveloped", hosttest.POST("/api/items?x=1&y=2", `{"n":1}`).Header("x-request-id", "req-1").Upstream(slow), "POST", `"/api/items?x=1&y=2"`, 1500},
		{"plain", hosttest.GET("/plain").Header("x-request-id", "req-2"), "GET", "/plain", 0},
		{"hostile path", hosttest.GET("/a b\"c\r\nrequest_id=forged").Header("x-request-id", "req-3"), "GET", `"/a b\"c\r\nrequest_id=forged"`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.ClearLogs()
			resp := h.Do(tt.req)
			lines := accessLines(h)
			if len(lines) != 1 {
				t.Fatalf("access log = %q, want one line per stream", lines)
			}
			f := accessLine.FindStringSubmatch(lines[0])
			if f == nil {
				t.Fatalf("access log line %q does not have the documented format", lines[0])
			}
			id := resp.Header("x-request-id")
			if f[1] != id || f[2] != tt.method || f[3] != tt.wantPath || f[4] != strconv.Itoa(resp.Status) {
				t.Errorf("access log line %q, want request_id=%s method=%s path=%s status=%d", lines[0], id, tt.method, tt.wantPath, resp.Status)
			}
			if ms, _ := strconv.ParseFloat(f[5], 64); ms < tt.minMs || ms > tt.minMs+5000 {
				t.Errorf("duration_ms = %s, want at least %v (host clock)", f[5], tt.minMs)
			}
			if f[6] != strconv.Itoa(len(resp.Body)) {
				t.Errorf("bytes = %s, want %d (the body the client got)", f[6], len(resp.Body))
			}
			for _, l := range h.Logs() {
				if l.Filter == filterName && l.Message == lines[0] && l.Level.String() != "info" {
					t.Errorf("access log at %s, want info", l.Level)
				}
			}
		})
	}
	t.Run("access_log false", func(t *testing.T) {
		h := newHost(t, `{"access_log": false}`)
		h.Do(hosttest.GET("/"))
		if lines := accessLines(h); lines != nil {
			t.Errorf("access_log false logged %q", lines)
		}
	})
}

// TestMetricNames: every metric the filter defines follows convention 8 (README.md, "Writing a filter").
func TestMetricNames(t *testing.T) {
	h := newHost(t, `{"traceparent": true, "envelope": {"enabled": true}}`)
	h.Do(hosttest.GET("/"))
	var got []string
	for _, m := range h.Metrics() {
		if m.Type != "counter" || !strings.HasPrefix(m.Name, metricPrefix) {
			t.Errorf("metric %s (%s): want counters named %s<what>", m.Name, m.Type, metricPrefix)
		}
		got = append(got, strings.TrimPrefix(m.Name, metricPrefix))
	}
	if strings.Join(got, " ") != strings.Join(definedMetrics, " ") {
		t.Errorf("metrics = %q, want %q", got, definedMetrics)
	}
}

// definedMetrics are the filter's counters without the prefix, sorted.
var definedMetrics = []string{"envelope_over_budget_total", "envelope_skipped_total", "envelope_truncated_total", "enveloped_total", "errors_total",
	"generated_total", "kept_total", "replaced_total", "shadow_total", "traceparent_created_total", "traceparent_kept_total"}
