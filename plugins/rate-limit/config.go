package main

import (
	"net/netip"
	"strconv"
	"strings"
	"time"

	jsoncfg "github.com/concierge-wasm/concierge/shared/config"
	"github.com/concierge-wasm/concierge/shared/reply"
	"github.com/concierge-wasm/concierge/shared/rules"
)

// Defaults and bounds (README.md, "Configuration").
const (
	defaultMaxKeys = 100000
	maxMaxKeys     = 10000000
	// maxLimitsPerSet bounds the shared-data value of one key (16 bytes a
	// bucket) and the work per request.
	maxLimitsPerSet = 8
	defaultTimeout  = 100 * time.Millisecond
	// maxKeyAlternatives keeps the alternative's index one byte of the key.
	maxKeyAlternatives = 16
	defaultPath        = "/json"
)

var defaultKey = []string{"identity", "ip"}

// headerFormat is the `headers` option.
type headerFormat uint8

const (
	headersXRateLimit headerFormat = iota
	headersIETF
	headersBoth
	headersNone
)

// limitSet is one list of limits, with the id that keeps its buckets apart
// from other lists' in shared data.
type limitSet struct {
	id     int
	limits []limit
}

// override gives identities matching pattern their own limits.
type override struct {
	pattern string
	set     *limitSet
}

// policy is what applies to one request: the limits, and the overrides that
// may replace them for an identity. The top level is one; each rule carries
// a complete one (its own or the top level's).
type policy struct {
	set       *limitSet
	overrides []override
	// lowers: a rule's policy that may admit more than the top level's
	// (see LowersProtection).
	lowers bool
}

// LowersProtection tells shared/rules that a rule with this policy may let
// through what the top level would stop, so that the rule applies only
// when every form of the request matches it (shared/rules, "Rules that
// lower protection"): its own `limits` leave some top-level limit without
// one at least as strict, or it has overrides of its own (they give
// identities more).
func (p policy) LowersProtection() bool { return p.lowers }

// looser reports whether limits a may admit more than limits top: some
// top-level limit has no limit in a that is at least as strict (no larger
// burst, no faster refill).
func looser(a, top []limit) bool {
	for _, t := range top {
		covered := false
		for _, l := range a {
			// rate(l) <= rate(t), compared without division.
			slower := float64(l.tokensPerFill)*float64(t.fillInterval) <= float64(t.tokensPerFill)*float64(l.fillInterval)
			if l.maxTokens <= t.maxTokens && slower {
				covered = true
				break
			}
		}
		if !covered {
			return true
		}
	}
	return false
}

// forIdentity picks the limits for a caller ("" for none).
func (p *policy) forIdentity(name string) *limitSet {
	if name != "" {
		for i := range p.overrides {
			if glob(p.overrides[i].pattern, name) {
				return p.overrides[i].set
			}
		}
	}
	return p.set
}

// globalConfig is the `global` option: the rate limit service.
type globalConfig struct {
	cluster, authority, path, domain string
	timeout                          time.Duration
	failDeny                         bool
}

type config struct {
	policy
	key         [][]keyPart // alternatives, first complete wins
	trusted     []netip.Prefix
	maxKeys     int
	headers     headerFormat
	global      *globalConfig
	rules       rules.Set[policy]
	shadow      bool
	errorFormat reply.Format
	sets        []*limitSet // every list of limits, by id
}

func parseConfig(data []byte) (config, error) {
	o, err := jsoncfg.Parse(data)
	if err != nil {
		return config{}, err
	}
	c := config{}
	if !o.Has("limits") {
		o.Errorf("limits", "required")
	}
	c.set = c.parseLimits(o)
	c.overrides = c.parseOverrides(o)
	c.key = parseKey(o)
	c.trusted = parseTrusted(o)
	c.maxKeys = o.Int("max_keys", defaultMaxKeys)
	if c.maxKeys <= 0 || c.maxKeys > maxMaxKeys {
		o.Errorf("max_keys", "must be between 1 and %d, got %d", maxMaxKeys, c.maxKeys)
	}
	switch o.Enum("headers", "x-ratelimit", "x-ratelimit", "ietf", "both", "none") {
	case "ietf":
		c.headers = headersIETF
	case "both":
		c.headers = headersBoth
	case "none":
		c.headers = headersNone
	}
	if g, ok := o.Object("global"); ok {
		c.global = parseGlobal(g)
	}
	c.errorFormat = reply.ParseFormat(o)
	c.rules = rules.Parse(o, c.parseRule)
	c.shadow = c.rules.Shadow
	if err := o.Err(); err != nil {
		return config{}, err
	}
	return c, nil
}

// parseRule reads a rule's own `limits` and `overrides`; a rule without
// them inherits the top level's.
func (c *config) parseRule(r *jsoncfg.Object) policy {
	p := c.policy
	if r.Has("limits") {
		p.set = c.parseLimits(r)
		p.overrides = nil
		p.lowers = looser(p.set.limits, c.set.limits)
	}
	if r.Has("overrides") {
		p.overrides = c.parseOverrides(r)
		p.lowers = p.lowers || len(p.overrides) > 0
	}
	return p
}

// parseLimits reads o's `limits` into a new limit set.
func (c *config) parseLimits(o *jsoncfg.Object) *limitSet {
	set := &limitSet{id: len(c.sets)}
	c.sets = append(c.sets, set)
	objs := o.Objects("limits")
	switch {
	case o.Has("limits") && objs != nil && len(objs) == 0:
		o.Errorf("limits", "must not be empty")
	case len(objs) > maxLimitsPerSet:
		o.Errorf("limits", "at most %d limits, got %d", maxLimitsPerSet, len(objs))
	}
	for i, lo := range objs {
		l := parseLimit(lo, i, len(objs))
		for _, prev := range set.limits {
			if prev.name == l.name {
				lo.Errorf("name", "duplicate %q", l.name)
			}
		}
		set.limits = append(set.limits, l)
	}
	return set
}

func parseLimit(o *jsoncfg.Object, i, n int) limit {
	def := "default"
	if n > 1 {
		def = "limit-" + strconv.Itoa(i)
	}
	l := limit{name: o.String("name", def)}
	if !validName(l.name) {
		o.Errorf("name", "must be 1 to 64 letters, digits, '-', '_' or '.', got %q", l.name)
	}
	short := o.Has("requests") || o.Has("per")
	long := o.Has("max_tokens") || o.Has("tokens_per_fill") || o.Has("fill_interval")
	switch {
	case short && long:
		o.Errorf("", "give either requests and per, or max_tokens, tokens_per_fill and fill_interval, not both")
		return l
	case short:
		if !o.Has("requests") {
			o.Errorf("requests", "required with per")
		}
		if !o.Has("per") {
			o.Errorf("per", "required with requests")
		}
		n := o.Int("requests", 0)
		per := o.Duration("per", 0)
		checkPositive(o, "requests", n)
		checkInterval(o, "per", per)
		l.maxTokens, l.tokensPerFill, l.fillInterval = int64(n), int64(n), per
	default:
		if !o.Has("max_tokens") {
			o.Errorf("max_tokens", "required")
		}
		if !o.Has("fill_interval") {
			o.Errorf("fill_interval", "required")
		}
		m := o.Int("max_tokens", 0)
		t := o.Int("tokens_per_fill", 1)
		fi := o.Duration("fill_interval", 0)
		checkPositive(o, "max_tokens", m)
		checkPositive(o, "tokens_per_fill", t)
		checkInterval(o, "fill_interval", fi)
		l.maxTokens, l.tokensPerFill, l.fillInterval = int64(m), int64(t), fi
	}
	if l.maxTokens > 0 && l.tokensPerFill > 0 && l.fillInterval > 0 && !l.prepare() {
		o.Errorf("", "max_tokens %d refilled at %d per %s does not fit the bucket arithmetic: use fewer tokens or a faster refill",
			l.maxTokens, l.tokensPerFill, l.fillInterval)
	}
	return l
}

// maxTokensValue keeps a token count far inside the arithmetic's range.
const maxTokensValue = 1 << 40

func checkPositive(o *jsoncfg.Object, key string, n int) {
	if n <= 0 || n > maxTokensValue {
		o.Errorf(key, "must be > 0 and <= %d, got %d", maxTokensValue, n)
	}
}

func checkInterval(o *jsoncfg.Object, key string, d time.Duration) {
	if d <= 0 {
		o.Errorf(key, "must be > 0, got %q", d.String())
	}
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func (c *config) parseOverrides(o *jsoncfg.Object) []override {
	var out []override
	for _, oo := range o.Objects("overrides") {
		pat := oo.String("identity", "")
		if pat == "" {
			oo.Errorf("identity", "required: an identity or a pattern with '*'")
		}
		if !oo.Has("limits") {
			oo.Errorf("limits", "required")
		}
		out = append(out, override{pattern: pat, set: c.parseLimits(oo)})
	}
	return out
}

func parseKey(o *jsoncfg.Object) [][]keyPart {
	alts := o.Strings("key", defaultKey)
	switch {
	case len(alts) == 0:
		o.Errorf("key", "must not be empty")
	case len(alts) > maxKeyAlternatives:
		o.Errorf("key", "at most %d alternatives, got %d", maxKeyAlternatives, len(alts))
	}
	out := make([][]keyPart, 0, len(alts))
	for i, a := range alts {
		parts, err := parseKeyParts(a)
		if err != nil {
			o.Errorf("key["+strconv.Itoa(i)+"]", "%v", err)
		}
		out = append(out, parts)
	}
	return out
}

func parseTrusted(o *jsoncfg.Object) []netip.Prefix {
	var out []netip.Prefix
	for i, s := range o.Strings("trusted_proxies", nil) {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				o.Errorf("trusted_proxies["+strconv.Itoa(i)+"]", "must be an IP address or CIDR prefix, got %q", s)
				continue
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out
}

func parseGlobal(g *jsoncfg.Object) *globalConfig {
	gc := &globalConfig{
		cluster: g.String("cluster", ""),
		path:    g.String("path", defaultPath),
		domain:  g.String("domain", ""),
		timeout: g.Duration("timeout", defaultTimeout),
	}
	gc.authority = g.String("authority", gc.cluster)
	gc.failDeny = g.Enum("failure_mode", "allow", "allow", "deny") == "deny"
	if gc.cluster == "" {
		g.Errorf("cluster", "required")
	}
	if gc.domain == "" {
		g.Errorf("domain", "required")
	}
	if !strings.HasPrefix(gc.path, "/") {
		g.Errorf("path", "must start with '/', got %q", gc.path)
	}
	if gc.timeout <= 0 {
		g.Errorf("timeout", "must be > 0, got %q", gc.timeout.String())
	}
	return gc
}

// glob matches s against a pattern where '*' stands for any run of
// characters (none included); nothing else is special. Greedy with one
// backtrack point, so O(len(pattern) × len(s)) at worst.
func glob(pattern, s string) bool {
	p, i := 0, 0
	starP, starI := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			starP, starI = p, i
			p++
		case p < len(pattern) && pattern[p] == s[i]:
			p++
			i++
		case starP >= 0:
			starI++
			p, i = starP+1, starI
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

func (f headerFormat) String() string {
	return [...]string{"x-ratelimit", "ietf", "both", "none"}[f]
}
