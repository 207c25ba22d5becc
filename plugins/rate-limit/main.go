// Command rate-limit is a proxy-wasm HTTP filter that limits requests per
// key (verified identity, client address, header, route…) with token
// buckets shared by every worker of one Envoy, and optionally asks Envoy's
// rate limit service for a limit shared by many Envoys. Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -o rate-limit.wasm ./plugins/rate-limit
//
// This file is the wiring only: proxy-wasm contexts and callbacks, host
// calls, metrics and logs. The logic lives in bucket.go (token bucket
// arithmetic), store.go (buckets in shared data), key.go (keys),
// limiter.go (one request's decision), headers.go, global.go (the rate
// limit service) and config.go. README.md is the reference.
package main

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/concierge-wasm/concierge/shared/identity"
	"github.com/concierge-wasm/concierge/shared/reply"
	"github.com/concierge-wasm/concierge/shared/rules"
	"github.com/concierge-wasm/concierge/shared/shareddata"
)

func main() {}

// init only registers the plugin: proxy-wasm hosts refuse every host call
// but logging while Go's init functions run.
func init() {
	proxywasm.SetPluginContext(func(id uint32) types.PluginContext { return &plugin{} })
}

// Metrics (README.md, "Metrics").
const (
	metricPrefix          = "concierge_rate_limit_"
	metricAllowed         = metricPrefix + "allowed_total"
	metricDenied          = metricPrefix + "denied_total"
	metricShadowed        = metricPrefix + "shadowed_total"
	metricGlobalOverLimit = metricPrefix + "global_over_limit_total"
	metricGlobalErrors    = metricPrefix + "global_errors_total"
	metricEvicted         = metricPrefix + "keys_evicted_total"
	metricCASRetries      = metricPrefix + "cas_retries_total"
	metricCASExhausted    = metricPrefix + "cas_exhausted_total"
)

var definedMetrics = []string{metricAllowed, metricDenied, metricShadowed, metricGlobalOverLimit,
	metricGlobalErrors, metricEvicted, metricCASRetries, metricCASExhausted}

type counters struct {
	allowed, denied, shadowed, globalOverLimit, globalErrors proxywasm.MetricCounter
	evicted, casRetries, casExhausted                        proxywasm.MetricCounter
}

// plugin is one filter configuration in one VM (a proxy-wasm root context).
type plugin struct {
	types.DefaultPluginContext
	cfg     *config
	lm      *limiter
	replier reply.Replier
	m       counters
	// needs say which per-request host reads the configuration calls for:
	// the common configuration (identity, else ip; no rules) reads no
	// request header at all on the allowed path.
	needIdentity, needIP, needRoute, needPath, needMethod bool
}

func (p *plugin) OnPluginStart(int) types.OnPluginStartStatus {
	data, _ := proxywasm.GetPluginConfiguration()
	cfg, err := parseConfig(data)
	if err != nil {
		proxywasm.LogError(err.Error())
		return types.OnPluginStartStatusFailed
	}
	p.cfg = &cfg
	p.replier = reply.Replier{Format: cfg.errorFormat}
	p.m = counters{
		allowed:         proxywasm.DefineCounterMetric(metricAllowed),
		denied:          proxywasm.DefineCounterMetric(metricDenied),
		shadowed:        proxywasm.DefineCounterMetric(metricShadowed),
		globalOverLimit: proxywasm.DefineCounterMetric(metricGlobalOverLimit),
		globalErrors:    proxywasm.DefineCounterMetric(metricGlobalErrors),
		evicted:         proxywasm.DefineCounterMetric(metricEvicted),
		casRetries:      proxywasm.DefineCounterMetric(metricCASRetries),
		casExhausted:    proxywasm.DefineCounterMetric(metricCASExhausted),
	}
	p.lm = &limiter{cfg: p.cfg, store: newStore(hostStore{}, shareddata.Namespace(), cfg.maxKeys, p.storeEvent)}
	p.needIdentity = hasOverrides(&cfg)
	for _, alt := range cfg.key {
		for _, part := range alt {
			switch part.kind {
			case partIdentity:
				p.needIdentity = true
			case partIP:
				p.needIP = true
			case partRoute:
				p.needRoute = true
			case partPath:
				p.needPath = true
			case partMethod:
				p.needMethod = true
			}
		}
	}
	return types.OnPluginStartStatusOK
}

func hasOverrides(c *config) bool {
	if len(c.overrides) > 0 {
		return true
	}
	for _, r := range c.rules.Rules {
		if len(r.Override.overrides) > 0 {
			return true
		}
	}
	return false
}

func (p *plugin) storeEvent(e storeEvent, err error) {
	switch e {
	case evCASRetry:
		p.m.casRetries.Increment(1)
	case evEvicted:
		p.m.evicted.Increment(1)
	case evExhausted:
		p.m.casExhausted.Increment(1)
		proxywasm.LogWarnf("gave up on one key after %d compare-and-swap conflicts or %s waiting for its slot to be created; denying", casRetries, lockPatience)
	case evError:
		proxywasm.LogErrorf("shared data: %v", err)
	}
}

func (p *plugin) NewHttpContext(id uint32) types.HttpContext {
	return &stream{p: p, id: id, rule: -1}
}

// hostStore is the host's shared data.
type hostStore struct{}

func (hostStore) get(key string) ([]byte, uint32, bool) {
	v, cas, err := proxywasm.GetSharedData(key)
	return v, cas, err == nil
}

func (hostStore) set(key string, value []byte, cas uint32) (bool, error) {
	err := proxywasm.SetSharedData(key, value, cas)
	if errors.Is(err, types.ErrorStatusCasMismatch) {
		return true, nil
	}
	return false, err
}

// stream is one HTTP request through the filter.
type stream struct {
	types.DefaultHttpContext
	p         *plugin
	id        uint32
	requestID string
	idLoaded  bool // requestID has been looked up
	rule      int
	shadow    bool
	// headers are the rate limit headers for the response (nil: none).
	headers [][2]string
	replied bool // this filter answered the request itself
}

func (s *stream) OnHttpRequestHeaders(int, bool) types.Action {
	p := s.p
	// Request headers are read one by one, and only those the
	// configuration needs: reading them all costs the filter more than
	// the rest of its work together.
	d := rules.Decision[policy]{Enabled: true, Shadow: p.cfg.shadow, Rule: -1}
	var req rules.Request
	if len(p.cfg.rules.Rules) > 0 {
		req = p.cfg.rules.HostRequest()
		d = p.cfg.rules.Decide(&req)
	}
	if !d.Enabled {
		return types.ActionContinue
	}
	s.shadow, s.rule = d.Shadow, d.Rule
	pol := &p.cfg.policy
	if d.Override != nil {
		pol = d.Override
	}
	in := keyInput{path: req.Path, method: req.Method, route: req.Route, header: hostHeader}
	if p.needRoute && !p.cfg.rules.UsesRoute() {
		if b, err := proxywasm.GetProperty([]string{"xds", "route_name"}); err == nil {
			in.route = string(b)
		}
	}
	if p.needPath && req.Path == "" {
		in.path, _ = proxywasm.GetHttpRequestHeader(":path")
	}
	if p.needMethod && req.Method == "" {
		in.method, _ = proxywasm.GetHttpRequestHeader(":method")
	}
	idName := ""
	if p.needIdentity {
		id, ok, err := identity.Get()
		if err != nil {
			proxywasm.LogWarnf("ignoring the identity property: %v (request_id=%q)", err, s.reqID())
		}
		if ok {
			idName = id.Consumer
			if idName == "" {
				idName = id.Subject
			}
			in.identity = id.Provider + ":" + idName
		}
	}
	if p.needIP && needsPeer(p.cfg.key, &in) {
		if b, err := proxywasm.GetProperty([]string{"source", "address"}); err == nil {
			in.peer = string(b)
		}
		// x-forwarded-for counts only from a trusted proxy; every value
		// of it then, as the proxy appended to the last one.
		if ip, ok := peerAddr(in.peer); ok && isTrusted(ip, p.cfg.trusted) {
			headers, _ := proxywasm.GetHttpRequestHeaders()
			in.xff = headerList(headers).join("x-forwarded-for")
		}
	}
	r := p.lm.check(pol, idName, &in, time.Now())
	if !r.allowed {
		return s.deny(&r, "local", r.set.limits[r.tightest].name)
	}
	if !s.shadow {
		s.headers = appendHeaders(nil, p.cfg.headers, r.set.limits, &r.verdict)
	}
	if g := p.cfg.global; g != nil && r.alt >= 0 && !s.shadow {
		return s.askGlobal(g, &r, p.lm.descriptor(r.alt, &in))
	}
	p.m.allowed.Increment(1)
	return types.ActionContinue
}

// askGlobal pauses the request until the rate limit service answers.
func (s *stream) askGlobal(g *globalConfig, r *result, entries []descriptorEntry) types.Action {
	body := appendRLSRequest(make([]byte, 0, 128), g.domain, entries)
	hdrs := [][2]string{{":method", "POST"}, {":path", g.path}, {":authority", g.authority},
		{"content-type", "application/json"}}
	res := *r
	_, err := proxywasm.DispatchHttpCall(g.cluster, hdrs, body, nil, uint32(max(g.timeout.Milliseconds(), 1)),
		func(numHeaders, bodySize, _ int) { s.globalAnswer(&res, numHeaders, bodySize) })
	if err != nil {
		return s.globalFailed(&res, "calling cluster "+strconv.Quote(g.cluster)+": "+err.Error(), false)
	}
	return types.ActionPause
}

func (s *stream) globalAnswer(r *result, numHeaders, bodySize int) {
	if err := proxywasm.SetEffectiveContext(s.id); err != nil {
		return // the stream is gone
	}
	status := 0
	var body []byte
	if numHeaders > 0 {
		if v, err := proxywasm.GetHttpCallResponseHeaders(); err == nil {
			status, _ = strconv.Atoi(rules.Headers(v).Value(":status"))
		}
		if bodySize > 0 {
			body, _ = proxywasm.GetHttpCallResponseBody(0, min(bodySize, 64<<10))
		}
	}
	out, err := parseRLSResponse(status, body)
	var act types.Action
	switch {
	case err != nil:
		act = s.globalFailed(r, err.Error(), true)
	case out.overLimit:
		s.p.m.globalOverLimit.Increment(1)
		// The headers of this 429 describe the shared limit that was hit:
		// nothing left until the service's reset.
		r.allowed = false
		r.retry = max(out.retry, time.Second)
		r.remaining, r.reset = 0, r.retry
		act = s.deny(r, "global", "global:"+s.p.cfg.global.domain)
	default:
		s.p.m.allowed.Increment(1)
		act = types.ActionContinue
	}
	if act == types.ActionContinue {
		if err := proxywasm.ResumeHttpRequest(); err != nil {
			proxywasm.LogWarnf("resuming request_id=%q: %v", s.reqID(), err)
		}
	}
}

// globalFailed applies failure_mode when the service could not answer.
func (s *stream) globalFailed(r *result, reason string, paused bool) types.Action {
	p := s.p
	p.m.globalErrors.Increment(1)
	g := p.cfg.global
	if !g.failDeny || s.shadow {
		proxywasm.LogWarnf("rate limit service failed (%s); failure_mode allow: letting through request_id=%q", reason, s.reqID())
		p.m.allowed.Increment(1)
		return types.ActionContinue
	}
	proxywasm.LogWarnf("rate limit service failed (%s); failure_mode deny: 503 for request_id=%q", reason, s.reqID())
	p.m.denied.Increment(1)
	s.replied, s.headers = true, nil
	if err := p.replier.SendWithID(s.reqID(), 503, "rate limit service unavailable"); err != nil {
		proxywasm.LogErrorf("sending the 503 reply: %v (request_id=%q)", err, s.requestID)
	}
	return types.ActionPause
}

// deny counts and logs a denial and, unless in shadow mode, answers 429.
func (s *stream) deny(r *result, by, limitName string) types.Action {
	p := s.p
	p.m.denied.Increment(1)
	retry := retryAfter(r.retry)
	id := s.reqID()
	proxywasm.LogInfo(denialLog(s.shadow, by, limitName, retry, id, s.rule, r.storeFailed))
	if s.shadow {
		p.m.shadowed.Increment(1)
		return types.ActionContinue
	}
	extra := [][2]string{{"retry-after", strconv.FormatInt(retry, 10)}}
	extra = appendHeaders(extra, p.cfg.headers, r.set.limits, &r.verdict)
	s.replied, s.headers = true, nil
	body := appendDenialBody(make([]byte, 0, 128), p.cfg.errorFormat, retry, id)
	if err := proxywasm.SendHttpResponse(429, reply.Headers(p.cfg.errorFormat, reply.DefaultRequestIDHeader, id, extra...), body, -1); err != nil {
		proxywasm.LogErrorf("sending the 429 reply: %v (request_id=%q)", err, id)
	}
	return types.ActionPause
}

func (s *stream) OnHttpResponseHeaders(int, bool) types.Action {
	if s.replied || len(s.headers) == 0 {
		return types.ActionContinue
	}
	for _, h := range s.headers {
		if err := proxywasm.ReplaceHttpResponseHeader(h[0], h[1]); err != nil {
			proxywasm.LogWarnf("setting %s: %v (request_id=%q)", h[0], err, s.requestID)
		}
	}
	return types.ActionContinue
}

// reqID is the request's ID, read from the request headers the first time
// it is needed (a denial, a log line): the allowed path does not read it.
// The headers are readable in on_request_headers and while the request is
// paused there, which is everywhere this is called from.
func (s *stream) reqID() string {
	if !s.idLoaded {
		s.requestID, _ = proxywasm.GetHttpRequestHeader(reply.DefaultRequestIDHeader)
		s.idLoaded = true
	}
	return s.requestID
}

// hostHeader reads one request header; a plain function, so storing it
// allocates nothing.
func hostHeader(name string) (string, bool) {
	v, err := proxywasm.GetHttpRequestHeader(name)
	return v, err == nil
}

// headerList is a request header list, for the one lookup rules.Headers
// does not have: every value joined.
type headerList [][2]string

// join is every value of a header, comma-joined, as a list header means.
func (l headerList) join(name string) string {
	out := ""
	for _, h := range l {
		if strings.EqualFold(h[0], name) {
			if out != "" {
				out += ","
			}
			out += h[1]
		}
	}
	return out
}

var (
	_ types.PluginContext = (*plugin)(nil)
	_ types.HttpContext   = (*stream)(nil)
	_ sharedStore         = hostStore{}
)
