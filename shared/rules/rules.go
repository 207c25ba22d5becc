package rules

import (
	"strconv"
	"strings"

	"github.com/concierge-wasm/concierge/shared/config"
)

// Request is what rules match on. It is a plain value so that the matching
// logic can be tested and fuzzed without a proxy-wasm host; Set.HostRequest
// fills one from the current stream.
type Request struct {
	// Host is the :authority, as received (port and all): rules compare it
	// as Envoy compares virtual-host domains (see the package doc).
	Host string
	// Path is the :path, as received; the query is ignored. Rules compare
	// both this raw path and its NormalizePath form (see the package doc).
	Path string
	// Method is the :method.
	Method string
	// Route is Envoy's xds.route_name, or "" where the host has none.
	Route string
	// Header returns the first value of a request header, by lower-case
	// name. Nil means the request has no headers beyond the fields above.
	Header func(name string) (value string, ok bool)
}

// Rule is one entry of a filter's `rules` list.
type Rule[T any] struct {
	// Index is the rule's position in the list, for logs and metrics.
	Index int
	// Enabled is false when the rule switches the filter off.
	Enabled bool
	// Shadow is the rule's `shadow`, or the top-level one when it has none.
	Shadow bool
	// LowersProtection is true when the rule lets through what the
	// top-level settings would stop: `enabled: false`, `shadow: true` under
	// an enforcing top level, or an override whose LowersProtection method
	// says so. Such a rule applies only when every view of the request
	// matches it (the package doc, "Rules that lower protection").
	LowersProtection bool
	// Override is what the filter's override parser returned for this rule.
	Override T

	m matcher
}

// Set is a parsed `rules` list plus the top-level `shadow` default.
type Set[T any] struct {
	Shadow bool
	Rules  []Rule[T]

	usesPath, usesRoute bool
}

// Decision is what a filter does with one request.
type Decision[T any] struct {
	// Enabled false: let the request through untouched, count nothing.
	Enabled bool
	// Shadow true: decide, log and count as usual, but never deny.
	Shadow bool
	// Override points into the matched rule (nil when none matched). It must
	// not be modified.
	Override *T
	// Rule is the matched rule's index, or -1.
	Rule int
}

// Parse reads the top-level `shadow` and `rules` keys of o. For each rule it
// reads `match`, `enabled` and `shadow`, then calls parseOverride (which may
// be nil) with the same rule object to read the filter's own keys; any other
// key is then an unknown field. Errors are recorded in o, as for every
// config getter.
//
// A common pattern is for parseOverride to read each override with the
// top-level value as its default, so that *Decision.Override is a complete
// set of settings rather than a diff.
func Parse[T any](o *config.Object, parseOverride func(rule *config.Object) T) Set[T] {
	s := Set[T]{Shadow: o.Bool("shadow", false)}
	objs := o.Objects("rules")
	if len(objs) > 0 {
		s.Rules = make([]Rule[T], 0, len(objs))
	}
	catchAll := -1
	for i, r := range objs {
		rule := Rule[T]{Index: i}
		if m, ok := r.Object("match"); ok {
			rule.m = parseMatch(m)
		}
		if catchAll >= 0 {
			r.Errorf("", "unreachable: rules[%d] matches every request", catchAll)
		} else if rule.m.isAny() {
			catchAll = i
		}
		rule.Enabled = r.Bool("enabled", true)
		rule.Shadow = r.Bool("shadow", s.Shadow)
		if parseOverride != nil {
			rule.Override = parseOverride(r)
		}
		rule.LowersProtection = !rule.Enabled || rule.Shadow && !s.Shadow
		if l, ok := any(rule.Override).(Lowerer); ok && l.LowersProtection() {
			rule.LowersProtection = true
		}
		s.usesPath = s.usesPath || rule.m.prefix != "" || rule.m.path != ""
		s.usesRoute = s.usesRoute || rule.m.route != ""
		s.Rules = append(s.Rules, rule)
	}
	return s
}

// Lowerer is implemented by a filter's override type when some overrides
// weaken the filter (jwt-auth's allow_missing): rules.Parse then marks the
// rule LowersProtection. Implement it on the value type, not the pointer.
type Lowerer interface {
	LowersProtection() bool
}

// views are the forms of one request that rules compare: the authority
// as sent and without its port and trailing dot; the path as sent (query
// cut) and normalized.
type views struct {
	host, hostOnly string
	raw, norm      string
}

// Match returns the first rule that matches req, or nil. A rule that
// lowers protection matches only when the authority as sent and the path
// both as sent and normalized match it; any other rule matches when one
// form of each does.
func (s Set[T]) Match(req *Request) *Rule[T] {
	if len(s.Rules) == 0 {
		return nil
	}
	v := views{host: req.Host, hostOnly: hostOnly(req.Host)}
	if s.usesPath {
		v.raw = withoutQuery(req.Path)
		v.norm = NormalizePath(req.Path)
	}
	for i := range s.Rules {
		if s.Rules[i].m.matches(req, &v, s.Rules[i].LowersProtection) {
			return &s.Rules[i]
		}
	}
	return nil
}

// Decide combines the matched rule, if any, with the top-level defaults.
func (s Set[T]) Decide(req *Request) Decision[T] {
	r := s.Match(req)
	if r == nil {
		return Decision[T]{Enabled: true, Shadow: s.Shadow, Rule: -1}
	}
	return Decision[T]{Enabled: r.Enabled, Shadow: r.Shadow, Override: &r.Override, Rule: r.Index}
}

// UsesRoute reports whether any rule matches on the route name, so that the
// property is read from the host only when it matters.
func (s Set[T]) UsesRoute() bool { return s.usesRoute }

type headerKind uint8

const (
	headerExact headerKind = iota
	headerPrefix
	headerPresent
	headerAbsent
)

type headerMatch struct {
	name  string
	value string
	kind  headerKind
}

// hostKind is how a host pattern compares, as in Envoy's virtual-host
// domains.
type hostKind uint8

const (
	hostAny    hostKind = iota // "*", or no host criterion
	hostExact                  // "api.example.com", "api.example.com:8443"
	hostSuffix                 // "*.example.com", "*-api.example.com"
	hostPrefix                 // "api.example.*", "api.example.com:*"
)

type matcher struct {
	// host is the lower-case pattern without its '*'.
	host     string
	hostKind hostKind
	prefix   string
	path     string
	methods  []string
	headers  []headerMatch
	route    string
}

func (m *matcher) isAny() bool {
	return m.hostKind == hostAny && m.prefix == "" && m.path == "" && m.methods == nil &&
		m.headers == nil && m.route == ""
}

// matches tests the cheap, most selective criteria first. The views were
// computed once per request by Match. every (a rule that lowers
// protection) asks for the authority as sent and both forms of the path;
// otherwise one form of each is enough.
func (m *matcher) matches(req *Request, v *views, every bool) bool {
	if m.methods != nil && !contains(m.methods, req.Method) {
		return false
	}
	if m.route != "" && req.Route != m.route {
		return false
	}
	if m.hostKind != hostAny {
		// Only the authority as sent counts for a rule that lowers
		// protection: it is what Envoy's router selects the virtual host
		// on (unless the connection manager strips the port or the dot, and
		// then the filter sees the stripped value too).
		if !m.matchHost(v.host) && (every || !m.matchHost(v.hostOnly)) {
			return false
		}
	}
	if m.path != "" || m.prefix != "" {
		raw, norm := m.matchPath(v.raw), m.matchPath(v.norm)
		if every && !(raw && norm) || !every && !(raw || norm) {
			return false
		}
	}
	for i := range m.headers {
		if !m.headers[i].matches(req) {
			return false
		}
	}
	return true
}

// matchHost compares an authority with the pattern as Envoy's route table
// compares it with a virtual host's domains: case-insensitively, and a
// wildcard stands for at least one character.
func (m *matcher) matchHost(h string) bool {
	switch m.hostKind {
	case hostExact:
		return strings.EqualFold(h, m.host)
	case hostSuffix:
		return len(h) > len(m.host) && strings.EqualFold(h[len(h)-len(m.host):], m.host)
	case hostPrefix:
		return len(h) > len(m.host) && strings.EqualFold(h[:len(m.host)], m.host)
	}
	return true
}

func (m *matcher) matchPath(p string) bool {
	if m.path != "" {
		return p == m.path
	}
	return strings.HasPrefix(p, m.prefix)
}

func (h *headerMatch) matches(req *Request) bool {
	var v string
	var ok bool
	if req.Header != nil {
		v, ok = req.Header(h.name)
	}
	switch h.kind {
	case headerExact:
		return ok && v == h.value
	case headerPrefix:
		return ok && strings.HasPrefix(v, h.value)
	case headerPresent:
		return ok
	default:
		return !ok
	}
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// withoutQuery cuts the query from a :path. A '#' is an ordinary byte:
// Envoy refuses a path with one (or, as Istio configures it, strips the
// fragment before any filter runs), so a filter that sees '#' sits behind
// a proxy that forwards it, and the upstream may read past it.
func withoutQuery(p string) string {
	for i := 0; i < len(p); i++ {
		if p[i] == '?' {
			return p[:i]
		}
	}
	return p
}

// hostOnly strips the port and a trailing dot from an :authority value
// ("Example.com.:8443" → "Example.com"); case is handled by the comparison.
// Only rules that do not lower protection use this form.
func hostOnly(h string) string {
	if strings.HasPrefix(h, "[") {
		if i := strings.IndexByte(h, ']'); i > 0 {
			return h[:i+1]
		}
		return h
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 && isPort(h[i+1:]) {
		h = h[:i]
	}
	return strings.TrimSuffix(h, ".")
}

func isPort(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func parseMatch(o *config.Object) matcher {
	var m matcher
	if o.Has("host") {
		m.host, m.hostKind = parseHost(o)
	}
	if o.Has("prefix") && o.Has("path") {
		o.Errorf("", "set either prefix or path, not both")
	}
	m.prefix = parsePath(o, "prefix")
	m.path = parsePath(o, "path")
	if o.Has("methods") {
		m.methods = parseMethods(o)
	}
	if hs := o.Objects("headers"); hs != nil {
		if len(hs) == 0 {
			o.Errorf("headers", "must not be empty")
		}
		m.headers = make([]headerMatch, len(hs))
		for i, h := range hs {
			m.headers[i] = parseHeader(h)
		}
	}
	if o.Has("route") {
		m.route = o.String("route", "")
		if m.route == "" {
			o.Errorf("route", "must not be empty")
		}
	}
	return m
}

// parseHost reads a host pattern with the syntax of Envoy's virtual-host
// domains: exact ("api.example.com", "api.example.com:8443"), a suffix
// ("*.example.com"), a prefix ("api.example.*"), or "*" for any.
func parseHost(o *config.Object) (string, hostKind) {
	h := strings.ToLower(o.String("host", ""))
	stars := strings.Count(h, "*")
	switch {
	case h == "":
		o.Errorf("host", "must not be empty")
		return "", hostAny
	case h == "*":
		// Any host: the same as leaving host out.
		return "", hostAny
	case !isHostPattern(h):
		o.Errorf("host", "must be an authority (host[:port]) without spaces or control characters, got %q", h)
	case stars > 1 || stars == 1 && h[0] != '*' && h[len(h)-1] != '*':
		o.Errorf("host", `must hold at most one "*", first or last (as Envoy's virtual-host domains), got %q`, h)
	case h[0] == '*':
		return h[1:], hostSuffix
	case h[len(h)-1] == '*':
		return h[:len(h)-1], hostPrefix
	}
	return h, hostExact
}

func isHostPattern(h string) bool {
	for i := 0; i < len(h); i++ {
		if h[i] <= ' ' || h[i] >= 0x7f || h[i] == '/' || h[i] == '?' || h[i] == '#' || h[i] == '@' {
			return false
		}
	}
	return true
}

func parsePath(o *config.Object, key string) string {
	if !o.Has(key) {
		return ""
	}
	p := o.String(key, "")
	switch {
	case p == "" || p[0] != '/':
		o.Errorf(key, `must start with "/", got %q`, p)
		return ""
	case NormalizePath(p) != p:
		o.Errorf(key, "must be a normalized path (%q), got %q", NormalizePath(p), p)
		return ""
	}
	return p
}

func parseMethods(o *config.Object) []string {
	list := o.Strings("methods", nil)
	if list == nil {
		return nil
	}
	if len(list) == 0 {
		o.Errorf("methods", "must not be empty")
		return nil
	}
	out := make([]string, len(list))
	for i, v := range list {
		if !config.IsToken(v) {
			o.Errorf("methods["+strconv.Itoa(i)+"]", "must be an HTTP method, got %q", v)
		}
		// Methods are case-sensitive on the wire; upper-casing the
		// configuration only forgives "get" in a YAML file.
		out[i] = strings.ToUpper(v)
	}
	return out
}

func parseHeader(o *config.Object) headerMatch {
	h := headerMatch{name: strings.ToLower(o.String("name", ""))}
	if !config.IsToken(strings.TrimPrefix(h.name, ":")) {
		o.Errorf("name", "must be a header name, got %q", h.name)
	}
	n := 0
	for _, k := range [...]string{"exact", "prefix", "present"} {
		if o.Has(k) {
			n++
		}
	}
	if n != 1 {
		o.Errorf("", "set exactly one of exact, prefix, present")
	}
	switch {
	case o.Has("exact"):
		h.kind, h.value = headerExact, o.String("exact", "")
	case o.Has("prefix"):
		h.kind, h.value = headerPrefix, o.String("prefix", "")
	case o.Has("present"):
		h.kind = headerAbsent
		if o.Bool("present", true) {
			h.kind = headerPresent
		}
	}
	// Read them all so that a second one is not also an "unknown field".
	o.Raw("exact")
	o.Raw("prefix")
	o.Raw("present")
	return h
}
