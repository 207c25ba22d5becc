package gateway

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strings"

	"github.com/concierge-wasm/concierge/hosttest/internal/engine"
)

// adminMux serves the admin endpoints the gateway emulates.
func (g *Gateway) adminMux() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/ready", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("content-type", "text/plain; charset=UTF-8")
		if !g.ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "DRAINING\n")
			return
		}
		io.WriteString(w, "LIVE\n")
	})
	mux.HandleFunc("/stats/prometheus", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("content-type", "text/plain; version=0.0.4; charset=utf-8")
		io.WriteString(w, g.Prometheus())
	})
	mux.HandleFunc("/clusters", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("content-type", "text/plain; charset=UTF-8")
		for _, n := range g.order {
			c := g.clusters[n]
			for _, h := range c.snapshot() {
				flags := "healthy"
				if !h.healthy.Load() {
					flags = "/failed_active_hc"
				}
				fmt.Fprintf(w, "%s::%s::health_flags::%s\n", n, h.addr, flags)
				fmt.Fprintf(w, "%s::%s::rq_total::%d\n", n, h.addr, h.rq.Load())
				fmt.Fprintf(w, "%s::%s::rq_active::%d\n", n, h.addr, h.active.Load())
			}
		}
	})
	g.envoyAdminHandlers(mux)
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "concierge-gateway admin\n  /ready\n  /stats\n  /stats/prometheus\n  /clusters\n  /listeners\n  /server_info\n  /config_dump\n  /quitquitquit (POST)\n")
	})
	return wholeRequest(mux)
}

// adminRequestLimit bounds the request body the admin reads before it
// answers (Envoy's admin buffers up to the listener's default limit).
const adminRequestLimit = 1 << 20

// wholeRequest answers only once the request body is in, as Envoy's admin
// does (its filter buffers the request until end of stream): a
// configuration that routes traffic to the admin, as the Go SDK's
// http_body_chunk example does, has its filters see the whole body
// stream before the answer.
func wholeRequest(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			body, err := io.ReadAll(io.LimitReader(r.Body, adminRequestLimit+1))
			if err != nil {
				return // the client went away
			}
			if len(body) > adminRequestLimit {
				http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		h.ServeHTTP(w, r)
	})
}

// mergedMetrics are the filter metrics summed over every worker VM and
// listener, by name, sorted by name.
func (g *Gateway) mergedMetrics() []*engine.MetricValue {
	merged := map[string]*engine.MetricValue{}
	for _, h := range g.engineHosts() {
		for _, m := range h.Metrics() {
			x, ok := merged[m.Name]
			if !ok {
				m := m
				merged[m.Name] = &m
				continue
			}
			x.Value += m.Value
			x.Count += m.Count
			x.Sum += m.Sum
			x.Samples = append(x.Samples, m.Samples...)
		}
	}
	out := make([]*engine.MetricValue, 0, len(merged))
	for _, m := range merged {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Envoy's default histogram buckets (ms).
var buckets = []float64{0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000}

// Prometheus renders the filter metrics (summed over every worker VM and
// listener, under the names the filters defined, as Envoy's wasmcustom
// namespace does) and the gateway's own Envoy-named stats, in the
// Prometheus text format.
func (g *Gateway) Prometheus() string {
	var b strings.Builder
	// stats_tags turn parts of a name into labels, so several metrics may
	// share one Prometheus name: one # TYPE line for each name.
	type series struct {
		m      *engine.MetricValue
		labels []label
	}
	byName := map[string][]series{}
	var names []string
	for _, m := range g.mergedMetrics() {
		base, labels := extractTags(m.Name, g.cfg.StatTags)
		name := promName(base)
		if _, ok := byName[name]; !ok {
			names = append(names, name)
		}
		byName[name] = append(byName[name], series{m, labels})
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(&b, "# TYPE %s %s\n", name, byName[name][0].m.Type)
		for _, s := range byName[name] {
			m := s.m
			switch m.Type {
			case "histogram":
				for _, le := range buckets {
					var c uint64
					for _, v := range m.Samples {
						if float64(v) <= le {
							c++
						}
					}
					fmt.Fprintf(&b, "%s_bucket%s %d\n", name, renderLabels(append(s.labels[:len(s.labels):len(s.labels)], label{"le", promFloat(le)})), c)
				}
				ls := renderLabels(s.labels)
				fmt.Fprintf(&b, "%s_bucket%s %d\n%s_sum%s %d\n%s_count%s %d\n", name, renderLabels(append(s.labels[:len(s.labels):len(s.labels)], label{"le", "+Inf"})), m.Count, name, ls, m.Sum, name, ls, m.Count)
			default:
				fmt.Fprintf(&b, "%s%s %d\n", name, renderLabels(s.labels), m.Value)
			}
		}
	}
	// The gateway's own stats, named as Envoy's Prometheus output names them.
	b.WriteString("# TYPE envoy_http_downstream_rq_total counter\n")
	for _, l := range g.listeners {
		fmt.Fprintf(&b, "envoy_http_downstream_rq_total{envoy_http_conn_manager_prefix=%q} %d\n", l.hcm.StatPrefix, l.rqTotal.Load())
	}
	b.WriteString("# TYPE envoy_http_downstream_rq_xx counter\n")
	for _, l := range g.listeners {
		for c := 1; c <= 5; c++ {
			fmt.Fprintf(&b, "envoy_http_downstream_rq_xx{envoy_response_code_class=\"%d\",envoy_http_conn_manager_prefix=%q} %d\n", c, l.hcm.StatPrefix, l.rqXX[c].Load())
		}
	}
	for i, st := range (&listener{}).timeoutStats() {
		fmt.Fprintf(&b, "# TYPE envoy_http_%s counter\n", st.name)
		for _, l := range g.listeners {
			if l.hcm != nil {
				fmt.Fprintf(&b, "envoy_http_%s{envoy_http_conn_manager_prefix=%q} %d\n", st.name, l.hcm.StatPrefix, l.timeoutStats()[i].v)
			}
		}
	}
	if o := g.overload; o != nil {
		// Envoy's overload.<monitor>.pressure and <action>.scale_percent, in percent.
		fmt.Fprintf(&b, "# TYPE envoy_overload_envoy_resource_monitors_fixed_heap_pressure gauge\nenvoy_overload_envoy_resource_monitors_fixed_heap_pressure %d\n",
			int(100*math.Float64frombits(o.pressure.Load())))
		fmt.Fprintf(&b, "# TYPE envoy_overload_envoy_overload_actions_stop_accepting_requests_scale_percent gauge\nenvoy_overload_envoy_overload_actions_stop_accepting_requests_scale_percent %d\n",
			int(100*math.Float64frombits(o.level.Load())))
	}
	b.WriteString("# TYPE envoy_http_downstream_rq_active gauge\n")
	for _, l := range g.listeners {
		fmt.Fprintf(&b, "envoy_http_downstream_rq_active{envoy_http_conn_manager_prefix=%q} %d\n", l.hcm.StatPrefix, l.active.Load())
	}
	// Downstream codec stats (Envoy's http1.* and http2.*).
	for i, codec := range [2]string{"http1", "http2"} {
		fmt.Fprintf(&b, "# TYPE envoy_%s_dropped_headers_with_underscores counter\nenvoy_%s_dropped_headers_with_underscores %d\n",
			codec, codec, g.codec.droppedUnderscore[i].Load())
		fmt.Fprintf(&b, "# TYPE envoy_%s_requests_rejected_with_underscores_in_headers counter\nenvoy_%s_requests_rejected_with_underscores_in_headers %d\n",
			codec, codec, g.codec.rejectedUnderscore[i].Load())
	}
	type stat struct {
		name, typ string
		get       func(c *cluster) uint64
	}
	for _, s := range []stat{
		{"envoy_cluster_upstream_rq_total", "counter", func(c *cluster) uint64 { return c.rqTotal[0].Load() }},
		{"envoy_cluster_upstream_cx_connect_fail", "counter", func(c *cluster) uint64 { return c.cxFail.Load() }},
		{"envoy_cluster_upstream_cx_none_healthy", "counter", func(c *cluster) uint64 { return c.noHealthy.Load() }},
		{"envoy_cluster_membership_healthy", "gauge", func(c *cluster) uint64 { h, _ := c.healthyCount(); return uint64(h) }},
		{"envoy_cluster_membership_total", "gauge", func(c *cluster) uint64 { _, t := c.healthyCount(); return uint64(t) }},
	} {
		fmt.Fprintf(&b, "# TYPE %s %s\n", s.name, s.typ)
		for _, n := range g.order {
			fmt.Fprintf(&b, "%s{envoy_cluster_name=%q} %d\n", s.name, n, s.get(g.clusters[n]))
		}
	}
	b.WriteString("# TYPE envoy_cluster_upstream_rq_xx counter\n")
	for _, n := range g.order {
		for c := 1; c <= 5; c++ {
			fmt.Fprintf(&b, "envoy_cluster_upstream_rq_xx{envoy_response_code_class=\"%d\",envoy_cluster_name=%q} %d\n", c, n, g.clusters[n].rqXX[c].Load())
		}
	}
	return b.String()
}

// promName makes a metric name valid for Prometheus ([a-zA-Z_:][a-zA-Z0-9_:]*).
func promName(n string) string {
	b := []byte(n)
	for i, c := range b {
		ok := c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || (i > 0 && c >= '0' && c <= '9')
		if !ok {
			b[i] = '_'
		}
	}
	return string(b)
}

func promFloat(f float64) string {
	if f == math.Trunc(f) {
		return fmt.Sprintf("%.0f", f)
	}
	return fmt.Sprintf("%g", f)
}
