package main

import (
	"github.com/concierge-wasm/concierge/shared/jsonenc"

	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	jsonconfig "github.com/concierge-wasm/concierge/shared/config"
	"github.com/concierge-wasm/concierge/shared/reply"
	"github.com/concierge-wasm/concierge/shared/rules"
)

// config is the parsed plugin configuration; defaultConfig gives the
// defaults of the configuration table in README.md. It is immutable once
// parseConfig returns.
type config struct {
	header string    // "header": the request ID header, lowercase
	trust  trustMode // "trust_incoming": which valid incoming IDs are kept
	// externalIDHeader is "external_id_header": where an untrusted
	// request's valid ID goes when it is replaced ("" for nowhere).
	externalIDHeader string
	generator        generatorKind // "generator"
	responseHeader   bool          // "response_header": echo the ID to the client
	traceparent      bool          // "traceparent": keep or create a W3C traceparent
	accessLog        bool          // "access_log": one info line per stream
	envelope         envelopeConfig
	// maxBufferedBytes is "max_buffered_bytes": the body bytes the
	// envelope holds at once over all streams of one VM.
	maxBufferedBytes int
	// rules are the per-route "rules"; rules.Shadow is the top-level
	// "shadow". A rule may override "enabled", "shadow" and "envelope".
	rules rules.Set[ruleOverride]
	// errorFormat is the shared "error_format" option. request-id sends no
	// responses of its own, so it is validated and otherwise unused: it is
	// accepted so that one option block fits every concierge filter.
	errorFormat reply.Format
}

// ruleOverride is what a rule may set besides match, enabled and shadow.
type ruleOverride struct {
	// envelope is complete: the top-level envelope with the rule's own
	// "envelope" fields applied over it.
	envelope envelopeConfig
}

// trustMode is "trust_incoming": which requests may keep a valid incoming ID.
type trustMode uint8

const (
	trustAll      trustMode = iota // true: every request
	trustNone                      // false: none, every request gets a fresh ID
	trustInternal                  // "internal": requests Envoy marked x-envoy-internal: true
)

// Defaults and bounds.
const (
	defaultHeader = reply.DefaultRequestIDHeader
	// maxMaxBodyBytes bounds envelope.max_body_bytes: a held body lives in
	// the VM's linear memory, which never shrinks.
	maxMaxBodyBytes = 16 << 20
	// defaultMaxBufferedBytes bounds what one VM holds for envelopes: 64
	// bodies of the default 1 MiB at once.
	defaultMaxBufferedBytes = 64 << 20
	// maxMaxBufferedBytes is Envoy's limit on a VM's linear memory (1 GiB).
	maxMaxBufferedBytes = 1 << 30
)

// defaultConfig returns the configuration of an empty configuration.
func defaultConfig() config {
	return config{
		header:           defaultHeader,
		trust:            trustAll,
		generator:        generatorUUIDv7,
		responseHeader:   true,
		accessLog:        true,
		envelope:         defaultEnvelopeConfig(),
		maxBufferedBytes: defaultMaxBufferedBytes,
		errorFormat:      reply.JSON,
	}
}

// parseConfig decodes, defaults and validates the plugin configuration with
// shared/config: an empty configuration gives the defaults; errors start
// with the field path and name the bad value; unknown and repeated fields
// are errors.
func parseConfig(data []byte) (config, error) {
	o, err := jsonconfig.Parse(data)
	if err != nil {
		return config{}, err
	}
	c := defaultConfig()
	c.header = parseHeaderName(o, "header", c.header)
	c.trust = parseTrust(o, c.trust)
	c.externalIDHeader = parseHeaderName(o, "external_id_header", "")
	switch {
	case c.externalIDHeader == "":
	case c.externalIDHeader == c.header:
		o.Errorf("external_id_header", "must differ from header, both %s", showString(c.header))
	case c.trust == trustAll:
		o.Errorf("external_id_header", `needs trust_incoming false or "internal": with true no valid incoming ID is replaced, got %s`, showString(c.externalIDHeader))
	}
	if o.Enum("generator", "uuidv7", "uuidv4", "uuidv7") == "uuidv4" {
		c.generator = generatorUUIDv4
	}
	c.responseHeader = o.Bool("response_header", c.responseHeader)
	c.traceparent = o.Bool("traceparent", c.traceparent)
	c.accessLog = o.Bool("access_log", c.accessLog)
	c.envelope = parseEnvelope(o, c.envelope)
	if o.Has("max_buffered_bytes") {
		switch n := o.Int("max_buffered_bytes", c.maxBufferedBytes); {
		case n < c.envelope.maxBodyBytes:
			o.Errorf("max_buffered_bytes", "must be >= envelope.max_body_bytes (%d), got %d", c.envelope.maxBodyBytes, n)
		case n > maxMaxBufferedBytes:
			o.Errorf("max_buffered_bytes", "must be <= %d (Envoy's limit on a VM's memory), got %d", maxMaxBufferedBytes, n)
		default:
			c.maxBufferedBytes = n
		}
	}
	top := c.envelope
	c.rules = rules.Parse(o, func(r *jsonconfig.Object) ruleOverride {
		return ruleOverride{envelope: parseEnvelope(r, top)}
	})
	c.errorFormat = reply.ParseFormat(o)
	if err := o.Err(); err != nil {
		return config{}, err
	}
	return c, nil
}

// parseTrust reads "trust_incoming": true, false or "internal".
func parseTrust(o *jsonconfig.Object, def trustMode) trustMode {
	if !o.Has("trust_incoming") {
		return def
	}
	switch v := o.Raw("trust_incoming"); {
	case v.Type == gjson.True:
		return trustAll
	case v.Type == gjson.False:
		return trustNone
	case v.Type == gjson.String && v.Str == "internal":
		return trustInternal
	default:
		o.Errorf("trust_incoming", `must be true, false or "internal", got %s`, jsonconfig.Show(v))
		return def
	}
}

// reservedHeaders are header names the filter refuses to own: writing a
// request ID into them would break HTTP framing, routing or tracing.
var reservedHeaders = []string{
	"connection", "content-encoding", "content-length", "content-type", "host", "keep-alive",
	"proxy-connection", "te", "trailer", "traceparent", "tracestate", "transfer-encoding", "upgrade",
}

// parseHeaderName reads a lowercase HTTP field name (RFC 9110 §5.1 token)
// that is not one of reservedHeaders.
func parseHeaderName(o *jsonconfig.Object, key, def string) string {
	if !o.Has(key) {
		return def
	}
	s := o.String(key, def)
	if o.Raw(key).Type != gjson.String {
		return def // the type error is recorded
	}
	if !isLowercaseToken(s) {
		o.Errorf(key, "must be a valid lowercase HTTP header name, got %s", showString(s))
		return def
	}
	for _, r := range reservedHeaders {
		if s == r {
			o.Errorf(key, "must not be %s: the proxy, HTTP framing or tracing owns it", showString(s))
			return def
		}
	}
	return s
}

// parseEnvelope reads the "envelope" object of o over base: fields present
// replace those of base, so a rule's envelope can override only some fields
// of the top-level one. Without an "envelope" object it returns base.
func parseEnvelope(o *jsonconfig.Object, base envelopeConfig) envelopeConfig {
	eo, ok := o.Object("envelope")
	if !ok {
		return base
	}
	e := base
	e.enabled = eo.Bool("enabled", e.enabled)
	e.contentTypes = parseContentTypes(eo, e.contentTypes)
	if eo.Has("max_body_bytes") {
		switch n := eo.Int("max_body_bytes", e.maxBodyBytes); {
		case n <= 0:
			eo.Errorf("max_body_bytes", "must be > 0, got %d", n)
		case n > maxMaxBodyBytes:
			eo.Errorf("max_body_bytes", "must be <= %d, got %d", maxMaxBodyBytes, n)
		default:
			e.maxBodyBytes = n
		}
	}
	e.statuses = parseStatuses(eo, e.statuses)
	if fo, ok := eo.Object("fields"); ok {
		e.fields = parseEnvelopeFields(fo, e.fields)
	}
	e.compile()
	return e
}

// parseEnvelopeFields reads "envelope.fields" over base.
func parseEnvelopeFields(o *jsonconfig.Object, base envelopeFields) envelopeFields {
	f := base
	for _, fld := range []struct {
		key string
		dst *string
	}{{"request_id", &f.requestID}, {"timestamp", &f.timestamp}, {"data", &f.data}} {
		if !o.Has(fld.key) {
			continue
		}
		s := o.String(fld.key, *fld.dst)
		if s == "" {
			o.Errorf(fld.key, `must not be empty, got ""`)
			continue
		}
		*fld.dst = s
	}
	switch {
	case f.requestID == f.timestamp:
		o.Errorf("", "request_id and timestamp must differ, both %s", showString(f.requestID))
	case f.requestID == f.data:
		o.Errorf("", "request_id and data must differ, both %s", showString(f.requestID))
	case f.timestamp == f.data:
		o.Errorf("", "timestamp and data must differ, both %s", showString(f.timestamp))
	}
	return f
}

// parseContentTypes reads "content_types": a non-empty array of media types
// without parameters or wildcards, kept lowercase.
func parseContentTypes(o *jsonconfig.Object, def []string) []string {
	list := o.Strings("content_types", nil)
	if list == nil {
		return def // absent, or the type error is recorded
	}
	if len(list) == 0 {
		o.Errorf("content_types", "must not be empty, got []")
		return def
	}
	out := make([]string, len(list))
	for i, s := range list {
		lower := strings.ToLower(s)
		typ, sub, ok := strings.Cut(lower, "/")
		if !ok || !isLowercaseToken(typ) || !isLowercaseToken(sub) || strings.Contains(lower, "*") {
			o.Errorf("content_types["+strconv.Itoa(i)+"]",
				`must be a media type like "application/json" (no parameters, no wildcards), got %s`, showString(s))
			return def
		}
		out[i] = lower
	}
	return out
}

// parseStatuses reads "statuses": a non-empty array of HTTP status codes
// that can carry a body (200–599 except 204, 205 and 304). shared/config has
// no integer-array getter, so the array is read raw.
func parseStatuses(o *jsonconfig.Object, def []int) []int {
	if !o.Has("statuses") {
		return def
	}
	v := o.Raw("statuses")
	if !v.IsArray() {
		o.Errorf("statuses", "must be an array of status codes, got %s", jsonconfig.Show(v))
		return def
	}
	items := v.Array()
	if len(items) == 0 {
		o.Errorf("statuses", "must not be empty (leave it out to wrap every status), got []")
		return def
	}
	out := make([]int, len(items))
	for i, item := range items {
		key := "statuses[" + strconv.Itoa(i) + "]"
		n, err := strconv.Atoi(item.Raw)
		switch {
		case item.Type != gjson.Number || err != nil:
			o.Errorf(key, "must be an integer, got %s", jsonconfig.Show(item))
			return def
		case n < 200 || n > 599:
			o.Errorf(key, "must be an HTTP status code from 200 to 599, got %d", n)
			return def
		case n == 204 || n == 205 || n == 304:
			o.Errorf(key, "a %d response has no body to wrap, got %d", n, n)
			return def
		}
		out[i] = n
	}
	return out
}

// showString renders a string value for an error message the same way.
func showString(s string) string {
	return jsonconfig.Show(gjson.Result{Type: gjson.String, Raw: string(jsonenc.AppendString(nil, s))})
}

// isLowercaseToken reports whether s is a non-empty RFC 9110 token with no
// uppercase letters.
func isLowercaseToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
