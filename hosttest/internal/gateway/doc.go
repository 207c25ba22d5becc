// Package gateway serves an Envoy bootstrap YAML with hosttest's
// proxy-wasm engine: real HTTP listeners, the HTTP connection manager's
// wasm filters, routes and clusters, so that envoy/*.yaml runs here as it
// does in Envoy (which cannot be installed on every machine).
//
// What it reads is Envoy's own v3 protos (go-control-plane): the YAML is
// parsed and validated as Envoy would (enums in any case, TypedStruct
// typed_configs unwrapped, two http filters may share a name; a mistake is
// reported with its YAML line and field path), then every field that is set is
// either emulated, accepted with one warning naming what is not emulated
// (a field that only tunes Envoy's machinery: outlier detection, circuit
// breaker thresholds, stats sinks, access logs), or
// refused at start-up with an error naming the field (anything that would
// change routing or what the filters see). Nothing is ignored silently.
//
// Emulated: listeners (HTTP/1.1 and h2c; per_connection_buffer_limit_bytes
// as the filters' buffer limit and the flow-control watermark, so a slow
// client or upstream holds the other side back instead of filling the
// gateway's memory), the HTTP connection manager
// (wasm filters with fail_open / failure_policy, FAIL_RELOAD paced by
// reload_config.backoff.base_interval as Envoy paces it, the router, inline
// route_config, use_remote_address and x-forwarded-*/x-envoy-* headers,
// internal_address_config (no peer is internal without it, as since Envoy
// 1.33), normalize_path, merge_slashes, path_with_escaped_slashes_action,
// strip_any_host_port, strip_matching_host_port, strip_trailing_host_dot,
// generate_request_id and preserve_external_request_id, server_name; a '#'
// in the request target is refused with 400, as Envoy does since 1.19.1;
// the codecs' headers_with_underscores_action on header and trailer names
// and HTTP/1 enable_trailers, see codec.go; and the connection manager's
// timers: common_http_protocol_options.idle_timeout (1h default) and
// max_connection_duration, request_headers_timeout, request_timeout and
// stream_idle_timeout (5m default; a route's idle_timeout overrides it)
// with Envoy's answers — 408 while the request is incomplete, 504 once it
// is, bodies "request header timeout", "request timeout", "stream timeout",
// details request_header_timeout, request_overall_timeout,
// stream_idle_timeout, and a reset for a stream idle after its response
// started; counters downstream_cx_idle_timeout,
// downstream_cx_max_duration_reached, downstream_rq_idle_timeout,
// downstream_rq_timeout, downstream_rq_header_timeout),
// routes (prefix, path, path_separated_prefix, safe_regex and header
// matchers; prefix_rewrite, host_rewrite_literal, auto_host_rewrite,
// timeout, direct_response, typed_per_filter_config disabling, header
// additions and removals), clusters (STATIC, STRICT_DNS, LOGICAL_DNS;
// ROUND_ROBIN, RANDOM, LEAST_REQUEST; active HTTP health checks with
// Envoy's panic threshold; connect_timeout; upstream TLS with sni and a
// trusted CA) and the admin endpoints /ready, /stats (Envoy's text and
// JSON, with filter=), /stats/prometheus (with stats_config.stats_tags
// turning parts of the filters' metric names into labels), /clusters, /listeners,
// /server_info, /config_dump (the bootstrap) and POST /quitquitquit; like
// Envoy's, the admin answers once the request body is in.
// The command line takes Envoy's: -c/--config-path, --concurrency,
// -l/--log-level, --component-log-level, --mode validate, --drain-time-s,
// --service-node/--service-cluster/--service-zone, --log-path; the
// hot-restart and log-format flags (--base-id, --use-dynamic-base-id,
// --disable-hot-restart, --restart-epoch, --parent-shutdown-time-s,
// --log-format, --log-format-escaped) are accepted and have no effect. The router's own answers (no route, direct_response, no
// healthy upstream, connect failures, resets) run through the encoder
// filters with Envoy's bodies, response code details and response flags,
// and the filters see upstream.address and
// upstream.transport_failure_reason.
//
// The overload manager: the envoy.resource_monitors.fixed_heap monitor,
// sampled every refresh_interval, reads the memory the Go runtime has in
// use (every VM's linear memory included) against max_heap_size_bytes, and
// envoy.overload_actions.stop_accepting_requests (threshold or scaled
// trigger) answers new requests as Envoy does — 503 "envoy overloaded",
// details overload, flag OM, before any filter — counted in
// downstream_rq_overload_close, with the monitor's pressure and the
// action's scale on /stats/prometheus. Other monitors and actions are
// accepted with a warning.
//
// The filters read the configuration as Envoy's xds.* attributes: the
// bootstrap's node (xds.node), the listener's metadata, traffic_direction
// and filter chain name, the matched virtual host's and route's name and
// metadata, the route's cluster and its metadata, and, once the router
// picked one, the endpoint's metadata, locality and locality metadata
// (props.go; the whole vocabulary is a table in RATIONALE.md).
//
// Network filters (tcp.go, tcpconfig.go): a listener whose one filter
// chain is envoy.filters.network.wasm filters followed by tcp_proxy
// (stat_prefix, cluster) proxies real TCP: each connection gets a context
// in every filter (on_new_connection, on_downstream_data and
// on_upstream_data with Envoy's pause semantics, on_*_connection_close,
// then on_done, on_log, on_delete), the upstream host is picked and dialed
// as the router does (a failure closes the downstream connection), half
// closes are forwarded, proxy_close_stream closes the connection after
// flushing, and per_connection_buffer_limit_bytes bounds what waits for a
// slow peer (the other side is not read meanwhile). A trap closes the
// connection unless the filter fails open; failure_policy then applies to
// later connections as to streams, FAIL_RELOAD reloading the VM for a new
// connection once its backoff has passed. tcp_proxy's weighted_clusters
// and any other network filter are refused with the field; idle_timeout, access_log, max_connect_attempts
// and max_downstream_connection_duration are accepted, not emulated. TCP
// listeners are listed by /listeners; /stats has their
// tcp.<stat_prefix>.downstream_cx_total and the filters' metrics.
//
// WasmService (service.go): bootstrap_extensions envoy.bootstrap.wasm
// start after the listeners' filters (Envoy creates them in
// onServerInitialized), on the main thread only with
// singleton: true, else on every worker and the main thread; they run
// root contexts only (ticks, queues, callouts). Shared data and queues are
// process-wide, as in Envoy: every listener and service uses one store,
// so a filter's enqueue reaches a singleton registered on the same vm_id.
// Any other bootstrap extension is refused with the field.
//
// VMs (engine.go): one engine runs every wasm filter of the gateway, as
// Envoy's worker threads serve every listener: each HTTP and TCP
// listener's wasm filters are a chain in it, each WasmService a root
// context in no chain. Filters whose vm_config matches (vm_id, code,
// configuration, environment_variables) share one VM per worker and one
// on the main thread, whichever listener or service they belong to, as
// Envoy keys the VM per thread across the server: each is a root context
// of it (ids 1, 2, … in order: the listeners in static_resources order,
// each chain in order, then the services) with its own configuration, ticks and
// failure policy, and Go globals are shared. A singleton service is on
// the main thread only, so it shares the main thread's VM only. The
// start-up log names each sharing ("listener second: filter 1 b: shares
// the VM of listener ingress filter 1 a (vm_id "x"), as root context 2");
// the wasm log prefix stays per plugin.
package gateway
