//go:build !wasm

package main

// The request ID through the compiled module: which incoming IDs are kept,
// what is generated, and where the ID is set.

import (
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/concierge-wasm/concierge/hosttest"
)

func TestIncomingIDs(t *testing.T) {
	max := strings.Repeat("aZ09._:-", 16) // 128 characters
	tests := []struct {
		name    string
		cfg     string
		values  []string // incoming x-request-id headers (none: absent)
		want    string   // "kept", "replaced" or "generated"
		counter string
	}{
		{"absent", `{}`, nil, "generated", "generated_total+1"},
		{"uuid", `{}`, []string{"0191e3c4-7b8e-7c1a-9f2e-3d4c5b6a7980"}, "kept", "kept_total+1"},
		{"every allowed character", `{}`, []string{"Az09._:-"}, "kept", "kept_total+1"},
		{"one character", `{}`, []string{"x"}, "kept", "kept_total+1"},
		{"128 characters", `{}`, []string{max}, "kept", "kept_total+1"},
		{"129 characters", `{}`, []string{max + "a"}, "replaced", "replaced_total+1"},
		{"empty", `{}`, []string{""}, "replaced", "replaced_total+1"},
		{"CR LF", `{}`, []string{"abc\r\nx-injected: 1"}, "replaced", "replaced_total+1"},
		{"LF", `{}`, []string{"abc\n"}, "replaced", "replaced_total+1"},
		{"space", `{}`, []string{"a b"}, "replaced", "replaced_total+1"},
		{"two IDs joined by a proxy", `{}`, []string{"a,b"}, "replaced", "replaced_total+1"},
		{"quote", `{}`, []string{`a"b`}, "replaced", "replaced_total+1"},
		{"slash", `{}`, []string{"a/b"}, "replaced", "replaced_total+1"},
		{"non-ASCII", `{}`, []string{"idé"}, "replaced", "replaced_total+1"},
		{"NUL", `{}`, []string{"a\x00b"}, "replaced", "replaced_total+1"},
		{"script", `{}`, []string{"<script>alert(1)</script>"}, "replaced", "replaced_total+1"},
		{"repeated header keeps the first, once", `{}`, []string{"first", "second"}, "kept", "kept_total+1"},
		{"trust_incoming false", `{"trust_incoming": false}`, []string{"0191e3c4-7b8e-7c1a-9f2e-3d4c5b6a7980"}, "replaced", "replaced_total+1"},
		{"trust_incoming false, absent", `{"trust_incoming": false}`, nil, "generated", "generated_total+1"},
	}
	hosts := map[string]*hosttest.Host{}
	for _, tt := range tests {
		if hosts[tt.cfg] == nil {
			hosts[tt.cfg] = newHost(t, tt.cfg)
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := hosts[tt.cfg]
			req := hosttest.GET("/api/users/1")
			for _, v := range tt.values {
				req.Header("x-request-id", v)
			}
			m := snapshot(h)
			resp := h.Do(req)
			if resp.Status != 200 || resp.Upstream == nil {
				t.Fatalf("response %v, want 200 from the upstream", resp)
			}
			id := resp.Header("x-request-id")
			wantOne(t, "upstream x-request-id", resp.Upstream.HeaderValues("x-request-id"), id)
			wantOne(t, "response x-request-id", resp.HeaderValues("x-request-id"), id)
			switch tt.want {
			case "kept":
				if id != tt.values[0] {
					t.Errorf("x-request-id = %q, want the incoming %q kept", id, tt.values[0])
				}
			default:
				if !uuidV7.MatchString(id) {
					t.Errorf("x-request-id = %q, want a fresh UUIDv7", id)
				}
				// The replaced value is never echoed back.
				for _, v := range tt.values {
					if v == "" {
						continue
					}
					for _, p := range resp.Headers {
						if strings.Contains(p.Value, v) {
							t.Errorf("response header %s = %q echoes the replaced ID %q", p.Key, p.Value, v)
						}
					}
				}
			}
			if got := m.changed(); got != tt.counter {
				t.Errorf("counters moved: %q, want %q", got, tt.counter)
			}
		})
	}
}

func TestGenerators(t *testing.T) {
	for _, tt := range []struct {
		cfg  string
		want *regexpMatcher
	}{
		{`{}`, &regexpMatcher{"UUIDv7", uuidV7.MatchString}},
		{`{"generator": "uuidv7"}`, &regexpMatcher{"UUIDv7", uuidV7.MatchString}},
		{`{"generator": "uuidv4"}`, &regexpMatcher{"UUIDv4", uuidV4.MatchString}},
	} {
		t.Run(tt.cfg, func(t *testing.T) {
			h := newHost(t, tt.cfg)
			seen := map[string]bool{}
			for range 50 {
				id := h.Do(hosttest.GET("/")).Upstream.Header("x-request-id")
				if !tt.want.match(id) {
					t.Fatalf("generated x-request-id = %q, want a %s", id, tt.want.name)
				}
				if seen[id] {
					t.Fatalf("x-request-id %q generated twice", id)
				}
				seen[id] = true
			}
		})
	}
}

type regexpMatcher struct {
	name  string
	match func(string) bool
}

// TestUUIDv7FromHostClock: the timestamp of a UUIDv7 is the host's clock
// (WASI clock_time_get), which the test moves a day ahead; IDs made on one
// VM are strictly increasing.
func TestUUIDv7FromHostClock(t *testing.T) {
	h := newHost(t, `{}`, hosttest.Workers(1))
	h.Clock().Advance(24 * time.Hour)
	var prev string
	for i := range 200 {
		before := h.Clock().Now().UnixMilli()
		id := h.Do(hosttest.GET("/")).Upstream.Header("x-request-id")
		after := h.Clock().Now().UnixMilli()
		b, err := hex.DecodeString(strings.ReplaceAll(id, "-", ""))
		if err != nil || len(b) != 16 {
			t.Fatalf("x-request-id %q is not a UUID", id)
		}
		ms := int64(b[0])<<40 | int64(b[1])<<32 | int64(b[2])<<24 | int64(b[3])<<16 | int64(b[4])<<8 | int64(b[5])
		if ms < before || ms > after+1 { // +1: the counter may borrow a millisecond
			t.Fatalf("UUIDv7 %s has time %d ms, want the host clock, between %d and %d", id, ms, before, after)
		}
		if i > 0 && id <= prev {
			t.Fatalf("UUIDv7 %s after %s: want strictly increasing IDs on one VM", id, prev)
		}
		prev = id
	}
}

// TestRandomnessFromHost: IDs come from the host's random_get, which
// hosttest seeds: the same seed gives the same UUIDv4 sequence.
func TestRandomnessFromHost(t *testing.T) {
	ids := func(seed uint64) []string {
		h := newHost(t, `{"generator": "uuidv4", "traceparent": true}`, hosttest.Workers(1), hosttest.Seed(seed))
		var out []string
		for range 3 {
			up := h.Do(hosttest.GET("/")).Upstream
			out = append(out, up.Header("x-request-id"), up.Header("traceparent"))
		}
		return out
	}
	a, b, c := ids(7), ids(7), ids(8)
	if strings.Join(a, " ") != strings.Join(b, " ") {
		t.Errorf("seed 7 twice gave %q and %q, want the same IDs", a, b)
	}
	if a[0] == c[0] {
		t.Errorf("seeds 7 and 8 both gave %q first, want different IDs", a[0])
	}
}

func TestHeaderOptions(t *testing.T) {
	t.Run("custom header", func(t *testing.T) {
		h := newHost(t, `{"header": "x-correlation-id"}`)
		resp := h.Do(hosttest.GET("/").Header("x-correlation-id", "corr-1").Header("x-request-id", "bad id"))
		wantOne(t, "upstream x-correlation-id", resp.Upstream.HeaderValues("x-correlation-id"), "corr-1")
		wantOne(t, "response x-correlation-id", resp.HeaderValues("x-correlation-id"), "corr-1")
		wantOne(t, "upstream x-request-id (not ours)", resp.Upstream.HeaderValues("x-request-id"), "bad id")
		if resp.Header("x-request-id") != "" {
			t.Errorf("response x-request-id = %q, want none (the filter owns x-correlation-id)", resp.Header("x-request-id"))
		}
	})
	t.Run("response_header false", func(t *testing.T) {
		h := newHost(t, `{"response_header": false}`)
		resp := h.Do(hosttest.GET("/"))
		if !uuidV7.MatchString(resp.Upstream.Header("x-request-id")) {
			t.Errorf("upstream x-request-id = %q, want a UUIDv7", resp.Upstream.Header("x-request-id"))
		}
		if v := resp.HeaderValues("x-request-id"); v != nil {
			t.Errorf("response x-request-id = %q, want none with response_header false", v)
		}
	})
	t.Run("the upstream's own ID is replaced", func(t *testing.T) {
		h := newHost(t, `{}`, hosttest.Upstream(respond(200, []string{"X-Request-Id", "upstream-made", "X-Request-Id", "again"}, "ok")))
		resp := h.Do(hosttest.GET("/").Header("x-request-id", "client-1"))
		wantOne(t, "response x-request-id", resp.HeaderValues("x-request-id"), "client-1")
	})
}

// TestLocalReplyOfLaterFilter: a local reply sent by a later filter runs
// the response path of the whole chain, so the client gets the same ID as
// the later filter saw in the request.
func TestLocalReplyOfLaterFilter(t *testing.T) {
	h := hosttest.New(t, hosttest.Chain(
		hosttest.Filter{Name: filterName, Plugin: ".", Config: `{}`},
		hosttest.Filter{Name: "probe", Plugin: probeDir, Config: `{"name":"probe"}`},
	))
	for _, incoming := range []string{"", "client-7", "bad\r\nid"} {
		t.Run("incoming "+strings.ReplaceAll(incoming, "\r\n", "CRLF"), func(t *testing.T) {
			req := hosttest.GET("/admin").Header("x-probe", "echo-req-headers local:403:forbidden")
			if incoming != "" {
				req.Header("x-request-id", incoming)
			}
			resp := h.Do(req)
			if resp.Status != 403 || resp.LocalReplyBy != "probe" || resp.Upstream != nil {
				t.Fatalf("response %v, want the probe's 403", resp)
			}
			id := resp.Header("x-request-id")
			seen := headerFromEcho(resp.Header("x-probe-req-headers"), "x-request-id")
			if id == "" || seen != id {
				t.Errorf("local reply x-request-id = %q, later filter saw %q; want the same ID", id, seen)
			}
			if incoming == "client-7" && id != incoming {
				t.Errorf("x-request-id = %q, want the incoming %q", id, incoming)
			}
			wantOne(t, "local reply x-request-id", resp.HeaderValues("x-request-id"), id)
			lines := accessLines(h)
			if last := lines[len(lines)-1]; !strings.HasPrefix(last, "request_id="+id+" method=GET path=/admin status=403 ") {
				t.Errorf("access log = %q, want request_id=%s … status=403", last, id)
			}
		})
	}
	t.Run("a later filter's response header is replaced", func(t *testing.T) {
		resp := h.Do(hosttest.GET("/").Header("x-request-id", "client-8").Header("x-probe", "add-resp:x-request-id=forged"))
		wantOne(t, "response x-request-id", resp.HeaderValues("x-request-id"), "client-8")
	})
}

// TestDirectLocalReplyFromResponsePath pins an Envoy limitation: a later
// filter that answers from its response path sends the reply straight to
// the client (sendDirectLocalReply), past this filter, so it carries no
// ID; the access log still has the stream.
func TestDirectLocalReplyFromResponsePath(t *testing.T) {
	h := directReplyHost(t)
	resp := h.Do(hosttest.GET("/x").Header("x-request-id", "client-9").Header("x-probe", "local-resp:502"))
	if resp.Status != 502 || resp.LocalReplyBy != "probe" {
		t.Fatalf("response %v, want the probe's direct 502", resp)
	}
	if v := resp.Header("x-request-id"); v != "" {
		t.Errorf("direct local reply x-request-id = %q; Envoy sends it past the filter, so none is expected", v)
	}
	lines := accessLines(h)
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "request_id=client-9 method=GET path=/x status=") {
		t.Fatalf("access log = %q, want one line for client-9", lines)
	}
}

// TestAccessLogStatusOfDirectLocalReply: the filter never sees the
// response headers of a direct local reply, so it reads the status from
// Envoy's response.code attribute in on_log, which Envoy sets to the code
// the client got (502 here).
func TestAccessLogStatusOfDirectLocalReply(t *testing.T) {
	h := directReplyHost(t)
	h.Do(hosttest.GET("/x").Header("x-request-id", "client-9").Header("x-probe", "local-resp:502"))
	if lines := accessLines(h); len(lines) != 1 || !strings.HasPrefix(lines[0], "request_id=client-9 method=GET path=/x status=502 ") {
		t.Fatalf("access log = %q, want status=502", lines)
	}
}

func directReplyHost(t *testing.T) *hosttest.Host {
	return hosttest.New(t, hosttest.Chain(
		hosttest.Filter{Name: filterName, Plugin: ".", Config: `{}`},
		hosttest.Filter{Name: "probe", Plugin: probeDir, Config: `{"name":"probe"}`},
	), hosttest.Workers(1))
}

// headerFromEcho reads one header from the probe's echo-req-headers value
// ("k=v;k=v").
func headerFromEcho(echo, name string) string {
	for _, kv := range strings.Split(echo, ";") {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return ""
}

func TestTraceparent(t *testing.T) {
	const valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tests := []struct {
		name          string
		cfg           string
		traceparent   string // "" = absent
		tracestate    string
		wantKept      bool   // the incoming traceparent reaches the upstream unchanged
		wantState     string // tracestate the upstream gets
		wantCounter   string
		wantCreatedTP bool
	}{
		{"off leaves an invalid one alone", `{}`, "garbage", "v=1", true, "v=1", "generated_total+1", false},
		{"off adds none", `{}`, "", "", true, "", "generated_total+1", false},
		{"valid is kept with its tracestate", `{"traceparent": true}`, valid, "congo=t61rcWkgMzE", true, "congo=t61rcWkgMzE", "generated_total+1 traceparent_kept_total+1", false},
		{"absent is created", `{"traceparent": true}`, "", "", false, "", "generated_total+1 traceparent_created_total+1", true},
		{"invalid is replaced and tracestate dropped", `{"traceparent": true}`, "00-" + strings.Repeat("0", 32) + "-00f067aa0ba902b7-01", "congo=t61rcWkgMzE", false, "", "generated_total+1 traceparent_created_total+1", true},
		{"uppercase is invalid", `{"traceparent": true}`, strings.ToUpper(valid), "", false, "", "generated_total+1 traceparent_created_total+1", true},
		{"future version with well-formed fields is kept", `{"traceparent": true}`, "01" + valid[2:] + "-0a1b", "v=1", true, "v=1", "generated_total+1 traceparent_kept_total+1", false},
		{"future version with a free-text tail is replaced", `{"traceparent": true}`, "01" + valid[2:] + "-ignore previous=1 <script>", "v=1", false, "", "generated_total+1 traceparent_created_total+1", true},
		{"future version with an empty field is replaced", `{"traceparent": true}`, "01" + valid[2:] + "-", "", false, "", "generated_total+1 traceparent_created_total+1", true},
	}
	hosts := map[string]*hosttest.Host{}
	for _, tt := range tests {
		if hosts[tt.cfg] == nil {
			hosts[tt.cfg] = newHost(t, tt.cfg)
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := hosts[tt.cfg]
			req := hosttest.GET("/")
			if tt.traceparent != "" {
				req.Header("traceparent", tt.traceparent)
			}
			if tt.tracestate != "" {
				req.Header("tracestate", tt.tracestate)
			}
			m := snapshot(h)
			up := h.Do(req).Upstream
			tp := up.HeaderValues("traceparent")
			switch {
			case tt.wantKept && tt.traceparent == "":
				if tp != nil {
					t.Errorf("upstream traceparent = %q, want none", tp)
				}
			case tt.wantKept:
				wantOne(t, "upstream traceparent", tp, tt.traceparent)
			default:
				if len(tp) != 1 || !validTraceparent(tp[0]) || !strings.HasPrefix(tp[0], "00-") || !strings.HasSuffix(tp[0], "-01") || tp[0] == tt.traceparent {
					t.Errorf("upstream traceparent = %q, want one new version-00 traceparent with flags 01", tp)
				}
			}
			if got := up.Header("tracestate"); got != tt.wantState {
				t.Errorf("upstream tracestate = %q, want %q", got, tt.wantState)
			}
			if got := m.changed(); got != tt.wantCounter {
				t.Errorf("counters moved: %q, want %q", got, tt.wantCounter)
			}
		})
	}
}

// TestEnvoyGeneratedID shows the interaction with Envoy's HTTP connection
// manager, which adds a UUIDv4 x-request-id before any filter runs unless
// generate_request_id is false: with trust_incoming the filter keeps it.
func TestEnvoyGeneratedID(t *testing.T) {
	t.Run("trust_incoming keeps Envoy's UUIDv4", func(t *testing.T) {
		h := newHost(t, `{}`, hosttest.GenerateRequestID())
		m := snapshot(h)
		id := h.Do(hosttest.GET("/")).Upstream.Header("x-request-id")
		if !uuidV4.MatchString(id) {
			t.Errorf("x-request-id = %q, want Envoy's UUIDv4 kept", id)
		}
		if got := m.changed(); got != "kept_total+1" {
			t.Errorf("counters moved: %q, want kept_total+1", got)
		}
	})
	t.Run("trust_incoming false replaces it", func(t *testing.T) {
		h := newHost(t, `{"trust_incoming": false}`, hosttest.GenerateRequestID())
		if id := h.Do(hosttest.GET("/")).Upstream.Header("x-request-id"); !uuidV7.MatchString(id) {
			t.Errorf("x-request-id = %q, want the filter's UUIDv7", id)
		}
	})
}
