package gateway

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"time"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// serverVersion is what /server_info reports: the Envoy whose behaviour
// the gateway reproduces, marked as this gateway.
const serverVersion = "concierge-gateway/1.33.0/emulated/RELEASE/BoringSSL"

// The admin endpoints tools and test suites poll besides /ready and
// /stats/prometheus: /listeners (readiness with the bound ports),
// /server_info, /stats (Envoy's text and JSON forms), /config_dump (the
// bootstrap) and POST /quitquitquit.
func (g *Gateway) envoyAdminHandlers(mux *http.ServeMux) {
	mux.HandleFunc("/listeners", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("format") == "json" {
			out := &adminv3.Listeners{}
			for _, l := range g.listeners {
				out.ListenerStatuses = append(out.ListenerStatuses, &adminv3.ListenerStatus{Name: l.cfg.Name, LocalAddress: addressProto(l.boundAddr())})
			}
			for _, t := range g.tcp {
				out.ListenerStatuses = append(out.ListenerStatuses, &adminv3.ListenerStatus{Name: t.cfg.Name, LocalAddress: addressProto(t.boundAddr())})
			}
			writeProtoJSON(w, out)
			return
		}
		w.Header().Set("content-type", "text/plain; charset=UTF-8")
		for _, l := range g.listeners {
			fmt.Fprintf(w, "%s::%s\n", l.cfg.Name, l.boundAddr())
		}
		for _, t := range g.tcp {
			fmt.Fprintf(w, "%s::%s\n", t.cfg.Name, t.boundAddr())
		}
	})
	mux.HandleFunc("/server_info", func(w http.ResponseWriter, r *http.Request) {
		state := adminv3.ServerInfo_LIVE
		if !g.ready.Load() {
			state = adminv3.ServerInfo_DRAINING
		}
		up := durationpb.New(time.Since(g.started).Truncate(time.Second))
		info := &adminv3.ServerInfo{
			Version: serverVersion, State: state, HotRestartVersion: "disabled",
			UptimeCurrentEpoch: up, UptimeAllEpochs: up,
			CommandLineOptions: &adminv3.CommandLineOptions{Concurrency: uint32(g.opts.Workers), DisableHotRestart: true},
			Node:               g.cfg.Bootstrap.GetNode(),
		}
		writeProtoJSON(w, info)
	})
	mux.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		stats := g.envoyStats()
		if f := r.URL.Query().Get("filter"); f != "" {
			re, err := regexp.Compile(f)
			if err != nil {
				http.Error(w, "Invalid regex: "+err.Error(), http.StatusBadRequest)
				return
			}
			kept := stats[:0]
			for _, s := range stats {
				if re.MatchString(s.name) {
					kept = append(kept, s)
				}
			}
			stats = kept
		}
		if r.URL.Query().Get("format") == "json" {
			w.Header().Set("content-type", "application/json")
			io.WriteString(w, `{"stats":[`)
			for i, s := range stats {
				if i > 0 {
					io.WriteString(w, ",")
				}
				fmt.Fprintf(w, `{"name":%s,"value":%d}`, strconv.Quote(s.name), s.value)
			}
			io.WriteString(w, "]}\n")
			return
		}
		w.Header().Set("content-type", "text/plain; charset=UTF-8")
		for _, s := range stats {
			fmt.Fprintf(w, "%s: %d\n", s.name, s.value)
		}
	})
	mux.HandleFunc("/config_dump", func(w http.ResponseWriter, r *http.Request) {
		dump := &adminv3.ConfigDump{}
		if bs := g.cfg.Bootstrap; bs != nil {
			a, err := anypb.New(&adminv3.BootstrapConfigDump{Bootstrap: bs})
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			dump.Configs = append(dump.Configs, a)
		}
		writeProtoJSON(w, dump)
	})
	mux.HandleFunc("/quitquitquit", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			// Envoy refuses state-changing admin calls over GET.
			w.Header().Set("allow", "POST")
			http.Error(w, "This admin command requires a POST", http.StatusMethodNotAllowed)
			return
		}
		io.WriteString(w, "OK\n")
		g.quitOne.Do(func() { close(g.quit) })
	})
}

func writeProtoJSON(w http.ResponseWriter, m proto.Message) {
	b, err := protojson.MarshalOptions{Multiline: true, Indent: " ", UseProtoNames: true}.Marshal(m)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("content-type", "application/json")
	w.Write(append(b, '\n'))
}

func addressProto(hostport string) *corev3.Address {
	host, p, _ := net.SplitHostPort(hostport)
	port, _ := strconv.Atoi(p)
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(port)},
	}}}
}

// boundAddr is where the listener listens: the configured address with the
// port the OS chose for port 0.
func (l *listener) boundAddr() string {
	if l.ln != nil {
		return l.ln.Addr().String()
	}
	return l.cfg.Address
}

type stat struct {
	name  string
	value int64 // gauges may go below zero
}

// envoyStats are the counters and gauges of /stats in Envoy's dotted
// names: the filters' metrics under the names they defined (Envoy strips
// the wasmcustom namespace) and the gateway's own http.<stat_prefix>.* and
// cluster.<name>.* stats. Histograms are in /stats/prometheus.
func (g *Gateway) envoyStats() []stat {
	var out []stat
	for _, m := range g.mergedMetrics() {
		if m.Type != "histogram" {
			out = append(out, stat{m.Name, m.Value})
		}
	}
	for _, l := range g.listeners {
		p := "http." + l.hcm.StatPrefix + "."
		out = append(out, stat{p + "downstream_rq_total", int64(l.rqTotal.Load())}, stat{p + "downstream_rq_active", l.active.Load()})
		for c := 1; c <= 5; c++ {
			out = append(out, stat{fmt.Sprintf("%sdownstream_rq_%dxx", p, c), int64(l.rqXX[c].Load())})
		}
	}
	for _, t := range g.tcp {
		out = append(out, stat{"tcp." + t.cfg.TCP.StatPrefix + ".downstream_cx_total", int64(t.cxTotal.Load())})
	}
	for i, codec := range [2]string{"http1.", "http2."} {
		out = append(out, stat{codec + "dropped_headers_with_underscores", int64(g.codec.droppedUnderscore[i].Load())},
			stat{codec + "requests_rejected_with_underscores_in_headers", int64(g.codec.rejectedUnderscore[i].Load())})
	}
	for _, n := range g.order {
		c, p := g.clusters[n], "cluster."+n+"."
		healthy, total := c.healthyCount()
		out = append(out,
			stat{p + "upstream_rq_total", int64(c.rqTotal[0].Load())},
			stat{p + "upstream_cx_connect_fail", int64(c.cxFail.Load())},
			stat{p + "upstream_cx_none_healthy", int64(c.noHealthy.Load())},
			stat{p + "membership_healthy", int64(healthy)},
			stat{p + "membership_total", int64(total)},
		)
		for x := 1; x <= 5; x++ {
			out = append(out, stat{fmt.Sprintf("%supstream_rq_%dxx", p, x), int64(c.rqXX[x].Load())})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}
