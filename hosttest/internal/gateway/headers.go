package gateway

import (
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sort"
	"strconv"
	"strings"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/concierge-wasm/concierge/hosttest/internal/abi"
)

// hopByHop are the connection-specific headers a proxy never forwards
// (RFC 9110 §7.6.1); Envoy's codecs drop them too.
var hopByHop = map[string]bool{
	"connection": true, "keep-alive": true, "proxy-connection": true, "transfer-encoding": true,
	"upgrade": true, "te": true, "trailer": true, "proxy-authenticate": false,
}

// internalHeaders are the x-envoy-* request headers Envoy removes from a
// request that comes from outside (ConnectionManagerUtility's
// cleanInternalHeaders), so a client cannot steer the proxy with them.
var internalHeaders = []string{
	"x-envoy-decorator-operation", "x-envoy-downstream-service-cluster", "x-envoy-downstream-service-node",
	"x-envoy-expected-rq-timeout-ms", "x-envoy-force-trace", "x-envoy-internal", "x-envoy-ip-tags",
	"x-envoy-max-retries", "x-envoy-retry-grpc-on", "x-envoy-retry-on", "x-envoy-upstream-alt-stat-name",
	"x-envoy-upstream-rq-per-try-timeout-ms", "x-envoy-upstream-rq-timeout-alt-response",
	"x-envoy-upstream-rq-timeout-ms", "x-envoy-hedge-on-per-try-timeout", "x-envoy-retriable-status-codes",
	"x-envoy-retriable-header-names", "x-envoy-upstream-stream-duration-ms", "x-envoy-original-path",
	"x-envoy-external-address",
}

// rejection is a request the connection manager answers itself, before any
// filter runs.
type rejection struct {
	status  int
	details string
}

// requestHeaders builds the request headers the filter chain sees, as
// Envoy's HTTP connection manager does before the first filter: a path
// with a '#' refused; the path normalised per normalize_path, merge_slashes
// and path_with_escaped_slashes_action; :authority stripped per
// strip_trailing_host_dot and strip_any_host_port /
// strip_matching_host_port (local is the listener's address);
// x-forwarded-for, x-forwarded-proto,
// x-envoy-internal or x-envoy-external-address per use_remote_address;
// internal x-envoy-* headers removed from external requests; x-request-id
// per generate_request_id.
func (h *HCMConfig) requestHeaders(r *http.Request, remote netip.Addr, local net.Addr) ([]abi.Pair, *rejection) {
	path := r.RequestURI
	// A fragment never belongs in a request target (RFC 9112 §3.2). Envoy
	// refuses one (envoy.reloadable_features.http_reject_path_with_fragment,
	// on since 1.19.1): filters and route matchers that stop at '#' would
	// see another path than an upstream that reads past it.
	if strings.IndexByte(path, '#') >= 0 {
		return nil, &rejection{400, "path_normalization_failed"}
	}
	if !strings.HasPrefix(path, "/") {
		if u, err := url.Parse(path); err == nil && u.IsAbs() {
			path = u.RequestURI() // absolute-form request target
		} else if path != "*" {
			return nil, &rejection{400, "invalid_path"}
		}
	}
	path, rej := h.normalizePath(path)
	if rej != nil {
		return nil, rej
	}
	hs := make([]abi.Pair, 0, len(r.Header)+8)
	hs = append(hs, abi.Pair{Key: ":authority", Value: h.authority(r.Host, local)}, abi.Pair{Key: ":path", Value: path},
		abi.Pair{Key: ":method", Value: r.Method}, abi.Pair{Key: ":scheme", Value: "http"})
	// net/http moves the Trailer announcement from the headers into
	// r.Trailer; it is an ordinary header to Envoy and to the upstream.
	if len(r.Trailer) > 0 {
		names := make([]string, 0, len(r.Trailer))
		for k := range r.Trailer {
			names = append(names, strings.ToLower(k))
		}
		sort.Strings(names)
		hs = append(hs, abi.Pair{Key: "trailer", Value: strings.Join(names, ", ")})
	}
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		lk := strings.ToLower(k)
		if hopByHop[lk] && !(lk == "te" && strings.EqualFold(r.Header.Get(k), "trailers")) {
			continue
		}
		if lk == "host" {
			continue
		}
		for _, v := range r.Header[k] {
			hs = append(hs, abi.Pair{Key: lk, Value: v})
		}
	}
	set := func(k, v string) {
		hs = del(hs, k)
		hs = append(hs, abi.Pair{Key: k, Value: v})
	}
	get := func(k string) (string, bool) {
		for _, p := range hs {
			if p.Key == k {
				return p.Value, true
			}
		}
		return "", false
	}
	// The address Envoy trusts as the client's, and whether the request is
	// internal (RFC 1918 or loopback, with no earlier hop).
	xff, hadXFF := get("x-forwarded-for")
	internal := false
	if h.UseRemoteAddr {
		if !h.SkipXFFAppend && remote.IsValid() {
			if hadXFF && xff != "" {
				set("x-forwarded-for", xff+","+remote.String())
			} else {
				set("x-forwarded-for", remote.String())
			}
		}
		set("x-forwarded-proto", "http")
		internal = !hadXFF && remote.IsValid() && (remote.IsLoopback() || remote.IsPrivate())
		hs = del(hs, "x-envoy-internal")
		if internal {
			hs = append(hs, abi.Pair{Key: "x-envoy-internal", Value: "true"})
		} else {
			for _, k := range internalHeaders {
				hs = del(hs, k)
			}
			if remote.IsValid() {
				hs = append(hs, abi.Pair{Key: "x-envoy-external-address", Value: remote.String()})
			}
		}
	} else if _, ok := get("x-forwarded-proto"); !ok {
		hs = append(hs, abi.Pair{Key: "x-forwarded-proto", Value: "http"})
	}
	if h.GenRequestID {
		id, ok := get("x-request-id")
		if !ok || id == "" || (h.UseRemoteAddr && !internal && !h.PreserveReqID) {
			set("x-request-id", uuid4())
		}
	}
	return hs, nil
}

// stripPort is the connection manager's strip_port_mode.
type stripPort uint8

const (
	keepPort          stripPort = iota
	stripAnyPort                // strip_any_host_port
	stripMatchingPort           // strip_matching_host_port: only the listener's own port
)

// authority is :authority as Envoy's connection manager leaves it for the
// filters and the router (ConnectionManagerUtility::maybeNormalizeHost):
// the trailing dot of the host removed, then the port, when configured.
// Both rewrite the header itself, so every filter sees what the router
// selects the virtual host on.
func (h *HCMConfig) authority(host string, local net.Addr) string {
	if h.StripTrailingDot {
		if i := strings.LastIndexByte(host, '.'); i >= 0 {
			switch {
			case i == len(host)-1:
				host = host[:i]
			case host[i+1] == ':':
				host = host[:i] + host[i+1:]
			}
		}
	}
	if h.StripPort == keepPort {
		return host
	}
	i := strings.LastIndexByte(host, ':')
	if i < 0 || strings.LastIndexByte(host, ']') > i {
		return host // no port, or an IPv6 literal without one
	}
	// Envoy strips only a port that parses as a number (not "host:").
	port, err := strconv.ParseUint(host[i+1:], 10, 32)
	if err != nil {
		return host
	}
	if h.StripPort == stripMatchingPort {
		a, ok := local.(*net.TCPAddr)
		if !ok || uint64(a.Port) != port {
			return host
		}
	}
	return host[:i]
}

func del(hs []abi.Pair, k string) []abi.Pair {
	out := hs[:0]
	for _, p := range hs {
		if p.Key != k {
			out = append(out, p)
		}
	}
	return out
}

func uuid4() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// normalizePath applies the HTTP connection manager's path options to a
// request target, in Envoy's order: escaped slashes, then RFC 3986
// normalisation, then merging slashes. The query is left alone.
func (h *HCMConfig) normalizePath(target string) (string, *rejection) {
	if target == "*" {
		return target, nil
	}
	path, query := target, ""
	if i := strings.IndexByte(target, '?'); i >= 0 {
		path, query = target[:i], target[i:]
	}
	lower := strings.ToLower(path)
	if strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c") {
		switch h.EscSlashes {
		case hcmv3.HttpConnectionManager_REJECT_REQUEST:
			return "", &rejection{400, "path_has_escaped_slashes"}
		case hcmv3.HttpConnectionManager_UNESCAPE_AND_FORWARD:
			path = replaceFold(replaceFold(path, "%2f", "/"), "%5c", `\`)
		}
	}
	if h.NormalizePath {
		p, ok := canonicalPath(path)
		if !ok {
			return "", &rejection{400, "path_normalization_failed"}
		}
		path = p
	}
	if h.MergeSlashes {
		for strings.Contains(path, "//") {
			path = strings.ReplaceAll(path, "//", "/")
		}
	}
	return path + query, nil
}

func replaceFold(s, old, repl string) string {
	var b strings.Builder
	for {
		i := strings.Index(strings.ToLower(s), old)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		b.WriteString(repl)
		s = s[i+len(old):]
	}
}

// canonicalPath normalises a path as Envoy's normalize_path does: percent
// escapes of unreserved characters decoded and the others upper-cased,
// backslashes turned into slashes, dot segments removed (RFC 3986 §6.2.2,
// §5.2.4). A malformed escape is an error.
func canonicalPath(p string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return "", false
			}
			v := unhex(p[i+1])<<4 | unhex(p[i+2])
			if isUnreserved(v) {
				b.WriteByte(v)
			} else {
				b.WriteByte('%')
				b.WriteString(strings.ToUpper(p[i+1 : i+3]))
			}
			i += 2
		case c == '\\':
			b.WriteByte('/')
		default:
			b.WriteByte(c)
		}
	}
	return removeDotSegments(b.String()), true
}

func removeDotSegments(p string) string {
	if !strings.Contains(p, ".") {
		return p
	}
	segs := strings.Split(p, "/")
	out := make([]string, 0, len(segs))
	for i, s := range segs {
		switch s {
		case ".":
			if i == len(segs)-1 {
				out = append(out, "")
			}
		case "..":
			if len(out) > 1 {
				out = out[:len(out)-1]
			}
			if i == len(segs)-1 {
				out = append(out, "")
			}
		default:
			out = append(out, s)
		}
	}
	r := strings.Join(out, "/")
	if !strings.HasPrefix(r, "/") {
		r = "/" + r
	}
	return r
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

func isUnreserved(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

// remoteAddr parses a net/http RemoteAddr.
func remoteAddr(s string) netip.Addr {
	host, _, err := net.SplitHostPort(s)
	if err != nil {
		host = s
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}
