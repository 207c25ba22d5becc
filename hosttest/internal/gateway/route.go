package gateway

import (
	"net/http"
	"sort"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// request is what route matching reads: the request as the HTTP
// connection manager (or, after the filters, the router) sees it.
type request struct {
	authority, path, method string
	header                  func(name string) []string // by lower-case name
}

func httpRequestView(r *http.Request) request {
	return request{authority: r.Host, path: r.RequestURI, method: r.Method, header: func(n string) []string { return r.Header.Values(n) }}
}

// Match picks the virtual host by :authority (exact, then *suffix, then
// prefix*, longest first, then "*"), then its first matching route, as
// Envoy does. It returns nil when nothing matches.
func (t *RouteTable) Match(r request) *Route {
	if t == nil {
		return nil
	}
	vh := t.virtualHost(strings.ToLower(r.authority))
	if vh == nil {
		return nil
	}
	for _, rt := range vh.Routes {
		if rt.match.matches(r) {
			return rt
		}
	}
	return nil
}

func (t *RouteTable) virtualHost(host string) *VirtualHost {
	type cand struct {
		vh    *VirtualHost
		class int // 0 exact, 1 suffix, 2 prefix, 3 any
		n     int // length of the pattern
	}
	var best *cand
	for _, vh := range t.VirtualHosts {
		for _, d := range vh.Domains {
			d = strings.ToLower(d)
			var c *cand
			switch {
			case d == "*":
				c = &cand{vh, 3, 0}
			case strings.HasPrefix(d, "*") && strings.HasSuffix(host, d[1:]) && len(host) > len(d)-1:
				c = &cand{vh, 1, len(d)}
			case strings.HasSuffix(d, "*") && strings.HasPrefix(host, d[:len(d)-1]) && len(host) > len(d)-1:
				c = &cand{vh, 2, len(d)}
			case d == host:
				c = &cand{vh, 0, len(d)}
			}
			if c != nil && (best == nil || c.class < best.class || (c.class == best.class && c.n > best.n)) {
				best = c
			}
		}
	}
	if best == nil {
		return nil
	}
	return best.vh
}

func stripQuery(p string) string {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		return p[:i]
	}
	return p
}

func (m *routeMatch) matches(r request) bool {
	path := r.path
	switch m.kind {
	case matchPrefix:
		if !hasPrefix(path, m.value, m.caseSensitive) {
			return false
		}
	case matchPath:
		if p := stripQuery(path); !(p == m.value || (!m.caseSensitive && strings.EqualFold(p, m.value))) {
			return false
		}
	case matchSeparated:
		p := stripQuery(path)
		if !hasPrefix(p, m.value, m.caseSensitive) || (len(p) > len(m.value) && p[len(m.value)] != '/') {
			return false
		}
	case matchRegex:
		if !m.re.MatchString(stripQuery(path)) {
			return false
		}
	}
	for i := range m.headers {
		if !m.headers[i].matches(r) {
			return false
		}
	}
	return true
}

func hasPrefix(s, prefix string, caseSensitive bool) bool {
	if caseSensitive {
		return strings.HasPrefix(s, prefix)
	}
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func (h *headerMatch) matches(r request) bool {
	var vals []string
	switch h.name {
	case ":authority", "host":
		vals = []string{r.authority}
	case ":path":
		vals = []string{r.path}
	case ":method":
		vals = []string{r.method}
	default:
		vals = r.header(h.name)
	}
	present := len(vals) > 0
	v := strings.Join(vals, ",")
	if !present && h.missingAsEmpty {
		present = true
	}
	if h.kind == "present" {
		return (present == h.present) != h.invert
	}
	if !present {
		return false // a missing header fails every value matcher, inverted or not
	}
	var ok bool
	cmp, want := v, h.value
	if h.ignoreCase {
		cmp, want = strings.ToLower(cmp), strings.ToLower(want)
	}
	switch h.kind {
	case "exact":
		ok = cmp == want
	case "prefix":
		ok = strings.HasPrefix(cmp, want)
	case "suffix":
		ok = strings.HasSuffix(cmp, want)
	case "contains":
		ok = strings.Contains(cmp, want)
	case "regex":
		ok = h.re.MatchString(v)
	case "range":
		n, err := strconv.ParseInt(v, 10, 64)
		ok = err == nil && n >= h.start && n < h.end
	}
	return ok != h.invert
}

// rewritePath applies prefix_rewrite to a :path the route matched.
func (rt *Route) rewritePath(path string) (string, bool) {
	if rt.PrefixRewrite == "" || len(path) < len(rt.match.value) {
		return path, false
	}
	return rt.PrefixRewrite + path[len(rt.match.value):], true
}

// requestMutations and responseMutations list a route's header changes,
// most specific first (route, virtual host, route table), which is the
// order Envoy applies them in: with a less specific level applied later,
// its overwrites win (most_specific_header_mutations_wins: false).
func (rt *Route) levels(t *RouteTable) []*headerMutations {
	return []*headerMutations{&rt.mutations, &rt.vh.mutations, &t.mutations}
}

// applyHeaderOptions edits h (canonical http.Header) as Envoy's
// HeaderValueOption append actions do.
func applyHeaderOptions(h http.Header, remove []string, add []headerOption) {
	for _, k := range remove {
		h.Del(k)
	}
	for _, o := range add {
		if o.value == "" && !o.keepEmpty {
			continue
		}
		exists := len(h.Values(o.key)) > 0
		switch o.action {
		case corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD:
			h.Add(o.key, o.value)
		case corev3.HeaderValueOption_ADD_IF_ABSENT:
			if !exists {
				h.Set(o.key, o.value)
			}
		case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD:
			h.Set(o.key, o.value)
		case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS:
			if exists {
				h.Set(o.key, o.value)
			}
		}
	}
}

// Describe lists the routes, for --mode validate.
func (t *RouteTable) Describe() []string {
	var out []string
	for _, vh := range t.VirtualHosts {
		domains := append([]string(nil), vh.Domains...)
		sort.Strings(domains)
		for _, rt := range vh.Routes {
			var m string
			switch rt.match.kind {
			case matchPrefix:
				m = "prefix " + rt.match.value
			case matchPath:
				m = "path " + rt.match.value
			case matchSeparated:
				m = "path_separated_prefix " + rt.match.value
			case matchRegex:
				m = "safe_regex " + rt.match.re.String()
			}
			if len(rt.match.headers) > 0 {
				m += " + " + strconv.Itoa(len(rt.match.headers)) + " header matcher(s)"
			}
			to := "cluster " + rt.Cluster
			if rt.Direct != nil {
				to = "direct response " + strconv.Itoa(rt.Direct.Status)
			}
			if rt.PrefixRewrite != "" {
				to += ", prefix_rewrite " + rt.PrefixRewrite
			}
			if rt.HostRewrite != "" {
				to += ", host " + rt.HostRewrite
			}
			if rt.Timeout > 0 {
				to += ", timeout " + rt.Timeout.String()
			}
			if len(rt.Disabled) > 0 {
				var d []string
				for k := range rt.Disabled {
					d = append(d, k)
				}
				sort.Strings(d)
				to += ", filters off: " + strings.Join(d, " ")
			}
			out = append(out, "  "+vh.Name+" ["+strings.Join(domains, " ")+"] route "+rt.Name+": "+m+" → "+to)
		}
	}
	return out
}
