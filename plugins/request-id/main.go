// Command request-id is a proxy-wasm HTTP filter that gives every request
// one correlation ID, end to end, and optionally wraps JSON responses in an
// envelope that carries it. See README.md.
//
// This file is wiring only: the proxy-wasm contexts and callbacks, host
// calls and metrics. The decisions live in plain Go: config.go, id.go,
// traceparent.go, envelope.go and accesslog.go.
package main

import (
	"encoding/binary"
	"errors"
	"strconv"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetPluginContext(func(uint32) types.PluginContext { return &pluginContext{} })
}

// pluginContext is one configured instance of the filter in one VM.
type pluginContext struct {
	types.DefaultPluginContext
	cfg     config
	ids     *idGenerator // per VM: UUIDv7 stays monotonic within it
	metrics metrics
	budget  heldBudget // max_buffered_bytes, shared by this VM's streams
}

// metrics are the filter's counters. Every request the filter handles
// counts in exactly one of kept, generated and replaced. Counters are only
// ever incremented by 1: the SDK panics when the host refuses a delta of 0.
type metrics struct {
	kept, generated, replaced          proxywasm.MetricCounter
	traceparentKept, traceparentNew    proxywasm.MetricCounter
	enveloped, envelopeSkipped         proxywasm.MetricCounter
	envelopeTruncated, shadow, failure proxywasm.MetricCounter
	envelopeOverBudget                 proxywasm.MetricCounter
}

// metricPrefix is the concierge_<plugin>_ prefix of convention 8 (README.md).
const metricPrefix = "concierge_request_id_"

func defineMetrics() metrics {
	c := func(name string) proxywasm.MetricCounter { return proxywasm.DefineCounterMetric(metricPrefix + name) }
	return metrics{
		kept:               c("kept_total"),
		generated:          c("generated_total"),
		replaced:           c("replaced_total"),
		traceparentKept:    c("traceparent_kept_total"),
		traceparentNew:     c("traceparent_created_total"),
		enveloped:          c("enveloped_total"),
		envelopeSkipped:    c("envelope_skipped_total"),
		envelopeTruncated:  c("envelope_truncated_total"),
		envelopeOverBudget: c("envelope_over_budget_total"),
		shadow:             c("shadow_total"),
		failure:            c("errors_total"),
	}
}

// OnPluginStart parses the configuration; a bad one is logged and refused
// (the host then refuses the filter), never replaced by defaults.
func (p *pluginContext) OnPluginStart(int) types.OnPluginStartStatus {
	data, err := proxywasm.GetPluginConfiguration()
	if err != nil && !errors.Is(err, types.ErrorStatusNotFound) { // NotFound: no configuration
		proxywasm.LogError("reading the plugin configuration: " + err.Error())
		return types.OnPluginStartStatusFailed
	}
	cfg, err := parseConfig(data)
	if err != nil {
		proxywasm.LogError(err.Error())
		return types.OnPluginStartStatusFailed
	}
	p.cfg = cfg
	p.ids = newIDGenerator(cfg.generator, hostRand)
	p.metrics = defineMetrics()
	p.budget = heldBudget{limit: cfg.maxBufferedBytes}
	return types.OnPluginStartStatusOK
}

func (p *pluginContext) NewHttpContext(uint32) types.HttpContext { return &httpContext{p: p} }

// httpContext is one stream. Envoy makes the request headers readable only
// in on_request_headers, so everything later callbacks need is kept here.
type httpContext struct {
	types.DefaultHttpContext
	p *pluginContext

	// handled is false when a rule switched the filter off for this
	// request, or when it never saw the request headers (an earlier filter
	// answered): the filter then leaves the stream alone.
	handled bool
	shadow  bool // decide, log and count, but change nothing
	id      string
	method  string
	path    string
	start   time.Time
	env     *envelopeConfig // the envelope settings for this request's rule

	status   int   // response status, for the access log
	bytes    int64 // response body bytes sent downstream
	wrapping bool  // the response body goes through body
	counted  bool  // the envelope's outcome has been counted
	body     envelopeStream
	// bodyLeft is the content-length still to come, -1 when unknown: a body
	// whose last byte arrived is finished even if trailers follow.
	bodyLeft int64
}

func (c *httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	cfg := &c.p.cfg
	req := cfg.rules.HostRequest()
	d := cfg.rules.Decide(&req)
	if !d.Enabled {
		return types.ActionContinue
	}
	c.start = time.Now()
	c.handled, c.shadow = true, d.Shadow
	c.method, c.path = req.Method, req.Path
	c.env = &cfg.envelope
	if d.Override != nil {
		c.env = &d.Override.envelope
	}
	m := &c.p.metrics
	if c.shadow {
		m.shadow.Increment(1)
	}

	incoming, err := proxywasm.GetHttpRequestHeader(cfg.header)
	present := err == nil
	trusted := c.trusted()
	outcome := decideID(incoming, present, trusted)
	if outcome == idKept {
		c.id = incoming
	} else if c.id, err = c.p.ids.next(c.start); err != nil {
		c.fail("generating a request ID", err)
		c.handled = false
		return types.ActionContinue
	}
	switch outcome {
	case idKept:
		m.kept.Increment(1)
	case idGenerated:
		m.generated.Increment(1)
	default:
		m.replaced.Increment(1)
	}
	// Replace, even a kept ID: it also collapses repeated headers into one.
	if !c.shadow {
		if err := proxywasm.ReplaceHttpRequestHeader(cfg.header, c.id); err != nil {
			c.fail("setting the request header", err)
		}
		if cfg.externalIDHeader != "" && !trusted {
			c.externalID(incoming, present)
		}
	}
	if cfg.traceparent {
		c.traceparent()
	}
	return types.ActionContinue
}

// trusted reports whether this request may keep its incoming ID under
// trust_incoming. "internal" believes only Envoy's own verdict: its HTTP
// connection manager drops any x-envoy-internal a client sends and sets it
// for requests from internal_address_config peers (with use_remote_address).
func (c *httpContext) trusted() bool {
	switch c.p.cfg.trust {
	case trustAll:
		return true
	case trustInternal:
		v, err := proxywasm.GetHttpRequestHeader("x-envoy-internal")
		return err == nil && v == "true"
	}
	return false
}

// externalID sets external_id_header on an untrusted request to the valid
// ID the client sent, or removes it: upstreams can read what the client
// called its request, and never in the header that carries the trusted ID.
func (c *httpContext) externalID(incoming string, present bool) {
	h := c.p.cfg.externalIDHeader
	if present && validIncomingID(incoming) {
		if err := proxywasm.ReplaceHttpRequestHeader(h, incoming); err != nil {
			c.fail("setting external_id_header", err)
		}
		return
	}
	if err := proxywasm.RemoveHttpRequestHeader(h); err != nil {
		c.fail("removing external_id_header", err)
	}
}

// traceparent keeps a valid incoming traceparent or creates one (and drops
// tracestate, which belongs to the trace that is not continued).
func (c *httpContext) traceparent() {
	m := &c.p.metrics
	if tp, err := proxywasm.GetHttpRequestHeader("traceparent"); err == nil && validTraceparent(tp) {
		m.traceparentKept.Increment(1)
		return
	}
	tp, err := newTraceparent(hostRand)
	if err != nil {
		c.fail("generating a traceparent", err)
		return
	}
	m.traceparentNew.Increment(1)
	if c.shadow {
		return
	}
	if err := proxywasm.ReplaceHttpRequestHeader("traceparent", tp); err != nil {
		c.fail("setting traceparent", err)
	}
	if err := proxywasm.RemoveHttpRequestHeader("tracestate"); err != nil {
		c.fail("removing tracestate", err)
	}
}

// OnHttpResponseHeaders runs for the upstream's response and for local
// replies sent by later filters alike.
func (c *httpContext) OnHttpResponseHeaders(_ int, endOfStream bool) types.Action {
	if !c.handled {
		return types.ActionContinue
	}
	cfg := &c.p.cfg
	if cfg.responseHeader && !c.shadow {
		if err := proxywasm.ReplaceHttpResponseHeader(cfg.header, c.id); err != nil {
			c.fail("setting the response header", err)
		}
	}
	if !c.env.enabled {
		if cfg.accessLog {
			s, _ := proxywasm.GetHttpResponseHeader(":status")
			c.status = parseStatus(s)
		}
		return types.ActionContinue
	}
	headers, err := proxywasm.GetHttpResponseHeaders()
	if err != nil {
		c.fail("reading the response headers", err)
		return types.ActionContinue
	}
	for _, h := range headers {
		if h[0] == ":status" {
			c.status = parseStatus(h[1])
			break
		}
	}
	d := c.env.decide(c.method, c.status, headers)
	if !d.wrap || endOfStream {
		c.p.metrics.envelopeSkipped.Increment(1)
		return types.ActionContinue
	}
	// The length changes, and is not known before the end of the body.
	if !c.shadow {
		if err := proxywasm.RemoveHttpResponseHeader("content-length"); err != nil {
			c.fail("removing content-length", err)
			c.p.metrics.envelopeSkipped.Increment(1)
			return types.ActionContinue
		}
	}
	c.wrapping = true
	c.bodyLeft = d.contentLength
	c.body.start(c.env, c.id, d.contentLength)
	c.body.budget = &c.p.budget
	return types.ActionContinue
}

// OnHttpResponseBody feeds the envelope. It never pauses: held chunks are
// replaced by nothing and the body goes out in the last chunk, so Envoy's
// buffer limits never apply.
func (c *httpContext) OnHttpResponseBody(size int, endOfStream bool) types.Action {
	if !c.handled {
		return types.ActionContinue
	}
	if !c.wrapping || c.body.done() {
		c.bytes += int64(size)
		return types.ActionContinue
	}
	var chunk []byte
	if size > 0 {
		var err error
		if chunk, err = proxywasm.GetHttpResponseBody(0, size); err != nil {
			c.fail("reading the response body", err)
			c.giveBack(nil)
			c.bytes += int64(size)
			return types.ActionContinue
		}
	}
	if c.bodyLeft >= 0 {
		// The last byte of a body of known length ends it, even when
		// trailers follow instead of end of stream.
		c.bodyLeft -= int64(len(chunk))
		endOfStream = endOfStream || c.bodyLeft <= 0
	}
	act, out := c.body.write(chunk, endOfStream, time.Now())
	if c.body.overBudget {
		c.body.overBudget = false
		c.p.metrics.envelopeOverBudget.Increment(1)
	}
	if c.shadow {
		c.bytes += int64(size)
	} else {
		c.apply(act, out, chunk)
	}
	if c.body.done() {
		c.countEnvelope()
	}
	return types.ActionContinue
}

// apply carries out what the envelope stream asked for the current chunk.
func (c *httpContext) apply(act bodyAction, out, chunk []byte) {
	var err error
	switch act {
	case bodyHold:
		if err = proxywasm.ReplaceHttpResponseBody(nil); err != nil {
			// The chunk is still in the host's buffer: give back only
			// what was held before it.
			c.fail("holding a response body chunk", err)
			c.giveBack(chunk)
			c.bytes += int64(len(chunk))
		}
		return
	case bodyPrepend:
		err = proxywasm.PrependHttpResponseBody(out)
		c.bytes += int64(len(out) + len(chunk))
	case bodyReplace:
		err = proxywasm.ReplaceHttpResponseBody(out)
		c.bytes += int64(len(out))
	default:
		c.bytes += int64(len(chunk))
	}
	if err != nil {
		c.fail("writing the response body", err)
	}
}

// giveBack stops wrapping after a failed host call and puts the bytes held
// before chunk (which is still in the host's buffer) in front of it.
func (c *httpContext) giveBack(chunk []byte) {
	held := c.body.flush()
	held = held[:len(held)-min(len(chunk), len(held))]
	if len(held) > 0 && !c.shadow {
		if err := proxywasm.PrependHttpResponseBody(held); err != nil {
			c.fail("giving back the held response body", err)
		}
		c.bytes += int64(len(held))
	}
	c.countEnvelope()
}

// OnHttpResponseTrailers: trailers the response headers did not announce
// end a body of unknown length without end of stream. proxy-wasm gives no
// access to the body here, so what the envelope held cannot be sent.
func (c *httpContext) OnHttpResponseTrailers(int) types.Action {
	if !c.handled || !c.wrapping || c.body.done() {
		return types.ActionContinue
	}
	held := c.body.flush()
	if len(held) > 0 && !c.shadow {
		c.p.metrics.envelopeTruncated.Increment(1)
		proxywasm.LogError("request_id=" + c.id + ": response trailers arrived unannounced and without content-length; " +
			strconv.Itoa(len(held)) + " held body bytes could not be sent")
	}
	c.countEnvelope()
	return types.ActionContinue
}

// countEnvelope counts the envelope's outcome once per stream.
func (c *httpContext) countEnvelope() {
	if c.counted {
		return
	}
	c.counted = true
	if c.body.didWrap() {
		c.p.metrics.enveloped.Increment(1)
	} else {
		c.p.metrics.envelopeSkipped.Increment(1)
	}
}

// OnHttpStreamDone writes the access-log line.
func (c *httpContext) OnHttpStreamDone() {
	if !c.handled {
		return
	}
	if c.wrapping && !c.counted {
		// The stream ended mid-body (reset): nothing more can be sent.
		c.body.flush()
		c.countEnvelope()
	}
	if !c.p.cfg.accessLog {
		return
	}
	if c.status == 0 {
		// No response passed this filter: a later filter answered from its
		// response path straight to the client, or the stream was reset.
		if b, err := proxywasm.GetProperty([]string{"response", "code"}); err == nil && len(b) == 8 {
			c.status = int(binary.LittleEndian.Uint64(b))
		}
	}
	proxywasm.LogInfo(formatAccessLog(accessLogEntry{
		requestID: c.id,
		method:    c.method,
		path:      c.path,
		status:    c.status,
		duration:  time.Since(c.start),
		bytes:     c.bytes,
		shadow:    c.shadow,
	}))
}

// fail logs a host call or generator failure; the stream goes on.
func (c *httpContext) fail(what string, err error) {
	c.p.metrics.failure.Increment(1)
	proxywasm.LogError(what + ": " + err.Error())
}

// parseStatus reads a :status value; 0 when it is not a number.
func parseStatus(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0
	}
	return n
}

var (
	_ types.PluginContext = (*pluginContext)(nil)
	_ types.HttpContext   = (*httpContext)(nil)
)
