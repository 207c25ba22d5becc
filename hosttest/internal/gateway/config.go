package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	wasmhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/concierge-wasm/concierge/hosttest/internal/engine"
)

// Config is a bootstrap as the gateway serves it.
type Config struct {
	// Bootstrap is the configuration as parsed, for /config_dump and the
	// node properties.
	Bootstrap *bootstrapv3.Bootstrap
	Admin     string // admin listener address; empty: none
	// StatTags are stats_config.stats_tags: they turn parts of the
	// filters' metric names into Prometheus labels.
	StatTags  []StatTag
	Listeners []*ListenerConfig
	// TCPListeners have network wasm filters and tcp_proxy (tcp.go).
	TCPListeners []*ListenerConfig
	// Services are bootstrap_extensions envoy.bootstrap.wasm (service.go).
	Services []ServiceConfig
	Clusters []*ClusterConfig
	// Overload is the overload manager, nil when the bootstrap has none.
	Overload *OverloadConfig
	// Warnings name each field accepted but not emulated, one line each.
	Warnings []string
}

// ListenerConfig is one listener with its HTTP connection manager.
type ListenerConfig struct {
	Name    string
	Index   int    // position in static_resources.listeners, HTTP and TCP alike
	Address string // host:port
	HCM     *HCMConfig
	TCP     *TCPConfig // instead of HCM: network wasm filters and tcp_proxy (tcpconfig.go)
	// BufferLimit is per_connection_buffer_limit_bytes: how much of a body
	// a filter may buffer (0: Envoy's default, 1 MiB), and the high
	// watermark of the gateway's flow control.
	BufferLimit int
	// Metadata, Direction and FilterChainName are what plugins read as
	// xds.listener_metadata, xds.listener_direction (traffic_direction)
	// and xds.filter_chain_name.
	Metadata        *corev3.Metadata
	Direction       corev3.TrafficDirection
	FilterChainName string
}

// HCMConfig is an HTTP connection manager.
type HCMConfig struct {
	StatPrefix string
	HTTP1, H2C bool
	// MaxRequestHeaderBytes is max_request_headers_kb (Envoy's default
	// 60 KiB): larger request headers get 431.
	MaxRequestHeaderBytes int
	// H2BufferLimit is an HTTP/2 stream's buffer limit: Envoy uses the
	// stream window (http2_protocol_options.initial_stream_window_size,
	// 256 MiB by default up to Envoy 1.35), not the connection's limit.
	H2BufferLimit int
	Filters       []FilterConfig // wasm filters in chain order
	Routes        *RouteTable
	UseRemoteAddr bool
	SkipXFFAppend bool
	XFFTrusted    uint32
	GenRequestID  bool
	PreserveReqID bool
	// InternalCIDRs is internal_address_config.cidr_ranges: the peers whose
	// requests are internal (x-envoy-internal: true, their request ID and
	// x-envoy-* headers kept). Empty: none, Envoy's default since 1.33.
	InternalCIDRs []netip.Prefix
	NormalizePath bool
	MergeSlashes  bool
	EscSlashes    hcmv3.HttpConnectionManager_PathWithEscapedSlashesAction
	// StripPort and StripTrailingDot are strip_any_host_port /
	// strip_matching_host_port and strip_trailing_host_dot: the connection
	// manager rewrites :authority before the filters and the router see it.
	StripPort        stripPort
	StripTrailingDot bool
	ServerName       string
	ServerHeader     hcmv3.HttpConnectionManager_ServerHeaderTransformation
	// Timeouts are the connection manager's timers (see timeouts.go).
	Timeouts Timeouts
	// SuppressEnvoyHeaders is the router's suppress_envoy_headers.
	SuppressEnvoyHeaders bool
	// Underscores is common_http_protocol_options.headers_with_underscores_action:
	// what the downstream codecs do with a request header or trailer whose
	// name contains '_' (ALLOW by default).
	Underscores corev3.HttpProtocolOptions_HeadersWithUnderscoresAction
	// HTTP1Trailers is http_protocol_options.enable_trailers: without it
	// Envoy's HTTP/1 codec drops request trailers on decoding and response
	// trailers on encoding. HTTP/2 always carries them.
	HTTP1Trailers bool
	// disabledByDefault holds the filters whose HttpFilter.disabled is set.
	disabledByDefault map[string]bool
}

// FilterConfig is one wasm filter: its http_filters name, where its code
// came from, and what the engine runs.
type FilterConfig struct {
	HTTPName string
	CodePath string
	// PluginName is config.name as written, possibly empty (the engine
	// then knows the filter by HTTPName).
	PluginName string
	Engine     engine.FilterConfig
}

// RouteTable is an inline route_config.
type RouteTable struct {
	Name         string
	VirtualHosts []*VirtualHost
	mutations    headerMutations
}

// VirtualHost is one virtual host.
type VirtualHost struct {
	Name      string
	Metadata  *corev3.Metadata // xds.virtual_host_metadata
	Domains   []string
	Routes    []*Route
	mutations headerMutations
}

// Route is one route: a match and what to do.
type Route struct {
	Name string
	// Metadata is the route's metadata: xds.route_metadata.
	Metadata *corev3.Metadata
	match    routeMatch
	// Cluster is where the router sends the request; empty for a direct
	// response.
	Cluster string
	Direct  *DirectResponse
	// PrefixRewrite replaces the matched prefix (prefix_rewrite).
	PrefixRewrite   string
	HostRewrite     string
	AutoHostRewrite bool
	// Timeout is the route timeout; 0 disables it (Envoy's default is 15s).
	Timeout time.Duration
	// IdleTimeout is the route's idle_timeout, replacing the connection
	// manager's stream_idle_timeout for this route (0 disables); nil: not
	// set.
	IdleTimeout *time.Duration
	// Disabled names the engine filters switched off on this route.
	Disabled  map[string]bool
	mutations headerMutations
	vh        *VirtualHost
	props     streamProps // what the filters read of it (props.go)
}

// DirectResponse is a route's direct_response.
type DirectResponse struct {
	Status int
	Body   []byte
}

// ClusterConfig is one cluster.
type ClusterConfig struct {
	Name           string
	Metadata       *corev3.Metadata // xds.cluster_metadata
	Type           clusterv3.Cluster_DiscoveryType
	LB             clusterv3.Cluster_LbPolicy
	ConnectTimeout time.Duration
	Endpoints      []EndpointAddr
	HealthCheck    *HealthCheckConfig
	PanicThreshold float64 // percent
	DNSRefresh     time.Duration
	DNSFamily      clusterv3.Cluster_DnsLookupFamily
	TLS            *tls.Config
	// Trailers: the cluster's codec carries trailers (HTTP/2, or HTTP/1
	// with enable_trailers); see upstreamTrailers.
	Trailers bool
}

// EndpointAddr is an lb_endpoint's address.
type EndpointAddr struct {
	Host   string
	Port   uint32
	HCPort uint32 // health_check_config.port_value, 0: Port
	// Metadata (the lb_endpoint's), Locality and LocalityMetadata (its
	// locality group's) are xds.upstream_host_metadata, upstream.locality
	// and xds.upstream_host_locality_metadata once the router picked it.
	Metadata         *corev3.Metadata
	Locality         *corev3.Locality
	LocalityMetadata *corev3.Metadata
}

// HealthCheckConfig is an active HTTP health check.
type HealthCheckConfig struct {
	Path, Host         string
	Method             string
	Interval, Timeout  time.Duration
	Unhealthy, Healthy uint32
	Expected           [][2]int64 // [start, end) ranges
	mutations          headerMutations
}

type headerOption struct {
	key, value string
	action     corev3.HeaderValueOption_HeaderAppendAction
	keepEmpty  bool
}

type headerMutations struct {
	reqAdd, respAdd       []headerOption
	reqRemove, respRemove []string
}

// Options are what the command line adds to a bootstrap.
type Options struct {
	// BaseDir resolves relative wasm filenames (Envoy: the working
	// directory); empty means the working directory.
	BaseDir string
	// WasmDir, if set, replaces the directory of every wasm filename: the
	// module is read from WasmDir/<base name>. It lets envoy.yaml's
	// production paths (/etc/envoy/wasm/...) be checked against build/.
	WasmDir string
}

// Compile turns a parsed bootstrap into what the gateway serves, loading
// each wasm module. All refusals are returned together.
func Compile(bs *bootstrapv3.Bootstrap, o Options) (*Config, error) {
	c := &checker{}
	cfg := &Config{Bootstrap: bs}
	c.check(bs, "bootstrap", fields{
		use: "node admin static_resources stats_config overload_manager bootstrap_extensions",
		warn: map[string]string{
			"stats_sinks":             "no stats are pushed; /stats/prometheus serves the filter metrics",
			"stats_flush_interval":    "stats flushing",
			"layered_runtime":         "runtime layers",
			"cluster_manager":         "cluster manager tuning",
			"watchdog":                "watchdog",
			"watchdogs":               "watchdogs",
			"tracing":                 "tracing",
			"enable_dispatcher_stats": "dispatcher stats",
			"fatal_actions":           "fatal actions",
			"application_log_config":  "application log format",
		},
	})
	if om := bs.GetOverloadManager(); om != nil {
		cfg.Overload = compileOverload(c, om)
	}
	if sc := bs.GetStatsConfig(); sc != nil {
		cfg.StatTags = compileStatTags(c, sc)
	}
	if a := bs.GetAdmin(); a != nil {
		c.check(a, "admin", fields{use: "address", warn: map[string]string{
			"access_log": "admin access log", "access_log_path": "admin access log", "profile_path": "profiler",
		}})
		cfg.Admin = socketAddress(c, a.GetAddress(), "admin.address")
	}
	cfg.Services = compileServices(c, bs, o)
	sr := bs.GetStaticResources()
	c.check(sr, "static_resources", fields{use: "listeners clusters"})
	for i, cl := range sr.GetClusters() {
		if cc := compileCluster(c, cl, fmt.Sprintf("clusters[%d] (%s)", i, cl.GetName())); cc != nil {
			cfg.Clusters = append(cfg.Clusters, cc)
		}
	}
	known := map[string]bool{}
	for _, cl := range cfg.Clusters {
		if known[cl.Name] {
			c.errorf("clusters: two clusters named %q", cl.Name)
		}
		known[cl.Name] = true
	}
	for i, l := range sr.GetListeners() {
		lc := compileListener(c, l, fmt.Sprintf("listeners[%d] (%s)", i, l.GetName()), known, o)
		if lc != nil {
			lc.Index = i
		}
		if lc != nil && lc.TCP != nil {
			cfg.TCPListeners = append(cfg.TCPListeners, lc)
		} else if lc != nil {
			cfg.Listeners = append(cfg.Listeners, lc)
		}
	}
	if len(sr.GetListeners()) == 0 {
		c.errorf("static_resources.listeners: none; the gateway has nothing to serve")
	}
	cfg.Warnings = c.warnings
	if len(c.errs) > 0 {
		return cfg, &ConfigError{Problems: c.errs}
	}
	return cfg, nil
}

// ConfigError lists every refusal of a configuration.
type ConfigError struct{ Problems []string }

func (e *ConfigError) Error() string {
	if len(e.Problems) == 1 {
		return e.Problems[0]
	}
	return fmt.Sprintf("%d problems:\n  %s", len(e.Problems), strings.Join(e.Problems, "\n  "))
}

func socketAddress(c *checker, a *corev3.Address, at string) string {
	sa := a.GetSocketAddress()
	if sa == nil {
		c.errorf("%s: only socket_address is supported", at)
		return ""
	}
	c.check(a, at, fields{use: "socket_address"})
	c.check(sa, at+".socket_address", fields{use: "protocol address port_value ipv4_compat"})
	if sa.GetProtocol() != corev3.SocketAddress_TCP {
		c.errorf("%s.socket_address.protocol: only TCP is supported", at)
	}
	return net.JoinHostPort(sa.GetAddress(), strconv.Itoa(int(sa.GetPortValue())))
}

func dur(d *durationpb.Duration, def time.Duration) time.Duration {
	if d == nil {
		return def
	}
	return d.AsDuration()
}

func compileListener(c *checker, l *listenerv3.Listener, at string, clusters map[string]bool, o Options) *ListenerConfig {
	c.check(l, at, fields{
		use: "name address filter_chains stat_prefix metadata enable_reuse_port reuse_port traffic_direction bind_to_port tcp_backlog_size per_connection_buffer_limit_bytes",
		warn: map[string]string{
			"access_log":                "listener access log",
			"socket_options":            "socket options",
			"tcp_keepalive":             "TCP keepalive settings",
			"connection_balance_config": "connection balancing (streams are spread over the workers round-robin)",
			"drain_type":                "drain type",
		},
	})
	if l.GetBindToPort() != nil && !l.GetBindToPort().GetValue() {
		c.errorf("%s.bind_to_port: false is not supported", at)
	}
	lc := &ListenerConfig{Name: l.GetName(), Address: socketAddress(c, l.GetAddress(), at+".address"),
		BufferLimit: int(l.GetPerConnectionBufferLimitBytes().GetValue()),
		Metadata:    l.GetMetadata(), Direction: l.GetTrafficDirection()}
	if len(l.GetFilterChains()) != 1 {
		c.errorf("%s.filter_chains: exactly one filter chain is supported, got %d", at, len(l.GetFilterChains()))
		return nil
	}
	fc := l.GetFilterChains()[0]
	fat := at + ".filter_chains[0]"
	c.check(fc, fat, fields{use: "filters name metadata"})
	lc.FilterChainName = fc.GetName()
	if tc, ok := compileTCPChain(c, fc, fat, clusters, o); ok {
		lc.TCP = tc
		return lc
	}
	if len(fc.GetFilters()) != 1 {
		c.errorf("%s.filters: exactly one network filter (the HTTP connection manager), or envoy.filters.network.wasm filters then tcp_proxy, is supported, got %d", fat, len(fc.GetFilters()))
		return nil
	}
	nf := fc.GetFilters()[0]
	c.check(nf, fat+".filters[0]", fields{use: "name typed_config"})
	m, err := nf.GetTypedConfig().UnmarshalNew()
	if err != nil {
		c.errorf("%s.filters[0].typed_config: %v", fat, err)
		return nil
	}
	hcm, ok := m.(*hcmv3.HttpConnectionManager)
	if !ok {
		c.errorf("%s.filters[0].typed_config: %s is not supported; only the HTTP connection manager is", fat, nf.GetTypedConfig().GetTypeUrl())
		return nil
	}
	lc.HCM = compileHCM(c, hcm, fat+".filters[0] (http_connection_manager)", clusters, o)
	return lc
}

func compileHCM(c *checker, m *hcmv3.HttpConnectionManager, at string, clusters map[string]bool, o Options) *HCMConfig {
	c.check(m, at, fields{
		use: "codec_type stat_prefix route_config http_filters server_name server_header_transformation use_remote_address xff_num_trusted_hops skip_xff_append generate_request_id preserve_external_request_id internal_address_config normalize_path merge_slashes path_with_escaped_slashes_action max_request_headers_kb strip_any_host_port strip_matching_host_port strip_trailing_host_dot common_http_protocol_options http_protocol_options stream_idle_timeout request_timeout request_headers_timeout",
		warn: map[string]string{
			"access_log":                           "HTTP access log (the filters' own access-log lines still appear)",
			"access_log_options":                   "HTTP access log",
			"tracing":                              "tracing",
			"http2_protocol_options":               "HTTP/2 codec options (but initial_stream_window_size is an h2c stream's buffer limit)",
			"drain_timeout":                        "drain timeout (shutdown waits for in-flight requests)",
			"delayed_close_timeout":                "delayed close",
			"stream_error_on_invalid_http_message": "codec error handling",
		},
	})
	h := &HCMConfig{
		StatPrefix:    m.GetStatPrefix(),
		UseRemoteAddr: m.GetUseRemoteAddress().GetValue(),
		SkipXFFAppend: m.GetSkipXffAppend(),
		XFFTrusted:    m.GetXffNumTrustedHops(),
		GenRequestID:  m.GetGenerateRequestId() == nil || m.GetGenerateRequestId().GetValue(),
		PreserveReqID: m.GetPreserveExternalRequestId(),
		NormalizePath: m.GetNormalizePath().GetValue(),
		MergeSlashes:  m.GetMergeSlashes(),
		EscSlashes:    m.GetPathWithEscapedSlashesAction(),
		ServerName:    m.GetServerName(),
		ServerHeader:  m.GetServerHeaderTransformation(),

		StripTrailingDot: m.GetStripTrailingHostDot(),
	}
	switch {
	case m.GetStripAnyHostPort() && m.GetStripMatchingHostPort():
		c.errorf("%s: only one of strip_matching_host_port or strip_any_host_port can be set", at)
	case m.GetStripAnyHostPort():
		h.StripPort = stripAnyPort
	case m.GetStripMatchingHostPort():
		h.StripPort = stripMatchingPort
	}
	h.Timeouts = compileTimeouts(c, m, at)
	if iac := m.GetInternalAddressConfig(); iac != nil {
		iat := at + ".internal_address_config"
		c.check(iac, iat, fields{use: "unix_sockets cidr_ranges"})
		for i, r := range iac.GetCidrRanges() {
			a, err := netip.ParseAddr(r.GetAddressPrefix())
			bits := int(r.GetPrefixLen().GetValue())
			if err != nil || bits > a.BitLen() {
				c.errorf("%s.cidr_ranges[%d]: %q/%d is not an IP prefix", iat, i, r.GetAddressPrefix(), bits)
				continue
			}
			p, _ := a.Unmap().Prefix(bits)
			h.InternalCIDRs = append(h.InternalCIDRs, p)
		}
	}
	if h.ServerName == "" {
		h.ServerName = "envoy"
	}
	compileCodecOptions(c, m, at, h)
	h.MaxRequestHeaderBytes = 60 << 10
	if kb := m.GetMaxRequestHeadersKb(); kb != nil {
		h.MaxRequestHeaderBytes = int(kb.GetValue()) << 10
	}
	h.H2BufferLimit = 256 << 20
	if w := m.GetHttp2ProtocolOptions().GetInitialStreamWindowSize(); w != nil {
		h.H2BufferLimit = int(w.GetValue())
	}
	switch m.GetCodecType() {
	case hcmv3.HttpConnectionManager_AUTO:
		h.HTTP1, h.H2C = true, true
	case hcmv3.HttpConnectionManager_HTTP1:
		h.HTTP1 = true
	case hcmv3.HttpConnectionManager_HTTP2:
		h.H2C = true
	default:
		c.errorf("%s.codec_type: %v is not supported (HTTP1, HTTP2 as h2c, or AUTO)", at, m.GetCodecType())
	}
	if h.EscSlashes == hcmv3.HttpConnectionManager_UNESCAPE_AND_REDIRECT {
		c.errorf("%s.path_with_escaped_slashes_action: UNESCAPE_AND_REDIRECT is not supported (REJECT_REQUEST, UNESCAPE_AND_FORWARD or KEEP_UNCHANGED)", at)
	}

	// http_filters: wasm filters, then the router.
	// http filter name → engine filter names: Envoy lets two filters share
	// a name, and typed_per_filter_config under it then applies to both.
	names := map[string][]string{}
	h.disabledByDefault = map[string]bool{}
	hf := m.GetHttpFilters()
	if len(hf) == 0 {
		c.errorf("%s.http_filters: empty; the router must be the last filter", at)
	}
	for i, f := range hf {
		fat := fmt.Sprintf("%s.http_filters[%d] (%s)", at, i, f.GetName())
		c.check(f, fat, fields{use: "name typed_config is_optional disabled"})
		inner, err := f.GetTypedConfig().UnmarshalNew()
		if err != nil {
			c.errorf("%s.typed_config: %v", fat, err)
			continue
		}
		switch x := inner.(type) {
		case *routerv3.Router:
			if i != len(hf)-1 {
				c.errorf("%s: the router must be the last http filter", fat)
			}
			c.check(x, fat+".typed_config", fields{use: "suppress_envoy_headers", warn: map[string]string{
				"dynamic_stats": "router stats", "start_child_span": "tracing", "upstream_log": "upstream access log",
				"upstream_log_options": "upstream access log", "strict_check_headers": "x-envoy-* header checks",
				"respect_expected_rq_timeout": "x-envoy-expected-rq-timeout-ms from downstream",
			}})
			h.SuppressEnvoyHeaders = x.GetSuppressEnvoyHeaders()
		case *wasmhttpv3.Wasm:
			if i == len(hf)-1 {
				c.errorf("%s: the last http filter must be the router", fat)
			}
			c.check(x, fat+".typed_config", fields{use: "config"})
			fcfg, ok := compileWasm(c, x.GetConfig(), fat+".typed_config.config", f.GetName(), o)
			if !ok {
				continue
			}
			for _, ref := range clusterRefs(fcfg.Engine.Configuration) {
				if !clusters[ref.name] {
					c.errorf("%s.typed_config.config.configuration: %s names cluster %q, which the bootstrap does not define (every callout to it would fail)", fat, ref.path, ref.name)
				}
			}
			fcfg.Engine.Name = c.engineName(fcfg.Engine.Name)
			names[f.GetName()] = append(names[f.GetName()], fcfg.Engine.Name)
			if f.GetDisabled() {
				h.disabledByDefault[fcfg.Engine.Name] = true
			}
			h.Filters = append(h.Filters, fcfg)
		default:
			c.errorf("%s: %s is not supported; the gateway runs wasm filters and the router", fat, f.GetTypedConfig().GetTypeUrl())
		}
	}
	if len(hf) > 0 {
		if _, ok := mustUnpack(hf[len(hf)-1].GetTypedConfig()).(*routerv3.Router); !ok {
			c.errorf("%s.http_filters: the last filter must be envoy.filters.http.router", at)
		}
	}
	if m.GetRouteConfig() == nil {
		c.errorf("%s: route_config must be inline (rds and scoped routes need a control plane)", at)
		return h
	}
	h.Routes = compileRoutes(c, m.GetRouteConfig(), at+".route_config", names, h.disabledByDefault, clusters)
	return h
}

// compileCodecOptions reads the codec options the gateway emulates: what
// the downstream codecs do with header names containing underscores, and
// whether HTTP/1 passes request trailers on.
func compileCodecOptions(c *checker, m *hcmv3.HttpConnectionManager, at string, h *HCMConfig) {
	if o := m.GetCommonHttpProtocolOptions(); o != nil {
		const limits = "connection limits"
		// idle_timeout and max_connection_duration: compileTimeouts.
		c.check(o, at+".common_http_protocol_options", fields{use: "headers_with_underscores_action idle_timeout max_connection_duration", warn: map[string]string{
			"max_connection_duration_jitter": "jitter on max_connection_duration",
			"max_headers_count":              limits, "max_response_headers_kb": limits, "max_stream_duration": limits,
			"max_requests_per_connection": limits,
		}})
		h.Underscores = o.GetHeadersWithUnderscoresAction()
	}
	if o := m.GetHttpProtocolOptions(); o != nil {
		const codec = "HTTP/1 codec option"
		c.check(o, at+".http_protocol_options", fields{use: "enable_trailers", warn: map[string]string{
			"allow_absolute_url": codec, "accept_http_10": codec, "default_host_for_http_10": codec,
			"header_key_format": codec, "allow_chunked_length": codec, "override_stream_error_on_invalid_http_message": codec,
			"send_fully_qualified_url": codec, "use_balsa_parser": codec, "allow_custom_methods": codec,
			"ignore_http_11_upgrade": codec,
		}})
		h.HTTP1Trailers = o.GetEnableTrailers()
	}
}

func mustUnpack(a *anypb.Any) proto.Message {
	m, err := a.UnmarshalNew()
	if err != nil {
		return nil
	}
	return m
}

func compileWasm(c *checker, pc *wasmv3.PluginConfig, at, httpName string, o Options) (FilterConfig, bool) {
	c.check(pc, at, fields{
		use: "name root_id vm_config configuration fail_open failure_policy reload_config",
	})
	if pc.GetAllowOnHeadersStopIteration().GetValue() {
		c.errorf("%s.allow_on_headers_stop_iteration: true is not supported", at)
	}
	f := FilterConfig{HTTPName: httpName, PluginName: pc.GetName()}
	e := &f.Engine
	e.Name, e.PluginName = pc.GetName(), pc.GetName()
	if e.Name == "" {
		e.Name = httpName
	}
	e.RootID = pc.GetRootId()
	if pc.GetFailOpen() && pc.GetFailurePolicy() != wasmv3.FailurePolicy_UNSPECIFIED {
		// Envoy refuses the same: "only one of fail_open or failure_policy can be set".
		c.errorf("%s: only one of fail_open or failure_policy can be set", at)
	}
	if b := pc.GetReloadConfig().GetBackoff(); b != nil {
		// Envoy reads only base_interval here (a jittered lower bound, not an
		// exponential backoff): max_interval is accepted and unused, as there.
		c.check(b, at+".reload_config.backoff", fields{use: "base_interval max_interval"})
		e.ReloadBackoff = b.GetBaseInterval().AsDuration()
	}
	switch {
	case pc.GetFailurePolicy() == wasmv3.FailurePolicy_FAIL_OPEN:
		e.FailurePolicy = engine.FailOpen
	case pc.GetFailurePolicy() == wasmv3.FailurePolicy_FAIL_RELOAD:
		e.FailurePolicy = engine.FailReload
	case pc.GetFailurePolicy() == wasmv3.FailurePolicy_UNSPECIFIED && pc.GetFailOpen():
		e.FailurePolicy = engine.FailOpen
	default:
		e.FailurePolicy = engine.FailClosed
	}
	var err error
	if e.Configuration, err = configBytes(pc.GetConfiguration()); err != nil {
		c.errorf("%s.configuration: %v", at, err)
		return f, false
	}
	vm := pc.GetVmConfig()
	if vm == nil {
		c.errorf("%s: vm_config is required", at)
		return f, false
	}
	vat := at + ".vm_config"
	c.check(vm, vat, fields{use: "vm_id runtime code configuration allow_precompiled nack_on_code_cache_miss environment_variables"})
	e.VMID = vm.GetVmId()
	if e.VMConfiguration, err = configBytes(vm.GetConfiguration()); err != nil {
		c.errorf("%s.configuration: %v", vat, err)
		return f, false
	}
	if ev := vm.GetEnvironmentVariables(); ev != nil {
		c.check(ev, vat+".environment_variables", fields{use: "host_env_keys key_values"})
		for _, k := range ev.GetHostEnvKeys() {
			if v, ok := os.LookupEnv(k); ok {
				e.Env = append(e.Env, engine.EnvVar{Key: k, Value: v})
			}
		}
		keys := make([]string, 0, len(ev.GetKeyValues()))
		for k := range ev.GetKeyValues() {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			e.Env = append(e.Env, engine.EnvVar{Key: k, Value: ev.GetKeyValues()[k]})
		}
	}
	code := vm.GetCode()
	c.check(code, vat+".code", fields{use: "local"})
	local := code.GetLocal()
	if local == nil {
		c.errorf("%s.code: only local code (a .wasm file) is supported", vat)
		return f, false
	}
	c.check(local, vat+".code.local", fields{use: "filename inline_bytes"})
	switch {
	case local.GetFilename() != "":
		f.CodePath = local.GetFilename()
		path := f.CodePath
		switch {
		case o.WasmDir != "":
			path = filepath.Join(o.WasmDir, filepath.Base(path))
		case !filepath.IsAbs(path) && o.BaseDir != "":
			path = filepath.Join(o.BaseDir, path)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			hint := ""
			if errors.Is(err, os.ErrNotExist) {
				hint = missingModuleHint(f.CodePath, o.WasmDir)
			}
			c.errorf("%s.code.local.filename: %v%s", vat, err, hint)
			return f, false
		}
		e.Wasm, e.WasmName = b, path
	case len(local.GetInlineBytes()) > 0:
		e.Wasm, e.WasmName, f.CodePath = local.GetInlineBytes(), "inline_bytes", "inline_bytes"
	default:
		c.errorf("%s.code.local: filename or inline_bytes is required", vat)
		return f, false
	}
	return f, true
}

// configBytes is what a plugin reads as its configuration: a StringValue's
// or BytesValue's value.
func configBytes(a *anypb.Any) ([]byte, error) {
	if a == nil {
		return nil, nil
	}
	m, err := a.UnmarshalNew()
	if err != nil {
		return nil, err
	}
	switch v := m.(type) {
	case *wrapperspb.StringValue:
		return []byte(v.GetValue()), nil
	case *wrapperspb.BytesValue:
		return v.GetValue(), nil
	}
	return nil, fmt.Errorf("%s is not supported; use google.protobuf.StringValue", a.GetTypeUrl())
}

func compileRoutes(c *checker, rc *routev3.RouteConfiguration, at string, filters map[string][]string, disabledByDefault map[string]bool, clusters map[string]bool) *RouteTable {
	mutationFields := "request_headers_to_add request_headers_to_remove response_headers_to_add response_headers_to_remove"
	c.check(rc, at, fields{use: "name virtual_hosts validate_clusters " + mutationFields})
	t := &RouteTable{Name: rc.GetName(), mutations: compileMutations(c, at, rc.GetRequestHeadersToAdd(), rc.GetRequestHeadersToRemove(), rc.GetResponseHeadersToAdd(), rc.GetResponseHeadersToRemove())}
	for vi, v := range rc.GetVirtualHosts() {
		vat := fmt.Sprintf("%s.virtual_hosts[%d] (%s)", at, vi, v.GetName())
		c.check(v, vat, fields{use: "name domains routes typed_per_filter_config metadata " + mutationFields, warn: map[string]string{
			"retry_policy": "retries (a failed upstream request is not retried)", "hedge_policy": "hedging",
			"include_request_attempt_count": "x-envoy-attempt-count", "virtual_clusters": "virtual cluster stats",
		}})
		vh := &VirtualHost{Name: v.GetName(), Metadata: v.GetMetadata(), Domains: v.GetDomains(), mutations: compileMutations(c, vat, v.GetRequestHeadersToAdd(), v.GetRequestHeadersToRemove(), v.GetResponseHeadersToAdd(), v.GetResponseHeadersToRemove())}
		vhDisabled := perFilter(c, vat, v.GetTypedPerFilterConfig(), filters, disabledByDefault)
		for ri, r := range v.GetRoutes() {
			rat := fmt.Sprintf("%s.routes[%d] (%s)", vat, ri, r.GetName())
			if rt := compileRoute(c, r, rat, filters, vhDisabled, clusters); rt != nil {
				rt.vh = vh
				vh.Routes = append(vh.Routes, rt)
			}
		}
		t.VirtualHosts = append(t.VirtualHosts, vh)
	}
	return t
}

// perFilter reads typed_per_filter_config: FilterConfig{disabled} per
// filter, on top of base (the virtual host's, or the defaults).
func perFilter(c *checker, at string, m map[string]*anypb.Any, filters map[string][]string, base map[string]bool) map[string]bool {
	out := map[string]bool{}
	for k, v := range base {
		out[k] = v
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, name := range keys {
		pat := fmt.Sprintf("%s.typed_per_filter_config[%s]", at, name)
		inner, err := m[name].UnmarshalNew()
		if err != nil {
			c.errorf("%s: %v", pat, err)
			continue
		}
		fc, ok := inner.(*routev3.FilterConfig)
		if !ok {
			c.errorf("%s: %s is not supported; per-route settings of concierge filters go in their `rules`, switching one off is envoy.config.route.v3.FilterConfig{disabled: true}", pat, m[name].GetTypeUrl())
			continue
		}
		c.check(fc, pat, fields{use: "disabled is_optional"})
		engs, ok := filters[name]
		if !ok {
			c.warnf("%s: names no wasm filter of the chain; it changes nothing (as in Envoy)", pat)
			continue
		}
		for _, eng := range engs {
			out[eng] = fc.GetDisabled()
		}
	}
	for k, v := range out {
		if !v {
			delete(out, k)
		}
	}
	return out
}

func compileRoute(c *checker, r *routev3.Route, at string, filters map[string][]string, vhDisabled map[string]bool, clusters map[string]bool) *Route {
	c.check(r, at, fields{use: "name match route direct_response typed_per_filter_config metadata request_headers_to_add request_headers_to_remove response_headers_to_add response_headers_to_remove", warn: map[string]string{
		"decorator": "tracing", "tracing": "tracing", "stat_prefix": "route stats",
		// Envoy 1.33-1.35 use it for retry and shadow buffering only; the
		// filters' buffer limit is the listener's.
		"per_request_buffer_limit_bytes": "retry and shadow buffering",
	}})
	rt := &Route{Name: r.GetName(), Metadata: r.GetMetadata(), Timeout: 15 * time.Second,
		mutations: compileMutations(c, at, r.GetRequestHeadersToAdd(), r.GetRequestHeadersToRemove(), r.GetResponseHeadersToAdd(), r.GetResponseHeadersToRemove())}
	var ok bool
	if rt.match, ok = compileMatch(c, r.GetMatch(), at+".match"); !ok {
		return nil
	}
	rt.Disabled = perFilter(c, at, r.GetTypedPerFilterConfig(), filters, vhDisabled)
	switch {
	case r.GetRoute() != nil:
		a := r.GetRoute()
		aat := at + ".route"
		c.check(a, aat, fields{use: "cluster prefix_rewrite host_rewrite_literal auto_host_rewrite timeout idle_timeout", warn: map[string]string{
			"retry_policy": "retries (a failed upstream request is not retried)",
			"hedge_policy": "hedging", "max_stream_duration": "stream duration limits", "priority": "routing priority",
			"rate_limits": "Envoy's rate limit service (concierge's rate-limit filter does this)", "include_vh_rate_limits": "rate limits",
		}})
		rt.Cluster = a.GetCluster()
		switch {
		case a.GetClusterSpecifier() == nil:
			c.errorf("%s.cluster: required", aat)
		case rt.Cluster == "":
			// Another cluster specifier (weighted_clusters, cluster_header,
			// …), already refused by name above.
		case !clusters[rt.Cluster]:
			c.errorf("%s.cluster: unknown cluster %q", aat, rt.Cluster)
		}
		rt.PrefixRewrite = a.GetPrefixRewrite()
		if rt.PrefixRewrite != "" && rt.match.kind != matchPrefix && rt.match.kind != matchSeparated {
			c.errorf("%s.prefix_rewrite: needs a prefix match", aat)
		}
		rt.HostRewrite = a.GetHostRewriteLiteral()
		rt.AutoHostRewrite = a.GetAutoHostRewrite().GetValue()
		if a.GetTimeout() != nil {
			rt.Timeout = a.GetTimeout().AsDuration()
		}
		if a.GetIdleTimeout() != nil {
			d := a.GetIdleTimeout().AsDuration()
			rt.IdleTimeout = &d
		}
	case r.GetDirectResponse() != nil:
		d := r.GetDirectResponse()
		c.check(d, at+".direct_response", fields{use: "status body"})
		rt.Direct = &DirectResponse{Status: int(d.GetStatus())}
		if b := d.GetBody(); b != nil {
			c.check(b, at+".direct_response.body", fields{use: "inline_string inline_bytes"})
			rt.Direct.Body = append([]byte(b.GetInlineString()), b.GetInlineBytes()...)
		}
	}
	return rt
}

func compileMutations(c *checker, at string, reqAdd []*corev3.HeaderValueOption, reqRemove []string, respAdd []*corev3.HeaderValueOption, respRemove []string) headerMutations {
	m := headerMutations{reqRemove: lower(reqRemove), respRemove: lower(respRemove)}
	m.reqAdd = headerOptions(c, at+".request_headers_to_add", reqAdd)
	m.respAdd = headerOptions(c, at+".response_headers_to_add", respAdd)
	return m
}

func lower(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = strings.ToLower(v)
	}
	return out
}

func headerOptions(c *checker, at string, opts []*corev3.HeaderValueOption) []headerOption {
	var out []headerOption
	for i, o := range opts {
		oat := fmt.Sprintf("%s[%d]", at, i)
		c.check(o, oat, fields{use: "header append append_action keep_empty_value"})
		c.check(o.GetHeader(), oat+".header", fields{use: "key value raw_value"})
		v := o.GetHeader().GetValue()
		if len(o.GetHeader().GetRawValue()) > 0 {
			v = string(o.GetHeader().GetRawValue())
		}
		if strings.Contains(v, "%") {
			c.errorf("%s.header.value: %q: header value formatters (%%...%%) are not supported", oat, v)
			continue
		}
		h := headerOption{key: strings.ToLower(o.GetHeader().GetKey()), value: v, action: o.GetAppendAction(), keepEmpty: o.GetKeepEmptyValue()}
		if o.GetAppend() != nil {
			if o.GetAppend().GetValue() {
				h.action = corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD
			} else {
				h.action = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
			}
		}
		out = append(out, h)
	}
	return out
}

// Route matching.

type matchKind int

const (
	matchPrefix matchKind = iota
	matchPath
	matchRegex
	matchSeparated
)

type routeMatch struct {
	kind          matchKind
	value         string
	re            *regexp.Regexp
	caseSensitive bool
	headers       []headerMatch
}

type headerMatch struct {
	name           string
	kind           string // exact prefix suffix contains regex present range
	value          string
	re             *regexp.Regexp
	ignoreCase     bool
	present        bool
	start, end     int64
	invert         bool
	missingAsEmpty bool
}

func compileMatch(c *checker, m *routev3.RouteMatch, at string) (routeMatch, bool) {
	c.check(m, at, fields{use: "prefix path safe_regex path_separated_prefix case_sensitive headers"})
	rm := routeMatch{caseSensitive: m.GetCaseSensitive() == nil || m.GetCaseSensitive().GetValue()}
	switch {
	case m.GetSafeRegex() != nil:
		rm.kind = matchRegex
		re, ok := compileRegex(c, m.GetSafeRegex(), at+".safe_regex")
		if !ok {
			return rm, false
		}
		rm.re = re
	case m.GetPath() != "":
		rm.kind, rm.value = matchPath, m.GetPath()
	case m.GetPathSeparatedPrefix() != "":
		rm.kind, rm.value = matchSeparated, m.GetPathSeparatedPrefix()
	default:
		if _, isPrefix := m.GetPathSpecifier().(*routev3.RouteMatch_Prefix); !isPrefix {
			c.errorf("%s: a path specifier (prefix, path, path_separated_prefix or safe_regex) is required", at)
			return rm, false
		}
		rm.kind, rm.value = matchPrefix, m.GetPrefix()
	}
	for i, h := range m.GetHeaders() {
		hat := fmt.Sprintf("%s.headers[%d] (%s)", at, i, h.GetName())
		c.check(h, hat, fields{use: "name exact_match safe_regex_match range_match present_match prefix_match suffix_match contains_match string_match invert_match treat_missing_header_as_empty"})
		hm := headerMatch{name: strings.ToLower(h.GetName()), invert: h.GetInvertMatch(), missingAsEmpty: h.GetTreatMissingHeaderAsEmpty()}
		switch s := h.GetHeaderMatchSpecifier().(type) {
		case nil:
			hm.kind = "present"
			hm.present = true
		case *routev3.HeaderMatcher_ExactMatch:
			hm.kind, hm.value = "exact", s.ExactMatch
		case *routev3.HeaderMatcher_PrefixMatch:
			hm.kind, hm.value = "prefix", s.PrefixMatch
		case *routev3.HeaderMatcher_SuffixMatch:
			hm.kind, hm.value = "suffix", s.SuffixMatch
		case *routev3.HeaderMatcher_ContainsMatch:
			hm.kind, hm.value = "contains", s.ContainsMatch
		case *routev3.HeaderMatcher_PresentMatch:
			hm.kind, hm.present = "present", s.PresentMatch
		case *routev3.HeaderMatcher_SafeRegexMatch:
			re, ok := compileRegex(c, s.SafeRegexMatch, hat+".safe_regex_match")
			if !ok {
				continue
			}
			hm.kind, hm.re = "regex", re
		case *routev3.HeaderMatcher_RangeMatch:
			hm.kind, hm.start, hm.end = "range", s.RangeMatch.GetStart(), s.RangeMatch.GetEnd()
		case *routev3.HeaderMatcher_StringMatch:
			sm := s.StringMatch
			c.check(sm, hat+".string_match", fields{use: "exact prefix suffix contains safe_regex ignore_case"})
			hm.ignoreCase = sm.GetIgnoreCase()
			switch p := sm.GetMatchPattern().(type) {
			case *matcherv3.StringMatcher_Exact:
				hm.kind, hm.value = "exact", p.Exact
			case *matcherv3.StringMatcher_Prefix:
				hm.kind, hm.value = "prefix", p.Prefix
			case *matcherv3.StringMatcher_Suffix:
				hm.kind, hm.value = "suffix", p.Suffix
			case *matcherv3.StringMatcher_Contains:
				hm.kind, hm.value = "contains", p.Contains
			case *matcherv3.StringMatcher_SafeRegex:
				re, ok := compileRegex(c, p.SafeRegex, hat+".string_match.safe_regex")
				if !ok {
					continue
				}
				hm.kind, hm.re = "regex", re
			}
		}
		rm.headers = append(rm.headers, hm)
	}
	return rm, true
}

// compileRegex compiles an RE2 regex that must match the whole input, as
// Envoy's safe_regex does.
func compileRegex(c *checker, r *matcherv3.RegexMatcher, at string) (*regexp.Regexp, bool) {
	c.check(r, at, fields{use: "google_re2 regex"})
	re, err := regexp.Compile(`^(?:` + r.GetRegex() + `)$`)
	if err != nil {
		c.errorf("%s.regex: %v", at, err)
		return nil, false
	}
	return re, true
}

// Clusters.

func compileCluster(c *checker, cl *clusterv3.Cluster, at string) *ClusterConfig {
	c.check(cl, at, fields{
		use: "name type connect_timeout lb_policy load_assignment health_checks common_lb_config dns_refresh_rate dns_lookup_family transport_socket typed_extension_protocol_options metadata ignore_health_on_host_removal alt_stat_name",
		warn: map[string]string{
			"outlier_detection":                        "outlier detection: endpoints are not ejected for errors; active health checks still take them out",
			"circuit_breakers":                         "Envoy's circuit breaker thresholds (concierge's circuit-breaker filter is separate)",
			"max_requests_per_connection":              "connection reuse limits",
			"per_connection_buffer_limit_bytes":        "buffer limits",
			"upstream_connection_options":              "TCP keepalive",
			"close_connections_on_host_health_failure": "connection draining",
			"respect_dns_ttl":                          "DNS TTLs (dns_refresh_rate applies)",
			"dns_failure_refresh_rate":                 "DNS failure backoff",
			"cleanup_interval":                         "host cleanup",
			"http2_protocol_options":                   "upstream HTTP/2: the gateway speaks HTTP/1.1 upstream",
			"common_http_protocol_options":             "upstream connection timeouts and limits",
			"http_protocol_options":                    "upstream HTTP/1 codec options",
			"upstream_http_protocol_options":           "upstream SNI/SAN options",
			"wait_for_warm_on_init":                    "cluster warming",
			"track_cluster_stats":                      "extra cluster stats",
			"preconnect_policy":                        "preconnecting",
		},
	})
	cc := &ClusterConfig{Name: cl.GetName(), Metadata: cl.GetMetadata(), Type: cl.GetType(), LB: cl.GetLbPolicy(),
		ConnectTimeout: dur(cl.GetConnectTimeout(), 5*time.Second), PanicThreshold: 50,
		DNSRefresh: dur(cl.GetDnsRefreshRate(), 5*time.Second), DNSFamily: cl.GetDnsLookupFamily()}
	switch cc.Type {
	case clusterv3.Cluster_STATIC, clusterv3.Cluster_STRICT_DNS, clusterv3.Cluster_LOGICAL_DNS:
	default:
		c.errorf("%s.type: %v is not supported (STATIC, STRICT_DNS or LOGICAL_DNS)", at, cc.Type)
		return nil
	}
	switch cc.LB {
	case clusterv3.Cluster_ROUND_ROBIN, clusterv3.Cluster_RANDOM, clusterv3.Cluster_LEAST_REQUEST:
	default:
		c.errorf("%s.lb_policy: %v is not supported (ROUND_ROBIN, RANDOM or LEAST_REQUEST)", at, cc.LB)
	}
	if lb := cl.GetCommonLbConfig(); lb != nil {
		c.check(lb, at+".common_lb_config", fields{use: "healthy_panic_threshold", warn: map[string]string{"update_merge_window": "update merging"}})
		if p := lb.GetHealthyPanicThreshold(); p != nil {
			cc.PanicThreshold = p.GetValue()
		}
	}
	la := cl.GetLoadAssignment()
	if la == nil {
		c.errorf("%s.load_assignment: required (EDS needs a control plane)", at)
		return nil
	}
	c.check(la, at+".load_assignment", fields{use: "cluster_name endpoints"})
	for li, loc := range la.GetEndpoints() {
		lat := fmt.Sprintf("%s.load_assignment.endpoints[%d]", at, li)
		c.check(loc, lat, fields{use: "lb_endpoints locality metadata"})
		for ei, le := range loc.GetLbEndpoints() {
			eat := fmt.Sprintf("%s.lb_endpoints[%d]", lat, ei)
			if ep := compileEndpoint(c, le, eat); ep != nil {
				ep.Locality, ep.LocalityMetadata = loc.GetLocality(), loc.GetMetadata()
				cc.Endpoints = append(cc.Endpoints, *ep)
			}
		}
	}
	if len(cc.Endpoints) == 0 {
		c.errorf("%s.load_assignment: no endpoints", at)
	}
	for _, ep := range cc.Endpoints {
		if cc.Type == clusterv3.Cluster_STATIC && net.ParseIP(ep.Host) == nil {
			c.errorf("%s: STATIC endpoint %q is not an IP address (use STRICT_DNS or LOGICAL_DNS for names)", at, ep.Host)
		}
	}
	if cc.Type == clusterv3.Cluster_LOGICAL_DNS && len(cc.Endpoints) > 1 {
		c.errorf("%s: LOGICAL_DNS clusters must have a single endpoint, got %d", at, len(cc.Endpoints))
	}
	if len(cl.GetHealthChecks()) > 1 {
		c.errorf("%s.health_checks: at most one health check is supported", at)
	}
	for i, hc := range cl.GetHealthChecks() {
		cc.HealthCheck = compileHealthCheck(c, hc, fmt.Sprintf("%s.health_checks[%d]", at, i), cc.Name)
	}
	if ts := cl.GetTransportSocket(); ts != nil {
		cc.TLS = compileTLS(c, ts, at+".transport_socket")
	}
	for k, v := range cl.GetTypedExtensionProtocolOptions() {
		pat := fmt.Sprintf("%s.typed_extension_protocol_options[%s]", at, k)
		m, err := v.UnmarshalNew()
		if err != nil {
			c.errorf("%s: %v", pat, err)
			continue
		}
		if _, ok := m.(*upstreamhttpv3.HttpProtocolOptions); !ok {
			c.errorf("%s: %s is not supported", pat, v.GetTypeUrl())
			continue
		}
		c.warnf("%s: accepted, not emulated (upstream protocol options: the gateway speaks HTTP/1.1 upstream; only whether trailers pass is)", pat)
	}
	cc.Trailers = upstreamTrailers(cl)
	return cc
}

func compileEndpoint(c *checker, le *endpointv3.LbEndpoint, at string) *EndpointAddr {
	c.check(le, at, fields{use: "endpoint metadata health_status"})
	if w := le.GetLoadBalancingWeight(); w != nil && w.GetValue() != 1 {
		c.errorf("%s.load_balancing_weight: weights are not supported", at)
	}
	ep := le.GetEndpoint()
	if ep == nil {
		c.errorf("%s.endpoint: required", at)
		return nil
	}
	c.check(ep, at+".endpoint", fields{use: "address health_check_config hostname"})
	sa := ep.GetAddress().GetSocketAddress()
	if sa == nil {
		c.errorf("%s.endpoint.address: socket_address is required", at)
		return nil
	}
	socketAddress(c, ep.GetAddress(), at+".endpoint.address")
	out := &EndpointAddr{Host: sa.GetAddress(), Port: sa.GetPortValue(), Metadata: le.GetMetadata()}
	if hc := ep.GetHealthCheckConfig(); hc != nil {
		c.check(hc, at+".endpoint.health_check_config", fields{use: "port_value"})
		out.HCPort = hc.GetPortValue()
	}
	return out
}

func compileHealthCheck(c *checker, hc *corev3.HealthCheck, at, cluster string) *HealthCheckConfig {
	c.check(hc, at, fields{
		use: "timeout interval unhealthy_threshold healthy_threshold http_health_check no_traffic_interval reuse_connection",
		warn: map[string]string{
			"interval_jitter": "health check jitter", "interval_jitter_percent": "health check jitter", "initial_jitter": "health check jitter",
			"unhealthy_interval": "separate unhealthy interval", "unhealthy_edge_interval": "edge intervals", "healthy_edge_interval": "edge intervals",
			"event_log_path": "health check event log", "always_log_health_check_failures": "health check logging",
		},
	})
	h := hc.GetHttpHealthCheck()
	if h == nil {
		c.errorf("%s: only http_health_check is supported", at)
		return nil
	}
	c.check(h, at+".http_health_check", fields{use: "host path expected_statuses request_headers_to_add request_headers_to_remove method codec_client_type"})
	out := &HealthCheckConfig{Path: h.GetPath(), Host: h.GetHost(), Method: "GET",
		Interval: dur(hc.GetInterval(), 5*time.Second), Timeout: dur(hc.GetTimeout(), time.Second),
		Unhealthy: hc.GetUnhealthyThreshold().GetValue(), Healthy: hc.GetHealthyThreshold().GetValue()}
	if out.Host == "" {
		out.Host = cluster // Envoy: the cluster name
	}
	if m := h.GetMethod(); m != corev3.RequestMethod_METHOD_UNSPECIFIED {
		out.Method = m.String()
	}
	if out.Unhealthy == 0 {
		out.Unhealthy = 1
	}
	if out.Healthy == 0 {
		out.Healthy = 1
	}
	for _, r := range h.GetExpectedStatuses() {
		out.Expected = append(out.Expected, [2]int64{r.GetStart(), r.GetEnd()})
	}
	if len(out.Expected) == 0 {
		out.Expected = [][2]int64{{200, 201}}
	}
	out.mutations = compileMutations(c, at+".http_health_check", h.GetRequestHeadersToAdd(), h.GetRequestHeadersToRemove(), nil, nil)
	return out
}

func compileTLS(c *checker, ts *corev3.TransportSocket, at string) *tls.Config {
	c.check(ts, at, fields{use: "name typed_config"})
	m, err := ts.GetTypedConfig().UnmarshalNew()
	if err != nil {
		c.errorf("%s.typed_config: %v", at, err)
		return nil
	}
	u, ok := m.(*tlsv3.UpstreamTlsContext)
	if !ok {
		c.errorf("%s.typed_config: %s is not supported (only UpstreamTlsContext)", at, ts.GetTypedConfig().GetTypeUrl())
		return nil
	}
	tat := at + ".typed_config"
	c.check(u, tat, fields{use: "common_tls_context sni"})
	cfg := &tls.Config{ServerName: u.GetSni(), MinVersion: tls.VersionTLS12}
	if ctx := u.GetCommonTlsContext(); ctx != nil {
		c.check(ctx, tat+".common_tls_context", fields{use: "validation_context alpn_protocols"})
		if vc := ctx.GetValidationContext(); vc != nil {
			c.check(vc, tat+".common_tls_context.validation_context", fields{use: "trusted_ca"})
			if ca := vc.GetTrustedCa(); ca != nil {
				c.check(ca, tat+".common_tls_context.validation_context.trusted_ca", fields{use: "filename inline_string inline_bytes"})
				pem := append([]byte(ca.GetInlineString()), ca.GetInlineBytes()...)
				if ca.GetFilename() != "" {
					if pem, err = os.ReadFile(ca.GetFilename()); err != nil {
						c.errorf("%s.common_tls_context.validation_context.trusted_ca.filename: %v", tat, err)
					}
				}
				pool := x509.NewCertPool()
				if !pool.AppendCertsFromPEM(pem) {
					c.errorf("%s.common_tls_context.validation_context.trusted_ca: no PEM certificate", tat)
				}
				cfg.RootCAs = pool
			}
		}
	}
	return cfg
}

// missingModuleHint says how to get a module that is not where the
// bootstrap says. A production bootstrap names an absolute path
// (/etc/envoy/wasm/jwt-auth.wasm) that a checkout does not have; --wasm-dir
// is the answer there, not a build.
func missingModuleHint(codePath, wasmDir string) string {
	switch {
	case wasmDir != "":
		return fmt.Sprintf(" (--wasm-dir %s: build the modules there with `make build`, or name the folder that holds %s)", wasmDir, filepath.Base(codePath))
	case filepath.IsAbs(codePath):
		return fmt.Sprintf(" (a production path: to check this bootstrap against a checkout, pass --wasm-dir build to read build/%s after `make build`)", filepath.Base(codePath))
	default:
		return " (build the modules with `make build` and start the gateway from the repository root, or pass --wasm-dir with the folder that holds them)"
	}
}
