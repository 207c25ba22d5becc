package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/concierge-wasm/concierge/shared/reply"
)

func TestParseRLSResponse(t *testing.T) {
	cases := []struct {
		status  int
		body    string
		over    bool
		retry   time.Duration
		wantErr string
	}{
		{200, `{"overallCode":"OK"}`, false, 0, ""},
		{200, ``, false, 0, ""},
		{429, `{"overallCode":"OVER_LIMIT","statuses":[{"code":"OVER_LIMIT","durationUntilReset":"2.500s"},{"durationUntilReset":"61s"}]}`, true, 61 * time.Second, ""},
		{429, ``, true, 0, ""},
		{0, ``, false, 0, "no response (connection reset)"},
		{504, `upstream request timeout`, false, 0, "status 504"},
		{200, `<html>`, false, 0, "status 200 with a body that is not JSON"},
		{200, `[1]`, false, 0, "status 200 with a body that is not a JSON object"},
		{429, `{"overallCode":"OK"}`, false, 0, `status 429 disagrees with overallCode "OK"`},
	}
	for _, c := range cases {
		out, err := parseRLSResponse(c.status, []byte(c.body))
		if c.wantErr != "" {
			if err == nil || err.Error() != c.wantErr {
				t.Errorf("parseRLSResponse(%d, %q) error = %v, want %s", c.status, c.body, err, c.wantErr)
			}
			continue
		}
		if err != nil || out.overLimit != c.over || out.retry != c.retry {
			t.Errorf("parseRLSResponse(%d, %q) = %+v, %v; want over %v retry %v", c.status, c.body, out, err, c.over, c.retry)
		}
	}
}

func TestRLSRequestIsJSON(t *testing.T) {
	b := appendRLSRequest(nil, "d\"x", []descriptorEntry{{"k", "v\x01\xff\\"}})
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("appendRLSRequest = %s: %v", b, err)
	}
	if got := m["descriptors"].([]any)[0].(map[string]any)["entries"].([]any)[0].(map[string]any)["value"]; got != "v\x01\ufffd\\" {
		t.Errorf("value = %q", got)
	}
}

func TestDenialBody(t *testing.T) {
	for _, id := range []string{"", "req-1", `,"requestId":"x"}`} {
		for _, f := range []reply.Format{reply.JSON, reply.Problem} {
			b := appendDenialBody(nil, f, 3, id)
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatalf("appendDenialBody(%v, %q) = %s: %v", f, id, b, err)
			}
			if m["retryAfter"] != float64(3) || m["requestId"] != id {
				t.Errorf("appendDenialBody(%v, %q) = %s", f, id, b)
			}
		}
	}
}
