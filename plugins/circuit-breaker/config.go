package main

import (
	"slices"
	"strconv"
	"time"

	"github.com/tidwall/gjson"

	jsonconfig "github.com/concierge-wasm/concierge/shared/config"
	"github.com/concierge-wasm/concierge/shared/reply"
	"github.com/concierge-wasm/concierge/shared/rules"
)

// config is the parsed, validated plugin configuration; it is immutable
// once parseConfig returns.
type config struct {
	scope scopeKind
	// policies[0] is the top-level breaker; a rule with settings of its
	// own adds one (ruleOverride.policy points to it).
	policies []*policy
	// policyNames are the policies' parts of shared-data keys.
	policyNames []string
	// forced maps a scope key to the state an operator forces; forcedAll
	// applies to every scope key without an entry of its own ("*").
	forced      map[string]state
	forcedAll   state
	forceAll    bool
	errorFormat reply.Format
	// rules are the per-route rules; rules.Shadow is the top-level
	// "shadow".
	rules rules.Set[ruleOverride]
}

// ruleOverride is what a rule may set besides match, enabled and shadow:
// any breaker setting. A rule that sets one gets breakers of its own.
type ruleOverride struct {
	policy int // index into config.policies
}

type scopeKind uint8

const (
	scopeCluster scopeKind = iota
	scopeRoute
	scopeAuthority
)

func (k scopeKind) String() string {
	return [...]string{"cluster", "route", "authority"}[k]
}

// Defaults: the classic breaker's (5 failures, 60 s) and resilience4j's
// where it has one (minimum_requests, a single half-open probe is our own
// choice: the least load on a recovering backend).
const (
	defaultConsecutiveFailures = 5
	defaultMinimumRequests     = 10
	defaultWindow              = 10 * time.Second
	defaultOpenDuration        = 60 * time.Second
	// maxCount bounds every count in the configuration.
	maxCount = 1_000_000
	// A window's bucket is window/10; at least 100 ms each.
	minWindow       = time.Second
	maxWindow       = time.Hour
	minOpenDuration = time.Millisecond
	maxOpenDuration = 24 * time.Hour
	maxBackoff      = 100
)

var defaultFailureStatuses = []int{500, 502, 503, 504}

// policyFields are the keys of a breaker's settings, at the top level and
// in a rule.
var policyFields = []string{"consecutive_failures", "failure_rate", "failure_statuses", "slow_call",
	"open_duration", "backoff_multiplier", "max_open_duration", "half_open_requests",
	"success_threshold", "max_concurrent"}

func defaultPolicy() policy {
	return policy{
		consecutiveFailures: defaultConsecutiveFailures,
		failureStatuses:     defaultFailureStatuses,
		openDuration:        defaultOpenDuration,
		backoff:             1,
		maxOpenDuration:     defaultOpenDuration,
		halfOpenPermits:     1,
		successes:           1,
	}
}

// parseConfig decodes, defaults and validates the configuration. Errors
// name the field path and the value (`failure_rate.threshold: must be in
// (0, 1], got 1.5`).
func parseConfig(data []byte) (config, error) {
	o, err := jsonconfig.Parse(data)
	if err != nil {
		return config{}, err
	}
	c := config{}
	switch o.Enum("scope", "cluster", "cluster", "route", "authority") {
	case "route":
		c.scope = scopeRoute
	case "authority":
		c.scope = scopeAuthority
	}
	def := defaultPolicy()
	top := parsePolicy(o, &def)
	c.policies = []*policy{&top}
	c.policyNames = []string{"0"}
	c.errorFormat = reply.ParseFormat(o)
	c.forced, c.forcedAll, c.forceAll = parseForced(o)
	c.rules = rules.Parse(o, func(r *jsonconfig.Object) ruleOverride {
		set := false
		for _, f := range policyFields {
			set = set || r.Has(f)
		}
		if !set {
			return ruleOverride{}
		}
		p := parsePolicy(r, &top)
		c.policies = append(c.policies, &p)
		// The rule's index is its position among all rules; Parse calls
		// this in order, so it is the number of rules read so far.
		c.policyNames = append(c.policyNames, "r"+strconv.Itoa(ruleIndex(r)))
		return ruleOverride{policy: len(c.policies) - 1}
	})
	if err := o.Err(); err != nil {
		return config{}, err
	}
	return c, nil
}

// ruleIndex finds r's position in o's rules from its path ("rules[3]").
func ruleIndex(r *jsonconfig.Object) int {
	p := r.Path()
	if len(p) < len("rules[0]") {
		return 0
	}
	n, _ := strconv.Atoi(p[len("rules[") : len(p)-1])
	return n
}

// parsePolicy reads a breaker's settings from o, each defaulting to def's.
func parsePolicy(o *jsonconfig.Object, def *policy) policy {
	p := *def
	p.consecutiveFailures = count(o, "consecutive_failures", def.consecutiveFailures)
	if fr, ok := o.Object("failure_rate"); ok {
		p.rateThreshold = ratio(fr, "threshold")
		p.minimumRequests = count(fr, "minimum_requests", defaultMinimumRequests)
		p.window = fr.Duration("window", defaultWindow)
		if p.window < minWindow || p.window > maxWindow {
			fr.Errorf("window", "must be from %s to %s, got %q", minWindow, maxWindow, p.window)
		}
	}
	p.failureStatuses = statuses(o, "failure_statuses", def.failureStatuses)
	if sc, ok := o.Object("slow_call"); ok {
		if !sc.Has("duration") {
			sc.Errorf("duration", "required")
		}
		p.slowCall = sc.Duration("duration", 0)
		if sc.Has("duration") && p.slowCall <= 0 {
			sc.Errorf("duration", "must be > 0, got %q", p.slowCall)
		}
	}
	openSet := o.Has("open_duration")
	p.openDuration = o.Duration("open_duration", def.openDuration)
	if p.openDuration < minOpenDuration || p.openDuration > maxOpenDuration {
		o.Errorf("open_duration", "must be from %s to %s, got %q", minOpenDuration, maxOpenDuration, p.openDuration)
	}
	if o.Has("backoff_multiplier") {
		v := o.Raw("backoff_multiplier")
		if v.Type != gjson.Number || v.Float() < 1 || v.Float() > maxBackoff {
			o.Errorf("backoff_multiplier", "must be a number from 1 to %d, got %s", maxBackoff, jsonconfig.Show(v))
		} else {
			p.backoff = v.Float()
		}
	}
	// Without its own max_open_duration, a policy that grows gets ten times
	// its open_duration; one that does not, just its open_duration.
	maxDef := def.maxOpenDuration
	if openSet || o.Has("backoff_multiplier") {
		maxDef = p.openDuration
		if p.backoff > 1 {
			maxDef = min(10*p.openDuration, maxOpenDuration)
		}
	}
	p.maxOpenDuration = o.Duration("max_open_duration", maxDef)
	if p.maxOpenDuration < p.openDuration || p.maxOpenDuration > maxOpenDuration {
		o.Errorf("max_open_duration", "must be from open_duration (%s) to %s, got %q", p.openDuration, maxOpenDuration, p.maxOpenDuration)
	}
	p.halfOpenPermits = count(o, "half_open_requests", def.halfOpenPermits)
	p.successes = count(o, "success_threshold", def.successes)
	if o.Has("max_concurrent") {
		p.maxConcurrent = count(o, "max_concurrent", 0)
	}
	return p
}

// count reads a positive integer (a count of requests): zero is refused,
// since it would trip at once or never let anything through.
func count(o *jsonconfig.Object, key string, def uint32) uint32 {
	if !o.Has(key) {
		return def
	}
	n := o.Int(key, 1)
	if n < 1 || n > maxCount {
		o.Errorf(key, "must be from 1 to %d, got %d", maxCount, n)
		return def
	}
	return uint32(n)
}

// ratio reads a required failure ratio in (0, 1].
func ratio(o *jsonconfig.Object, key string) float64 {
	if !o.Has(key) {
		o.Errorf(key, "required (a failure ratio in (0, 1], e.g. 0.5)")
		return 0
	}
	v := o.Raw(key)
	if v.Type != gjson.Number {
		o.Errorf(key, "must be a number in (0, 1], got %s", jsonconfig.Show(v))
		return 0
	}
	if f := v.Float(); f > 0 && f <= 1 {
		return f
	}
	o.Errorf(key, "must be in (0, 1], got %s", v.Raw)
	return 0
}

// statuses reads a non-empty array of HTTP error statuses (400–599).
func statuses(o *jsonconfig.Object, key string, def []int) []int {
	if !o.Has(key) {
		return def
	}
	v := o.Raw(key)
	if !v.IsArray() {
		o.Errorf(key, "must be an array of status codes, got %s", jsonconfig.Show(v))
		return def
	}
	items := v.Array()
	if len(items) == 0 {
		o.Errorf(key, "must not be empty, got []")
		return def
	}
	out := make([]int, 0, len(items))
	for i, item := range items {
		k := key + "[" + strconv.Itoa(i) + "]"
		n, err := strconv.Atoi(item.Raw)
		switch {
		case item.Type != gjson.Number || err != nil:
			o.Errorf(k, "must be an integer, got %s", jsonconfig.Show(item))
			return def
		case n < 400 || n > 599:
			o.Errorf(k, "must be an error status from 400 to 599, got %d", n)
			return def
		case slices.Contains(out, n):
			o.Errorf(k, "%d is listed twice", n)
			return def
		}
		out = append(out, n)
	}
	return out
}

// parseForced reads force_state: scope key → "open" or "closed"; "*"
// stands for every scope key not listed.
func parseForced(o *jsonconfig.Object) (m map[string]state, all state, hasAll bool) {
	fo, ok := o.Object("force_state")
	if !ok {
		return nil, closed, false
	}
	m = map[string]state{}
	for _, k := range fo.Keys() {
		if k == "" {
			fo.Errorf("", `a scope key must not be empty`)
			fo.Raw(k)
			continue
		}
		s := closed
		if fo.Enum(k, "closed", "open", "closed") == "open" {
			s = open
		}
		if k == "*" {
			all, hasAll = s, true
			continue
		}
		m[k] = s
	}
	return m, all, hasAll
}

// forcedState returns the state force_state gives scope, if any.
func (c *config) forcedState(scope []byte) (state, bool) {
	if c.forced != nil {
		if s, ok := c.forced[string(scope)]; ok {
			return s, true
		}
	}
	return c.forcedAll, c.forceAll
}
