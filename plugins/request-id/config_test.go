package main

import (
	"github.com/concierge-wasm/concierge/shared/jsonenc"

	"reflect"
	"strings"
	"testing"

	"github.com/concierge-wasm/concierge/shared/reply"
)

func TestParseConfigDefaults(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"", "  \n\t\r", "{}"} {
		got, err := parseConfig([]byte(in))
		if err != nil {
			t.Fatalf("parseConfig(%q) error = %v", in, err)
		}
		want := defaultConfig()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("parseConfig(%q) = %+v, want %+v", in, got, want)
		}
	}
	c := defaultConfig()
	if c.header != "x-request-id" || c.trust != trustAll || c.externalIDHeader != "" || c.maxBufferedBytes != 64<<20 || c.generator != generatorUUIDv7 || !c.responseHeader ||
		c.traceparent || !c.accessLog || c.rules.Shadow || c.errorFormat != reply.JSON || c.rules.Rules != nil {
		t.Errorf("defaultConfig() = %+v, want the defaults of the issue", c)
	}
	e := c.envelope
	if e.enabled || !reflect.DeepEqual(e.contentTypes, []string{"application/json"}) || e.maxBodyBytes != 1<<20 ||
		e.statuses != nil || e.fields != (envelopeFields{"requestId", "timestamp", "data"}) {
		t.Errorf("defaultConfig().envelope = %+v, want disabled, application/json, 1 MiB, all statuses, requestId/timestamp/data", e)
	}
}

func TestParseConfig(t *testing.T) {
	t.Parallel()
	in := `{
		"header": "x-correlation-id",
		"trust_incoming": false,
		"external_id_header": "x-client-id",
		"max_buffered_bytes": 8388608,
		"generator": "uuidv4",
		"response_header": false,
		"traceparent": true,
		"access_log": false,
		"envelope": {
			"enabled": true,
			"content_types": ["application/json", "Application/Problem+JSON"],
			"max_body_bytes": 65536,
			"statuses": [200, 201, 404],
			"fields": {"request_id": "id", "timestamp": "at", "data": "payload"}
		},
		"rules": [{"match": {"prefix": "/raw"}, "envelope": {"enabled": false}}],
		"shadow": true,
		"error_format": "problem+json"
	}`
	c, err := parseConfig([]byte(in))
	if err != nil {
		t.Fatalf("parseConfig() error = %v", err)
	}
	if c.header != "x-correlation-id" || c.trust != trustNone || c.externalIDHeader != "x-client-id" || c.maxBufferedBytes != 8<<20 || c.generator != generatorUUIDv4 || c.responseHeader ||
		!c.traceparent || c.accessLog || !c.rules.Shadow || c.errorFormat != reply.Problem {
		t.Errorf("parseConfig() = %+v, want every top-level field set", c)
	}
	e := c.envelope
	if !e.enabled || !reflect.DeepEqual(e.contentTypes, []string{"application/json", "application/problem+json"}) ||
		e.maxBodyBytes != 65536 || !reflect.DeepEqual(e.statuses, []int{200, 201, 404}) ||
		e.fields != (envelopeFields{"id", "at", "payload"}) {
		t.Errorf("parseConfig().envelope = %+v, want every envelope field set", e)
	}
	if got, want := e.open+"X"+e.mid+"T"+e.tail, `{"id":"X","at":"T","payload":`; got != want {
		t.Errorf("parseConfig().envelope fragments = %s, want %s", got, want)
	}
	if len(c.rules.Rules) != 1 {
		t.Fatalf("parseConfig().rules = %+v, want 1 rule", c.rules.Rules)
	}
	// The rule's envelope is the top-level one with its own change applied.
	r := c.rules.Rules[0]
	if re := r.Override.envelope; re.enabled || re.maxBodyBytes != 65536 || re.fields != e.fields || !r.Enabled || !r.Shadow {
		t.Errorf("rules[0] = %+v, want the top-level envelope with enabled false, inheriting shadow", r)
	}

	// Partial fields keep the other defaults.
	c, err = parseConfig([]byte(`{"envelope": {"max_body_bytes": 1000, "fields": {"data": "body"}}}`))
	if err != nil {
		t.Fatalf("parseConfig() error = %v", err)
	}
	if c.envelope.maxBodyBytes != 1000 || c.envelope.fields != (envelopeFields{"requestId", "timestamp", "body"}) {
		t.Errorf("parseConfig() envelope = %+v, want max 1000, fields requestId/timestamp/body", c.envelope)
	}
}

// TestRuleEnvelopeOverBase: a rule's envelope overrides only what it names,
// and a rule without one gets the top-level envelope.
func TestRuleEnvelopeOverBase(t *testing.T) {
	t.Parallel()
	c, err := parseConfig([]byte(`{
		"envelope": {"enabled": true, "max_body_bytes": 100, "fields": {"data": "body"}},
		"rules": [
			{"match": {"prefix": "/a"}, "envelope": {"statuses": [200], "fields": {"timestamp": "ts"}}},
			{"match": {"prefix": "/b"}, "enabled": false},
			{"match": {"prefix": "/c"}, "shadow": true}
		]}`))
	if err != nil {
		t.Fatalf("parseConfig() error = %v", err)
	}
	e := c.rules.Rules[0].Override.envelope
	if !e.enabled || e.maxBodyBytes != 100 || !reflect.DeepEqual(e.statuses, []int{200}) ||
		e.fields != (envelopeFields{"requestId", "ts", "body"}) {
		t.Errorf("rules[0].envelope over base = %+v", e)
	}
	if got, want := e.open+"X"+e.mid+"T"+e.tail, `{"requestId":"X","ts":"T","body":`; got != want {
		t.Errorf("rules[0].envelope fragments = %s, want %s", got, want)
	}
	if c.envelope.statuses != nil || c.envelope.fields.timestamp != "timestamp" {
		t.Errorf("a rule's envelope changed the top-level one: %+v", c.envelope)
	}
	for i, r := range c.rules.Rules[1:] {
		if !reflect.DeepEqual(r.Override.envelope, c.envelope) {
			t.Errorf("rules[%d].envelope = %+v, want the top-level %+v", i+1, r.Override.envelope, c.envelope)
		}
	}
	if r := c.rules.Rules[1]; r.Enabled || r.Shadow {
		t.Errorf("rules[1] = enabled %v, shadow %v, want false, false", r.Enabled, r.Shadow)
	}
	if r := c.rules.Rules[2]; !r.Enabled || !r.Shadow {
		t.Errorf("rules[2] = enabled %v, shadow %v, want true, true", r.Enabled, r.Shadow)
	}
}

func TestParseConfigErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{`{`, `invalid JSON: line 1, column 2: unexpected end of input`},
		{"\u00a0", `invalid JSON: line 1, column 1: unexpected '\u00a0'`},
		{`{"header": "x"} x`, `invalid JSON: line 1, column 17: unexpected data after the top-level value`},
		{"{\n  \"header\": \"x\",\n}", `invalid JSON: line 3, column 1: unexpected '}'`},
		{`[]`, `configuration must be a JSON object, got []`},
		{"[1, 2,\n 3]", `configuration must be a JSON object, got [1,2,3]`},
		{`"x"`, `configuration must be a JSON object, got "x"`},
		{`null`, `configuration must be a JSON object, got null`},
		{`{"headr": "x"}`, `unknown field "headr"`},
		{`{"enabled": false}`, `unknown field "enabled"`},
		{`{"header": "a", "header": "b"}`, `duplicate field "header"`},
		{`{"header": "X Bad"}`, `header: must be a valid lowercase HTTP header name, got "X Bad"`},
		{`{"header": "X-Request-Id"}`, `header: must be a valid lowercase HTTP header name, got "X-Request-Id"`},
		{`{"header": ""}`, `header: must be a valid lowercase HTTP header name, got ""`},
		{`{"header": ":authority"}`, `header: must be a valid lowercase HTTP header name, got ":authority"`},
		{`{"header": "content-length"}`, `header: must not be "content-length": the proxy, HTTP framing or tracing owns it`},
		{`{"header": "traceparent"}`, `header: must not be "traceparent": the proxy, HTTP framing or tracing owns it`},
		{`{"header": "host"}`, `header: must not be "host": the proxy, HTTP framing or tracing owns it`},
		{`{"header": "x-id\r\n"}`, `header: must be a valid lowercase HTTP header name, got "x-id\r\n"`},
		{`{"header": 5}`, `header: must be a string, got 5`},
		{`{"trust_incoming": "yes"}`, `trust_incoming: must be true, false or "internal", got "yes"`},
		{`{"trust_incoming": null}`, `trust_incoming: must be true, false or "internal", got null`},
		{`{"max_buffered_bytes": 1000}`, `max_buffered_bytes: must be >= envelope.max_body_bytes (1048576), got 1000`},
		{`{"envelope": {"max_body_bytes": 4096}, "max_buffered_bytes": 4095}`, `max_buffered_bytes: must be >= envelope.max_body_bytes (4096), got 4095`},
		{`{"max_buffered_bytes": 1073741825}`, `max_buffered_bytes: must be <= 1073741824 (Envoy's limit on a VM's memory), got 1073741825`},
		{`{"max_buffered_bytes": "64Mi"}`, `max_buffered_bytes: must be an integer, got "64Mi"`},
		{`{"trust_incoming": "Internal"}`, `trust_incoming: must be true, false or "internal", got "Internal"`},
		{`{"trust_incoming": "internal", "external_id_header": "x-request-id"}`, `external_id_header: must differ from header, both "x-request-id"`},
		{`{"external_id_header": "x-client-request-id"}`, `external_id_header: needs trust_incoming false or "internal": with true no valid incoming ID is replaced, got "x-client-request-id"`},
		{`{"trust_incoming": false, "external_id_header": "X-Client"}`, `external_id_header: must be a valid lowercase HTTP header name, got "X-Client"`},
		{`{"trust_incoming": false, "external_id_header": "traceparent"}`, `external_id_header: must not be "traceparent": the proxy, HTTP framing or tracing owns it`},
		{`{"generator": "uuid1"}`, `generator: must be one of "uuidv4", "uuidv7", got "uuid1"`},
		{`{"generator": "UUIDv7"}`, `generator: must be one of "uuidv4", "uuidv7", got "UUIDv7"`},
		{`{"generator": 7}`, `generator: must be one of "uuidv4", "uuidv7", got 7`},
		{`{"response_header": 1}`, `response_header: must be a boolean, got 1`},
		{`{"traceparent": {}}`, `traceparent: must be a boolean, got {}`},
		{`{"access_log": []}`, `access_log: must be a boolean, got []`},
		{`{"shadow": "true"}`, `shadow: must be a boolean, got "true"`},
		{`{"error_format": "xml"}`, `error_format: must be one of "json", "problem+json", got "xml"`},
		{`{"error_format": 1}`, `error_format: must be one of "json", "problem+json", got 1`},
		{`{"rules": {"match": {"prefix": "/"}}}`, `rules: must be an array of objects, got {"match":{"prefix":"/"}}`},
		{`{"rules": [{"match": {"prefix": "/"}, "envelop": {}}]}`, `rules[0]: unknown field "envelop"`},
		{`{"rules": [{"match": {"prefx": "/"}}]}`, `rules[0].match: unknown field "prefx"`},
		{`{"rules": [{"match": {"prefix": "api"}}]}`, `rules[0].match.prefix: must start with "/", got "api"`},
		{`{"rules": [{"enabled": "no"}]}`, `rules[0].enabled: must be a boolean, got "no"`},
		{`{"rules": [{"shadow": 1}]}`, `rules[0].shadow: must be a boolean, got 1`},
		{`{"rules": [{"match": {"prefix": "/a"}, "envelope": {"max_body_bytes": 0}}]}`, `rules[0].envelope.max_body_bytes: must be > 0, got 0`},
		{`{"rules": [{"match": {"prefix": "/a"}, "envelope": {"enabeld": true}}]}`, `rules[0].envelope: unknown field "enabeld"`},
		{`{"rules": [{"match": {"prefix": "/a"}, "header": "x-other"}]}`, `rules[0]: unknown field "header"`},
		{`{"rules": [{"enabled": false}, {"match": {"prefix": "/a"}}]}`, `rules[1]: unreachable: rules[0] matches every request`},
		{`{"envelope": true}`, `envelope: must be an object, got true`},
		{`{"envelope": {"enabeld": true}}`, `envelope: unknown field "enabeld"`},
		{`{"envelope": {"enabled": true, "enabled": false}}`, `envelope: duplicate field "enabled"`},
		{`{"envelope": {"enabled": "on"}}`, `envelope.enabled: must be a boolean, got "on"`},
		{`{"envelope": {"max_body_bytes": 0}}`, `envelope.max_body_bytes: must be > 0, got 0`},
		{`{"envelope": {"max_body_bytes": -1}}`, `envelope.max_body_bytes: must be > 0, got -1`},
		{`{"envelope": {"max_body_bytes": 1.5}}`, `envelope.max_body_bytes: must be an integer, got 1.5`},
		{`{"envelope": {"max_body_bytes": "1MiB"}}`, `envelope.max_body_bytes: must be an integer, got "1MiB"`},
		{`{"envelope": {"max_body_bytes": 16777217}}`, `envelope.max_body_bytes: must be <= 16777216, got 16777217`},
		{`{"envelope": {"max_body_bytes": 1e3}}`, `envelope.max_body_bytes: must be an integer, got 1e3`},
		{`{"envelope": {"max_body_bytes": 99999999999999999999}}`, `envelope.max_body_bytes: must be an integer between -9223372036854775808 and 9223372036854775807, got 99999999999999999999`},
		{`{"envelope": {"content_types": "application/json"}}`, `envelope.content_types: must be an array of strings, got "application/json"`},
		{`{"envelope": {"content_types": []}}`, `envelope.content_types: must not be empty, got []`},
		{`{"envelope": {"content_types": ["application/json", 1]}}`, `envelope.content_types[1]: must be a string, got 1`},
		{`{"envelope": {"content_types": ["json"]}}`, `envelope.content_types[0]: must be a media type like "application/json" (no parameters, no wildcards), got "json"`},
		{`{"envelope": {"content_types": ["application/json; charset=utf-8"]}}`, `envelope.content_types[0]: must be a media type like "application/json" (no parameters, no wildcards), got "application/json; charset=utf-8"`},
		{`{"envelope": {"content_types": ["application/*"]}}`, `envelope.content_types[0]: must be a media type like "application/json" (no parameters, no wildcards), got "application/*"`},
		{`{"envelope": {"content_types": ["a/b/c"]}}`, `envelope.content_types[0]: must be a media type like "application/json" (no parameters, no wildcards), got "a/b/c"`},
		{`{"envelope": {"statuses": 200}}`, `envelope.statuses: must be an array of status codes, got 200`},
		{`{"envelope": {"statuses": []}}`, `envelope.statuses: must not be empty (leave it out to wrap every status), got []`},
		{`{"envelope": {"statuses": [200, 700]}}`, `envelope.statuses[1]: must be an HTTP status code from 200 to 599, got 700`},
		{`{"envelope": {"statuses": [100]}}`, `envelope.statuses[0]: must be an HTTP status code from 200 to 599, got 100`},
		{`{"envelope": {"statuses": ["200"]}}`, `envelope.statuses[0]: must be an integer, got "200"`},
		{`{"envelope": {"statuses": [204]}}`, `envelope.statuses[0]: a 204 response has no body to wrap, got 204`},
		{`{"envelope": {"statuses": [200, 304]}}`, `envelope.statuses[1]: a 304 response has no body to wrap, got 304`},
		{`{"envelope": {"fields": []}}`, `envelope.fields: must be an object, got []`},
		{`{"envelope": {"fields": {"requestId": "id"}}}`, `envelope.fields: unknown field "requestId"`},
		{`{"envelope": {"fields": {"data": ""}}}`, `envelope.fields.data: must not be empty, got ""`},
		{`{"envelope": {"fields": {"timestamp": null}}}`, `envelope.fields.timestamp: must be a string, got null`},
		{`{"envelope": {"fields": {"data": "requestId"}}}`, `envelope.fields: request_id and data must differ, both "requestId"`},
		{`{"envelope": {"fields": {"request_id": "t", "timestamp": "t"}}}`, `envelope.fields: request_id and timestamp must differ, both "t"`},
		{`{"envelope": {"fields": {"timestamp": "d", "data": "d"}}}`, `envelope.fields: timestamp and data must differ, both "d"`},
		{`{"header": "` + strings.Repeat("A", 100) + `"}`, `header: must be a valid lowercase HTTP header name, got "` + strings.Repeat("A", 63) + `...`},
		{`{"header": "` + strings.Repeat("é", 40) + `"}`, `header: must be a valid lowercase HTTP header name, got "` + strings.Repeat("é", 31) + `...`},
	}
	for _, tt := range tests {
		c, err := parseConfig([]byte(tt.in))
		if err == nil || err.Error() != tt.want {
			t.Errorf("parseConfig(%s) error = %v, want %s", tt.in, err, tt.want)
		}
		if err != nil && !reflect.DeepEqual(c, config{}) {
			t.Errorf("parseConfig(%s) = %+v with an error, want the zero config", tt.in, c)
		}
	}
}

// TestParseConfigHeaderNames: any RFC 9110 token in lowercase is accepted.
func TestParseConfigHeaderNames(t *testing.T) {
	t.Parallel()
	for _, h := range []string{"x-request-id", "request-id", "x-amzn-trace-id", "x_id", "x.id", "a", "!#$%&'*+-.^_`|~09"} {
		c, err := parseConfig([]byte(`{"header": ` + jsonQuote(h) + `}`))
		if err != nil || c.header != h {
			t.Errorf("parseConfig(header %q) = %q, %v, want %q, nil", h, c.header, err, h)
		}
	}
}

func jsonQuote(s string) string { return string(jsonenc.AppendString(nil, s)) }

// FuzzParseConfig: no configuration makes parseConfig panic, and one it
// accepts is usable: a valid header and a compiled envelope everywhere.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{``, `{}`, fullConfigForFuzz, `{"envelope":{"fields":{"data":"\u2028"}}}`,
		`{"rules":[{"match":{"prefix":"/a"},"envelope":{"statuses":[200]}}]}`, `{"header":"X"}`, `[`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parseConfig(data)
		if err != nil {
			return
		}
		if !isLowercaseToken(c.header) || c.envelope.open == "" {
			t.Fatalf("parseConfig(%q) = header %q, envelope %+v", data, c.header, c.envelope)
		}
		for _, r := range c.rules.Rules {
			if r.Override.envelope.open == "" || r.Override.envelope.maxBodyBytes <= 0 {
				t.Fatalf("parseConfig(%q): rule %d envelope %+v", data, r.Index, r.Override.envelope)
			}
		}
	})
}

const fullConfigForFuzz = `{"header":"x-correlation-id","trust_incoming":false,"generator":"uuidv4","response_header":true,
"traceparent":true,"access_log":true,"max_buffered_bytes":1000,"envelope":{"enabled":true,"content_types":["application/json"],"max_body_bytes":100,
"statuses":[200],"fields":{"request_id":"a","timestamp":"b","data":"c"}},"shadow":true,
"rules":[{"match":{"prefix":"/x"},"enabled":false}],"error_format":"problem+json"}`
