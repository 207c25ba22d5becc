// Command key-auth is a proxy-wasm HTTP filter that authenticates API keys
// at the edge, checks the consumer's permissions and passes the verified
// consumer downstream. Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -o key-auth.wasm ./plugins/key-auth
//
// This file is the wiring only: proxy-wasm contexts and callbacks, host
// calls, metrics and logs. What the filter decides lives in plain files:
// config.go (configuration, the key table) and decide.go (finding and
// looking up the key, permissions, denial reasons). README.md is the
// reference.
package main

import (
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/concierge-wasm/concierge/shared/identity"
	"github.com/concierge-wasm/concierge/shared/reply"
	"github.com/concierge-wasm/concierge/shared/rules"
)

func main() {}

// init only registers the plugin: proxy-wasm hosts refuse every host call
// but logging while Go's init functions run.
func init() {
	proxywasm.SetPluginContext(func(uint32) types.PluginContext { return &plugin{} })
}

// plugin is one filter configuration in one VM (a proxy-wasm root context).
type plugin struct {
	types.DefaultPluginContext
	cfg     *config
	replier reply.Replier
	m       counters
}

// counters are the filter's metrics (README.md lists them).
type counters struct {
	allowed, denied, anonymous, shadowed proxywasm.MetricCounter
	byReason                             [numReasons]proxywasm.MetricCounter
	// perConsumer is defined on a consumer's first request, so that a
	// configuration with thousands of consumers starts without thousands
	// of host calls; defined says which are.
	perConsumer []proxywasm.MetricCounter
	defined     []bool
}

func (p *plugin) OnPluginStart(int) types.OnPluginStartStatus {
	// An absent configuration reads as an error (NOT_FOUND); it is then
	// empty, which parseConfig refuses.
	data, _ := proxywasm.GetPluginConfiguration()
	cfg, err := parseConfig(data)
	if err != nil {
		proxywasm.LogError(err.Error())
		return types.OnPluginStartStatusFailed
	}
	p.cfg = &cfg
	// Parsing a large configuration leaves megabytes of garbage (the JSON
	// reader's objects) and a heap goal sized to it. Collecting once now,
	// while nothing waits, lets requests reuse that memory instead of
	// growing the VM's linear memory, which never shrinks.
	runtime.GC()
	p.replier = reply.Replier{Format: cfg.errorFormat}
	p.m = counters{
		allowed:     proxywasm.DefineCounterMetric(metricAllowed),
		denied:      proxywasm.DefineCounterMetric(metricDenied),
		anonymous:   proxywasm.DefineCounterMetric(metricAnonymous),
		shadowed:    proxywasm.DefineCounterMetric(metricShadowed),
		perConsumer: make([]proxywasm.MetricCounter, len(cfg.consumers)),
		defined:     make([]bool, len(cfg.consumers)),
	}
	for r := reasonMissing; r < numReasons; r++ {
		p.m.byReason[r] = proxywasm.DefineCounterMetric(reasonMetric(r))
	}
	if len(cfg.plaintext) > 0 {
		// Where, never what: the keys themselves stay out of the logs.
		shown := cfg.plaintext[:min(len(cfg.plaintext), 5)]
		more := ""
		if n := len(cfg.plaintext) - len(shown); n > 0 {
			more = " and " + strconv.Itoa(n) + " more"
		}
		proxywasm.LogWarnf("%d plaintext key(s) in the configuration (%s%s); use key_sha256 outside development",
			len(cfg.plaintext), strings.Join(shown, ", "), more)
	}
	return types.OnPluginStartStatusOK
}

func (p *plugin) NewHttpContext(uint32) types.HttpContext { return &stream{p: p} }

// countConsumer counts a request that consumer i's key identified.
func (p *plugin) countConsumer(i int) {
	if !p.m.defined[i] {
		p.m.perConsumer[i] = proxywasm.DefineCounterMetric(consumerMetric(p.cfg.consumers[i].name))
		p.m.defined[i] = true
	}
	p.m.perConsumer[i].Increment(1)
}

// stream is one HTTP request through the filter.
type stream struct {
	types.DefaultHttpContext
	p *plugin
}

func (s *stream) OnHttpRequestHeaders(int, bool) types.Action {
	p := s.p
	headers, _ := proxywasm.GetHttpRequestHeaders()
	// Identity headers are the gateway's: whatever the route and the
	// outcome, the client's copies, in any spelling an upstream may read
	// as them (x_consumer), never reach the upstream, and neither rules nor
	// later filters ever see them (shared/identity's Guard).
	headers, spoofed, reject, err := p.cfg.guard.ScreenRequestHeaders(headers)
	if len(spoofed) > 0 && err != nil {
		proxywasm.LogWarnf("removing identity headers: %v", err)
	}
	d := rules.Decision[ruleOverride]{Enabled: true, Shadow: p.cfg.shadow, Rule: -1}
	if len(p.cfg.rules.Rules) > 0 {
		req := rules.RequestOf(headers)
		if p.cfg.rules.UsesRoute() {
			if b, err := proxywasm.GetProperty([]string{"xds", "route_name"}); err == nil {
				req.Route = string(b)
			}
		}
		d = p.cfg.rules.Decide(&req)
	}
	if !d.Enabled {
		return types.ActionContinue
	}
	if reject {
		// 400 with the shared JSON body; in shadow mode logged and counted,
		// and the request goes on (without the headers) to its key check.
		if s.deny(&outcome{reason: reasonSpoofed, consumer: -1}, rules.Headers(headers).Value(reply.DefaultRequestIDHeader), d) == types.ActionPause {
			return types.ActionPause
		}
	}
	path := rules.Headers(headers).Value(":path")
	out := p.cfg.authenticate(headers, path, rules.Headers(headers).Value(":method"), d.Override, time.Now)
	if out.key != nil && (out.reason == reasonNone || out.reason == reasonPermission) {
		p.countConsumer(out.consumer)
	}
	switch {
	case out.anonymous():
		p.m.anonymous.Increment(1)
		return types.ActionContinue
	case out.allowed():
		s.allow(&out, path)
		return types.ActionContinue
	}
	return s.deny(&out, rules.Headers(headers).Value(reply.DefaultRequestIDHeader), d)
}

// OnHttpRequestTrailers removes identity headers from the request
// trailers, which Envoy passes on for HTTP/2, and for HTTP/1 when the
// listener enables them: an upstream reads a trailer as it reads a header.
func (s *stream) OnHttpRequestTrailers(int) types.Action {
	if _, err := s.p.cfg.guard.StripRequestTrailers(); err != nil {
		proxywasm.LogWarnf("removing identity trailers: %v", err)
	}
	return types.ActionContinue
}

// allow passes the verified consumer on: headers, the identity property,
// and the key removed unless hide_credentials is false.
func (s *stream) allow(out *outcome, path string) {
	p := s.p
	p.m.allowed.Increment(1)
	c := &p.cfg.consumers[out.consumer]
	s.setHeader(p.cfg.consumerHeader, c.name)
	if c.permissionsValue != "" {
		s.setHeader(p.cfg.permissionsHeader, c.permissionsValue)
	}
	id := identity.Identity{Method: identity.MethodKeyAuth, Subject: c.name, Consumer: c.name, Roles: c.permissions}
	if err := identity.Set(&id); err != nil {
		proxywasm.LogWarnf("setting the identity property: %v", err)
	}
	if !p.cfg.hideCredentials {
		return
	}
	var err error
	switch out.source {
	case fromHeader:
		err = proxywasm.RemoveHttpRequestHeader(p.cfg.header)
	case fromQuery:
		err = proxywasm.ReplaceHttpRequestHeader(":path", removeQueryParam(path, p.cfg.queryParam))
	}
	if err != nil {
		proxywasm.LogWarnf("removing the key from the request: %v", err)
	}
}

func (s *stream) setHeader(name, value string) {
	if err := proxywasm.ReplaceHttpRequestHeader(name, value); err != nil {
		proxywasm.LogWarnf("setting header %s: %v", name, err)
	}
}

// deny counts and logs a denial and, unless in shadow mode, answers it.
func (s *stream) deny(out *outcome, requestID string, d rules.Decision[ruleOverride]) types.Action {
	p := s.p
	p.m.denied.Increment(1)
	p.m.byReason[out.reason].Increment(1)
	proxywasm.LogInfo(denialLog(d.Shadow, p.cfg, out, requestID, d.Rule))
	if d.Shadow {
		p.m.shadowed.Increment(1)
		return types.ActionContinue
	}
	var err error
	if status := out.reason.status(); status == 401 {
		err = p.replier.SendWithID(requestID, status, out.reason.message(), [2]string{"www-authenticate", p.cfg.challenge()})
	} else {
		err = p.replier.SendWithID(requestID, status, out.reason.message())
	}
	if err != nil {
		proxywasm.LogErrorf("sending the %d reply: %v (request_id=%q)", out.reason.status(), err, requestID)
	}
	return types.ActionPause
}

var (
	_ types.PluginContext = (*plugin)(nil)
	_ types.HttpContext   = (*stream)(nil)
	_ rules.Lowerer       = ruleOverride{}
)
