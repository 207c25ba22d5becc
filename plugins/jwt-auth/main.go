// Command jwt-auth is a proxy-wasm HTTP filter that validates JSON Web
// Tokens at the edge and passes the verified identity downstream. Build it
// with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -o jwt-auth.wasm ./plugins/jwt-auth
//
// This file is the wiring only: proxy-wasm contexts and callbacks, host
// calls, metrics and logs. What the filter decides lives in plain files:
// config.go (configuration), extract.go (finding the token), verify.go and
// keys.go (verification), claims.go (claims, headers, requirements),
// cache.go (verified tokens), decide.go (allow or deny, challenges) and
// jwks.go (remote key sets shared by all worker VMs). README.md is the
// reference.
package main

import (
	"errors"
	"math/rand/v2"
	"strconv"
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
	proxywasm.SetPluginContext(func(id uint32) types.PluginContext { return &plugin{id: id} })
}

// Tick periods. With remote JWKS, every VM ticks to take up keys other VMs
// fetched and to start due refreshes; faster while streams wait for keys,
// and once, almost at once, when a stream asks for a fetch (only a root
// context dispatches: the SDK drops a callout's answer when the stream that
// made it is gone).
const (
	slowTickMs = 1000
	fastTickMs = 100
	kickTickMs = 1
)

// plugin is one filter configuration in one VM (a proxy-wasm root context).
type plugin struct {
	types.DefaultPluginContext
	id      uint32
	cfg     *config
	v       *verifier
	jwks    *jwksManager // nil without remote_jwks providers
	replier reply.Replier
	m       counters
	// waiting are the streams paused until remote keys arrive, oldest first.
	waiting []*stream
	tickMs  uint32
}

// counters are the filter's metrics (README.md lists them).
type counters struct {
	allowed, denied, anonymous, shadowed proxywasm.MetricCounter
	verified                             proxywasm.MetricCounter
	spoofed                              proxywasm.MetricCounter
	fetches, failures, conflicts         proxywasm.MetricCounter
	keysSkipped                          proxywasm.MetricCounter
	byReason                             []proxywasm.MetricCounter // parallel to denialReasons
}

func defineCounters() counters {
	c := counters{
		allowed:   proxywasm.DefineCounterMetric(metricAllowed),
		denied:    proxywasm.DefineCounterMetric(metricDenied),
		anonymous: proxywasm.DefineCounterMetric(metricAnonymous),
		shadowed:  proxywasm.DefineCounterMetric(metricShadowed),
		verified:  proxywasm.DefineCounterMetric(metricVerified),
		spoofed:   proxywasm.DefineCounterMetric(metricSpoofed),
		fetches:   proxywasm.DefineCounterMetric(metricFetches),
		failures:  proxywasm.DefineCounterMetric(metricFailures),
		conflicts: proxywasm.DefineCounterMetric(metricConflicts),

		keysSkipped: proxywasm.DefineCounterMetric(metricKeysSkipped),
	}
	for _, r := range denialReasons {
		c.byReason = append(c.byReason, proxywasm.DefineCounterMetric(reasonMetric(r)))
	}
	return c
}

func (p *plugin) OnPluginStart(int) types.OnPluginStartStatus {
	// An absent configuration reads as an error (NOT_FOUND); it is then
	// empty, which parseConfig refuses with "providers: required".
	data, _ := proxywasm.GetPluginConfiguration()
	cfg, err := parseConfig(data)
	if err != nil {
		proxywasm.LogError(err.Error())
		return types.OnPluginStartStatusFailed
	}
	p.cfg = &cfg
	p.v = newVerifier(p.cfg)
	p.replier = reply.Replier{Format: cfg.errorFormat}
	p.m = defineCounters()
	for _, pr := range cfg.providers {
		if pr.remote != nil {
			p.jwks = newJWKSManager(p.cfg, p.v, hostCalls{p}, time.Now, shareddata.Namespace(), leaseOwner())
			p.jwks.onSettled = p.settled
			p.jwks.start(time.Now())
			p.schedule()
			break
		}
	}
	return types.OnPluginStartStatusOK
}

// leaseOwner is a random, non-zero identity for this VM's JWKS leases.
//
// It comes from math/rand/v2, seeded by the Go runtime from WASI
// random_get, and deliberately not from crypto/rand: the first
// crypto/rand read arms a one-minute warning timer
// (crypto/internal/sysrand), which starts the runtime's netpoller, and from
// then on every garbage collection calls poll_oneoff, which Envoy 1.33-1.37
// answers ENOSYS: the VM dies at its next GC. The ID needs to be unique,
// not secret.
func leaseOwner() uint64 {
	if n := rand.Uint64(); n != 0 {
		return n
	}
	return 1
}

func (p *plugin) NewHttpContext(id uint32) types.HttpContext {
	return &stream{p: p, id: id, waitingFor: -1}
}

func (p *plugin) OnTick() {
	if p.jwks == nil {
		return
	}
	now := time.Now()
	changed := p.jwks.tick(now)
	// A provider has settled when its keys changed or no fetch for it is
	// under way anywhere; asked once per provider (it reads shared data).
	settled := make([]int8, len(changed)) // 0 unknown, 1 no, 2 yes
	p.resume(now, func(i int) bool {
		if settled[i] == 0 {
			settled[i] = 1
			if changed[i] || !p.jwks.busy(i, now) {
				settled[i] = 2
			}
		}
		return settled[i] == 2
	})
	p.schedule()
}

// settled runs when this VM's fetch for provider i has ended.
func (p *plugin) settled(i int) {
	p.resume(time.Now(), func(j int) bool { return j == i })
	p.schedule()
}

// resume looks again at the waiting streams whose provider has settled or
// whose wait has timed out: each is let through or denied; none waits
// twice.
func (p *plugin) resume(now time.Time, settled func(provider int) bool) {
	if len(p.waiting) == 0 {
		return
	}
	var ready []*stream
	keep := p.waiting[:0]
	for _, s := range p.waiting {
		if settled(s.waitingFor) || !now.Before(s.deadline) {
			ready = append(ready, s)
		} else {
			keep = append(keep, s)
		}
	}
	clear(p.waiting[len(keep):])
	p.waiting = keep
	for _, s := range ready {
		s.waitingFor = -1
		if err := proxywasm.SetEffectiveContext(s.id); err != nil {
			continue // the stream is gone
		}
		if s.check(now, false, nil) == types.ActionContinue {
			if err := proxywasm.ResumeHttpRequest(); err != nil {
				proxywasm.LogWarnf("resuming request_id=%q: %v", s.requestID, err)
			}
		}
	}
	if len(ready) > 0 {
		proxywasm.SetEffectiveContext(p.id) //nolint:errcheck // back to the root context; it exists
	}
}

func (p *plugin) wait(s *stream, provider int, now time.Time) {
	s.waitingFor = provider
	s.deadline = now.Add(p.cfg.providers[provider].remote.timeout)
	p.waiting = append(p.waiting, s)
	p.schedule()
}

func (p *plugin) unwait(s *stream) {
	for i, w := range p.waiting {
		if w == s {
			p.waiting = append(p.waiting[:i], p.waiting[i+1:]...)
			break
		}
	}
	s.waitingFor = -1
}

// schedule sets the tick period the moment calls for.
func (p *plugin) schedule() {
	if p.jwks == nil {
		return
	}
	ms := uint32(slowTickMs)
	switch {
	case p.jwks.wantsFetch():
		ms = kickTickMs
	case len(p.waiting) > 0:
		ms = fastTickMs
	}
	if ms == p.tickMs {
		return
	}
	if err := proxywasm.SetTickPeriodMilliSeconds(ms); err != nil {
		proxywasm.LogWarnf("setting the tick period to %dms: %v", ms, err)
		return
	}
	p.tickMs = ms
}

// hostCalls is the JWKS manager's access to the host.
type hostCalls struct{ p *plugin }

func (hostCalls) sharedGet(key string) ([]byte, uint32, bool) {
	v, cas, err := proxywasm.GetSharedData(key)
	return v, cas, err == nil
}

func (hostCalls) sharedSet(key string, value []byte, cas uint32) (bool, error) {
	err := proxywasm.SetSharedData(key, value, cas)
	if errors.Is(err, types.ErrorStatusCasMismatch) {
		return true, nil
	}
	return false, err
}

func (hostCalls) httpGet(r *remoteJWKS, done func(status int, body []byte)) error {
	headers := [][2]string{{":method", "GET"}, {":path", r.path}, {":authority", r.authority}, {"accept", "application/json"}}
	_, err := proxywasm.DispatchHttpCall(r.cluster, headers, nil, nil, uint32(r.timeout.Milliseconds()),
		func(numHeaders, bodySize, _ int) {
			if numHeaders == 0 {
				done(0, nil) // reset: Envoy gives no response at all
				return
			}
			status := 0
			if v, err := proxywasm.GetHttpCallResponseHeaders(); err == nil {
				status, _ = strconv.Atoi(rules.Headers(v).Value(":status"))
			}
			var body []byte
			if bodySize > 0 {
				// One byte over the limit is enough to refuse the document.
				body, _ = proxywasm.GetHttpCallResponseBody(0, min(bodySize, maxJWKSBytes+1))
			}
			done(status, body)
		})
	if errors.Is(err, types.ErrorStatusBadArgument) {
		return errUnknownCluster
	}
	return err
}

func (h hostCalls) note(e jwksEvent, msg string) {
	m := &h.p.m
	switch e {
	case evFetchStarted:
		m.fetches.Increment(1)
	case evFetchFailed:
		m.failures.Increment(1)
	case evConflict:
		m.conflicts.Increment(1)
	case evKeySkipped:
		m.keysSkipped.Increment(1)
	}
	if msg == "" {
		return
	}
	switch e {
	case evKeysUpdated:
		proxywasm.LogInfo(msg)
	case evUnknownCluster:
		proxywasm.LogError(msg)
	default:
		proxywasm.LogWarn(msg)
	}
}

// stream is one HTTP request through the filter.
type stream struct {
	types.DefaultHttpContext
	p         *plugin
	id        uint32
	requestID string
	shadow    bool
	override  *ruleOverride // the matched rule's overrides, nil when none matched
	rule      int           // the matched rule's index, -1 when none
	// waitingFor is the provider whose keys the paused request waits for,
	// -1 when it does not wait; deadline is when it stops waiting.
	waitingFor int
	deadline   time.Time
}

func (s *stream) OnHttpRequestHeaders(int, bool) types.Action {
	p := s.p
	headers, _ := proxywasm.GetHttpRequestHeaders()
	guard := p.cfg.guard
	verified := p.cfg.acceptVerified && keyAuthVerified()
	if verified {
		guard = p.cfg.guardWhenVerified
	}
	// Identity headers are the gateway's: whatever the route and the
	// outcome, the client's copies, in any spelling an upstream may read
	// as them (x_user_id), never reach the upstream, and rules never match
	// on them (README.md, "Identity headers"). Only the ones present are
	// removed: each removal is a host call.
	headers, spoofed, reject, err := guard.ScreenRequestHeaders(headers)
	if len(spoofed) > 0 {
		p.m.spoofed.Increment(1)
		if err != nil {
			proxywasm.LogWarnf("removing identity headers: %v", err)
		}
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
	if verified && d.Override.acceptsVerified() {
		p.m.verified.Increment(1)
		return types.ActionContinue
	}
	s.shadow, s.override, s.rule = d.Shadow, d.Override, d.Rule
	if reject {
		// 400 with the shared JSON body; in shadow mode logged and counted,
		// and the request goes on (without the headers) to its token check.
		s.requestID = rules.Headers(headers).Value(reply.DefaultRequestIDHeader)
		if s.deny(outcome{status: 400, reason: errSpoofedIdentity, provider: -1}) == types.ActionPause {
			return types.ActionPause
		}
	}
	// Shadow never holds a request back, not even for keys.
	return s.check(time.Now(), !d.Shadow, headers)
}

// OnHttpRequestTrailers removes identity headers from the request
// trailers, which Envoy passes on for HTTP/2, and for HTTP/1 when the
// listener enables them: the upstream reads a trailer as it reads a
// header. They are removed in reject mode too (identity.Guard), and on
// every route the filter runs on.
func (s *stream) OnHttpRequestTrailers(int) types.Action {
	spoofed, err := s.p.cfg.guard.StripRequestTrailers()
	if len(spoofed) > 0 {
		s.p.m.spoofed.Increment(1)
	}
	if err != nil {
		proxywasm.LogWarnf("removing identity trailers: %v (request_id=%q)", err, s.requestID)
	}
	return types.ActionContinue
}

// check authenticates the request and lets it through (ActionContinue),
// denies it (ActionPause after the local reply), or, when mayWait, pauses
// it until remote keys arrive (ActionPause, with the stream in p.waiting).
// headers are the request headers, nil to read them from the host.
func (s *stream) check(now time.Time, mayWait bool, headers [][2]string) types.Action {
	p := s.p
	if headers == nil {
		headers, _ = proxywasm.GetHttpRequestHeaders()
	}
	if s.requestID == "" {
		s.requestID = rules.Headers(headers).Value(reply.DefaultRequestIDHeader)
	}
	path := rules.Headers(headers).Value(":path")
	if p.jwks != nil {
		p.jwks.expire(now)
	}
	for attempt := 0; ; attempt++ {
		res, err := p.v.authenticate(headers, path, now)
		out := p.cfg.judge(res, err, s.override)
		switch out.kind {
		case outAllow:
			s.allow(res, headers, path)
			return types.ActionContinue
		case outAnonymous:
			p.m.anonymous.Increment(1)
			return types.ActionContinue
		case outNeedKeys, outUnknownKey:
			d := p.jwks.need(out.provider, out.kind == outUnknownKey, now)
			p.schedule()
			if d == jwksRetry && attempt == 0 {
				continue
			}
			if d == jwksWait && mayWait {
				p.wait(s, out.provider, now)
				return types.ActionPause
			}
		}
		return s.deny(out)
	}
}

// allow passes the verified identity on: claim headers, the payload
// header, the identity property; and removes the token unless forwarded.
func (s *stream) allow(res authResult, headers [][2]string, path string) {
	p := s.p
	p.m.allowed.Increment(1)
	prov := p.cfg.providers[res.provider]
	for _, h := range res.ident.headers {
		s.setHeader(h[0], h[1])
	}
	if prov.forwardPayloadHeader != "" {
		s.setHeader(prov.forwardPayloadHeader, res.payload)
	}
	if !prov.forward {
		s.removeToken(res.token, headers, path)
	}
	id := identity.Identity{Method: identity.MethodJWT, Subject: res.ident.subject, Issuer: prov.issuer,
		Provider: prov.name, Roles: res.ident.roles}
	if id.Subject == "" {
		return // a token without "sub" identifies nobody; its claim headers still go up
	}
	if err := identity.Set(&id); err != nil {
		proxywasm.LogWarnf("setting the identity property: %v (request_id=%q)", err, s.requestID)
	}
}

func (s *stream) setHeader(name, value string) {
	if err := proxywasm.ReplaceHttpRequestHeader(name, value); err != nil {
		proxywasm.LogWarnf("setting header %s: %v (request_id=%q)", name, err, s.requestID)
	}
}

// removeToken takes the token out of the upstream request, wherever it was
// found, and leaves everything else there.
func (s *stream) removeToken(tok foundToken, headers [][2]string, path string) {
	l := s.p.cfg.locations[tok.loc]
	var err error
	switch l.kind {
	case locHeader:
		keep := withoutToken(headers, l, tok.value)
		err = proxywasm.RemoveHttpRequestHeader(l.name)
		for _, v := range keep {
			if e := proxywasm.AddHttpRequestHeader(l.name, v); err == nil {
				err = e
			}
		}
	case locParam:
		err = proxywasm.ReplaceHttpRequestHeader(":path", removeQueryParam(path, l.name))
	case locCookie:
		cookies := headerValues(headers, "cookie")
		err = proxywasm.RemoveHttpRequestHeader("cookie")
		for _, c := range cookies {
			if rest := removeCookie(c, l.name); rest != "" {
				if e := proxywasm.AddHttpRequestHeader("cookie", rest); err == nil {
					err = e
				}
			}
		}
	}
	if err != nil {
		proxywasm.LogWarnf("removing the token: %v (request_id=%q)", err, s.requestID)
	}
}

// deny counts and logs a denial and, unless in shadow mode, answers it.
func (s *stream) deny(out outcome) types.Action {
	p := s.p
	p.m.denied.Increment(1)
	if i := reasonIndex(out.reason); i >= 0 {
		p.m.byReason[i].Increment(1)
	}
	provider := "-"
	if out.provider >= 0 {
		provider = p.cfg.providers[out.provider].name
	}
	proxywasm.LogInfo(denialLog(s.shadow, out, s.requestID, provider, s.rule))
	if s.shadow {
		p.m.shadowed.Increment(1)
		return types.ActionContinue
	}
	var err error
	if out.status == 400 { // a spoofed identity header: not about the token, no challenge
		err = p.replier.SendWithID(s.requestID, out.status, out.reason.Error())
	} else {
		err = p.replier.SendWithID(s.requestID, out.status, out.reason.Error(),
			[2]string{"www-authenticate", p.cfg.challenge(out.status, out.reason)})
	}
	if err != nil {
		proxywasm.LogErrorf("sending the %d reply: %v (request_id=%q)", out.status, err, s.requestID)
	}
	return types.ActionPause
}

func (s *stream) OnHttpStreamDone() {
	if s.waitingFor >= 0 {
		s.p.unwait(s)
	}
}

var (
	_ types.PluginContext = (*plugin)(nil)
	_ types.HttpContext   = (*stream)(nil)
	_ jwksHost            = hostCalls{}
)
