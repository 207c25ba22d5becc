// Command circuit-breaker is a proxy-wasm HTTP filter that fails fast in
// front of a failing backend: one breaker per cluster, route or authority,
// shared by every worker through shared data, with half-open probing and
// an optional bulkhead. README.md is the reference. Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -o circuit-breaker.wasm ./plugins/circuit-breaker
//
// This file is the wiring only: proxy-wasm contexts and callbacks, host
// calls, metrics and logs. The breaker itself is plain Go: breaker.go (the
// state machine), record.go (its shared-data form), store.go (shared data
// with compare-and-swap), outcome.go (what counts as a failure) and
// config.go.
package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/concierge-wasm/concierge/shared/reply"
	"github.com/concierge-wasm/concierge/shared/rules"
	"github.com/concierge-wasm/concierge/shared/shareddata"
)

func main() {}

// init only registers the plugin: hosts refuse every host call but
// logging while Go's init functions run.
func init() {
	proxywasm.SetPluginContext(func(uint32) types.PluginContext { return &plugin{} })
}

// plugin is one filter configuration in one VM.
type plugin struct {
	types.DefaultPluginContext
	cfg config
	st  *store
	m   metrics
	// gauges counts the state gauges this VM defined (maxStateGauges).
	gauges int
}

// metricPrefix is the concierge_<plugin>_ prefix of convention 8 (README.md).
const metricPrefix = "concierge_circuit_breaker_"

// maxStateGauges bounds the per-breaker state gauges: beyond it, breakers
// are still enforced and logged, but have no gauge of their own.
const maxStateGauges = 64

// metrics are the filter's counters and gauges (README.md lists them).
// Counters are only ever incremented by 1: the SDK panics when the host
// refuses a delta of 0.
type metrics struct {
	opened, closed, halfOpened                 proxywasm.MetricCounter
	rejected, overflow, probes, failures       proxywasm.MetricCounter
	shadowed, untracked, casExhausted, hostErr proxywasm.MetricCounter
	inFlight                                   proxywasm.MetricGauge
}

func defineMetrics() metrics {
	c := func(name string) proxywasm.MetricCounter { return proxywasm.DefineCounterMetric(metricPrefix + name) }
	return metrics{
		opened:       c("opened_total"),
		closed:       c("closed_total"),
		halfOpened:   c("half_opened_total"),
		rejected:     c("rejected_total"),
		overflow:     c("overflow_total"),
		probes:       c("probes_total"),
		failures:     c("failures_total"),
		shadowed:     c("shadowed_total"),
		untracked:    c("untracked_total"),
		casExhausted: c("cas_exhausted_total"),
		hostErr:      c("errors_total"),
		inFlight:     proxywasm.DefineGaugeMetric(metricPrefix + "in_flight"),
	}
}

// stateGaugeName is the state gauge of a breaker: the scope key with every
// character outside [A-Za-z0-9_] turned into '_'.
func stateGaugeName(scope string) string {
	b := []byte(metricPrefix + "state_" + scope)
	for i := len(metricPrefix + "state_"); i < len(b); i++ {
		c := b[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}

func (p *plugin) OnPluginStart(int) types.OnPluginStartStatus {
	data, err := proxywasm.GetPluginConfiguration()
	if err != nil && !errors.Is(err, types.ErrorStatusNotFound) {
		proxywasm.LogError("reading the plugin configuration: " + err.Error())
		return types.OnPluginStartStatusFailed
	}
	cfg, err := parseConfig(data)
	if err != nil {
		proxywasm.LogError(err.Error())
		return types.OnPluginStartStatusFailed
	}
	p.cfg = cfg
	p.st = newStore(hostStore{}, shareddata.Namespace(), len(cfg.policies))
	p.m = defineMetrics()
	return types.OnPluginStartStatusOK
}

func (p *plugin) NewHttpContext(uint32) types.HttpContext { return &stream{p: p} }

// hostStore is the store's access to shared data.
type hostStore struct{}

func (hostStore) sharedGet(key string) ([]byte, uint32, bool) {
	v, cas, err := proxywasm.GetSharedData(key)
	return v, cas, err == nil
}

func (hostStore) sharedSet(key string, value []byte, cas uint32) (bool, error) {
	err := proxywasm.SetSharedData(key, value, cas)
	if errors.Is(err, types.ErrorStatusCasMismatch) {
		return true, nil
	}
	return false, err
}

var (
	clusterProperty = []string{"xds", "cluster_name"}
	routeProperty   = []string{"xds", "route_name"}
	detailsProperty = []string{"response", "code_details"}
	flagsProperty   = []string{"response", "flags"}
)

// unknownScope is the scope key of a request whose cluster or route name
// the host does not give.
var unknownScope = []byte("-")

// scopeKey reads the request's scope key from the host.
func (p *plugin) scopeKey(req *rules.Request) []byte {
	switch p.cfg.scope {
	case scopeRoute:
		if req.Route != "" {
			return []byte(req.Route)
		}
		if b, err := proxywasm.GetProperty(routeProperty); err == nil && len(b) > 0 {
			return b
		}
	case scopeAuthority:
		if h := hostOnly(req.Host); h != "" {
			return []byte(strings.ToLower(h))
		}
	default:
		if b, err := proxywasm.GetProperty(clusterProperty); err == nil && len(b) > 0 {
			return b
		}
	}
	return unknownScope
}

// hostOnly strips the port and a trailing dot from an :authority.
func hostOnly(h string) string {
	if !strings.HasPrefix(h, "[") {
		if i := strings.LastIndexByte(h, ':'); i >= 0 {
			h = h[:i]
		}
	} else if i := strings.IndexByte(h, ']'); i > 0 {
		h = h[:i+1]
	}
	return strings.TrimSuffix(h, ".")
}

// stream is one request through the filter.
type stream struct {
	types.DefaultHttpContext
	p      *plugin
	pol    *policy
	polIdx int
	scope  []byte
	b      *breakerKey // nil until the breaker exists in shared data
	t      ticket
	start  time.Time
	// guarded: the request went through a breaker, which waits for its
	// outcome (and, with a bulkhead, for its slot back).
	guarded bool
	// judged: the outcome has been recorded (at response headers).
	judged bool
	shadow bool
}

func (s *stream) OnHttpRequestHeaders(int, bool) types.Action {
	p := s.p
	cfg := &p.cfg
	req := rules.Request{}
	d := rules.Decision[ruleOverride]{Enabled: true, Shadow: cfg.rules.Shadow, Rule: -1}
	if len(cfg.rules.Rules) > 0 || cfg.scope == scopeAuthority {
		req = cfg.rules.HostRequest()
		d = cfg.rules.Decide(&req)
	}
	if !d.Enabled {
		return types.ActionContinue
	}
	s.shadow = d.Shadow
	if d.Override != nil {
		s.polIdx = d.Override.policy
	}
	s.pol = cfg.policies[s.polIdx]
	s.scope = p.scopeKey(&req)
	if st, ok := cfg.forcedState(s.scope); ok {
		if st == open {
			return s.reject(rejected, s.pol.openDuration, "forced open by configuration")
		}
		return types.ActionContinue
	}
	s.start = time.Now()
	now := s.start.UnixNano()

	b, err := p.st.breaker(s.polIdx, cfg.policyNames[s.polIdx], s.scope, s.pol.maxConcurrent > 0)
	if err != nil {
		// A store that fails must not take the traffic down with it.
		p.hostError("reading breaker "+strconv.Quote(string(s.scope)), err)
		return types.ActionContinue
	}
	if b != nil && b.untracked {
		p.m.untracked.Increment(1)
		return types.ActionContinue
	}
	v, t := admitted, ticket{}
	var retry time.Duration
	var tr *transition
	var r record
	if b != nil {
		err = p.st.update(b, &r, func(r *record) bool {
			var changed bool
			v, t, retry, changed, tr = admit(r, s.pol, now)
			return changed
		})
		if err != nil {
			p.storeError(b, "admitting a request", err)
			return types.ActionContinue
		}
		p.report(b, &r, tr)
	}
	s.b = b
	switch v {
	case rejected:
		why := "breaker open"
		if r.state == halfOpen {
			why = "breaker half-open, its probes in flight"
		}
		return s.reject(v, retry, why)
	case overflow:
		return s.reject(v, retry, "")
	case probing:
		p.m.probes.Increment(1)
	}
	s.t, s.guarded = t, true
	if t.slot {
		p.m.inFlight.Add(1)
	}
	return types.ActionContinue
}

// reject counts and logs a rejected request and, unless in shadow mode,
// answers it with 503 and Retry-After.
func (s *stream) reject(v verdict, retry time.Duration, why string) types.Action {
	p := s.p
	p.m.rejected.Increment(1)
	if v == overflow {
		p.m.overflow.Increment(1)
		why = "max_concurrent (" + strconv.Itoa(int(s.pol.maxConcurrent)) + ") requests in flight"
	}
	secs := int64((retry + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	id, _ := proxywasm.GetHttpRequestHeader(reply.DefaultRequestIDHeader)
	mode := "rejected"
	if s.shadow {
		mode = "shadow: would reject"
	}
	proxywasm.LogInfo(mode + " request_id=" + strconv.Quote(id) + " scope=" + strconv.Quote(string(s.scope)) +
		" reason=" + strconv.Quote(why) + " retry_after=" + strconv.FormatInt(secs, 10))
	if s.shadow {
		p.m.shadowed.Increment(1)
		return types.ActionContinue
	}
	f := p.cfg.errorFormat
	body := rejectBody(f, secs, id)
	err := proxywasm.SendHttpResponse(503, reply.Headers(f, reply.DefaultRequestIDHeader, id,
		[2]string{"retry-after", strconv.FormatInt(secs, 10)}), body, -1)
	if err != nil {
		p.hostError("sending the 503", err)
		return types.ActionContinue
	}
	return types.ActionPause
}

// rejectBody is the shared denial body with "retryAfter" (seconds) added
// before "requestId". The request ID is JSON-escaped, so the first
// `,"requestId":` is the member itself.
func rejectBody(f reply.Format, secs int64, requestID string) []byte {
	body := reply.AppendBody(make([]byte, 0, 160), f, 503, "service unavailable", requestID)
	i := bytes.Index(body, []byte(`,"requestId":`))
	if i < 0 {
		return body
	}
	out := make([]byte, 0, len(body)+24)
	out = append(out, body[:i]...)
	out = append(out, `,"retryAfter":`...)
	out = strconv.AppendInt(out, secs, 10)
	return append(out, body[i:]...)
}

func (s *stream) OnHttpResponseHeaders(int, bool) types.Action {
	if !s.guarded || s.judged {
		return types.ActionContinue
	}
	// Each host call costs: the status matters only for an upstream's
	// response, the flags only for anything else.
	var r response
	if b, err := proxywasm.GetProperty(detailsProperty); err == nil {
		if string(b) == viaUpstream {
			r.details = viaUpstream
		} else {
			r.details = string(b)
		}
	}
	if r.details == viaUpstream {
		if v, err := proxywasm.GetHttpResponseHeader(":status"); err == nil {
			r.status, _ = strconv.Atoi(v)
		}
	} else {
		r.flags = readFlags()
	}
	r.elapsed = time.Since(s.start)
	o, why := classify(r, s.pol)
	if o == noOutcome {
		return types.ActionContinue // another filter answered: on_log gives back what the request held
	}
	s.judged = true
	s.record(o, why, true, false)
	return types.ActionContinue
}

// OnHttpStreamDone runs in on_log: the bulkhead slot comes back, and a
// request that never got an upstream answer gives back its probe permit —
// or, when it waited longer than slow_call before the client left, counts
// as a slow call.
func (s *stream) OnHttpStreamDone() {
	if !s.guarded {
		return
	}
	if s.t.slot {
		s.p.m.inFlight.Add(-1)
	}
	if s.judged {
		if s.t.slot {
			s.record(noOutcome, "", false, true)
		}
		return
	}
	var r response
	r.flags = readFlags()
	if b, err := proxywasm.GetProperty(detailsProperty); err == nil {
		r.details = string(b)
	}
	r.elapsed = time.Since(s.start)
	o, why := classify(r, s.pol)
	if o == success {
		o = noOutcome // no response headers: nothing succeeded
	}
	if o == noOutcome && s.pol.slowCall > 0 && r.elapsed > s.pol.slowCall {
		o, why = failure, "slow call: no response in "+r.elapsed.Round(time.Millisecond).String()+", the client left"
	}
	s.judged = true
	s.record(o, why, true, true)
}

// record applies what became of the request to its breaker: with settle,
// the outcome (noOutcome gives back a probe permit); with free, the
// bulkhead slot.
func (s *stream) record(o outcome, why string, settle, free bool) {
	p := s.p
	if o == failure {
		p.m.failures.Increment(1)
	}
	if s.b == nil {
		// No breaker existed when the request came in, so it holds no
		// slot and no permit. A success on a breaker that does not exist
		// changes nothing (unless the rate window counts it): creating one
		// for it would let clients spend the key bound on healthy
		// authorities.
		if o == noOutcome || o == success && !s.pol.rateOn() {
			return
		}
		b, err := p.st.breaker(s.polIdx, p.cfg.policyNames[s.polIdx], s.scope, true)
		if err != nil {
			p.hostError("creating breaker "+strconv.Quote(string(s.scope)), err)
			return
		}
		if b.untracked {
			p.m.untracked.Increment(1)
			return
		}
		s.b = b
	}
	now := time.Now().UnixNano()
	var tr *transition
	var r record
	err := p.st.update(s.b, &r, func(r *record) bool {
		changed := false
		tr = nil
		if settle {
			changed, tr = observe(r, s.pol, s.t, o, now, why)
		}
		if free && release(r, s.t) {
			changed = true
		}
		return changed
	})
	if err != nil {
		p.storeError(s.b, "recording an outcome", err)
		return
	}
	p.report(s.b, &r, tr)
}

// readFlags reads response.flags (an 8-byte little-endian integer); 0 when
// the host has none.
func readFlags() uint64 {
	b, err := proxywasm.GetProperty(flagsProperty)
	if err != nil || len(b) != 8 {
		return 0
	}
	return binary.LittleEndian.Uint64(b)
}

// report logs a transition this VM made (only the VM whose write took
// effect sees it, so each is logged once), counts it, and refreshes the
// breaker's state gauge.
func (p *plugin) report(b *breakerKey, r *record, tr *transition) {
	if tr != nil {
		switch tr.to {
		case open:
			p.m.opened.Increment(1)
		case closed:
			p.m.closed.Increment(1)
		case halfOpen:
			p.m.halfOpened.Increment(1)
		}
		proxywasm.LogWarn("breaker " + strconv.Quote(b.scope) + " " + tr.from.String() + " -> " +
			tr.to.String() + ": " + tr.reason)
	}
	if int64(r.state) == b.gauge {
		return
	}
	if b.stateMetric == 0 {
		if p.gauges >= maxStateGauges {
			return
		}
		p.gauges++
		b.stateMetric = uint32(proxywasm.DefineGaugeMetric(stateGaugeName(b.scope)))
	}
	setGauge(b.stateMetric, int64(r.state))
	b.gauge = int64(r.state)
}

func (p *plugin) storeError(b *breakerKey, what string, err error) {
	if _, ok := err.(casError); ok {
		p.m.casExhausted.Increment(1)
		proxywasm.LogWarn("breaker " + strconv.Quote(b.scope) + ": " + what + ": " + err.Error() +
			"; the request passes unguarded")
		return
	}
	p.hostError("breaker "+strconv.Quote(b.scope)+": "+what, err)
}

func (p *plugin) hostError(what string, err error) {
	p.m.hostErr.Increment(1)
	proxywasm.LogError(what + ": " + err.Error())
}

var (
	_ types.PluginContext = (*plugin)(nil)
	_ types.HttpContext   = (*stream)(nil)
	_ storeHost           = hostStore{}
)
