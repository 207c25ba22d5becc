package gateway

import (
	"fmt"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tcpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	netwasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/wasm/v3"
)

// TCPConfig is a listener whose filter chain is network wasm filters
// (envoy.filters.network.wasm) ending in tcp_proxy.
type TCPConfig struct {
	Filters    []FilterConfig
	StatPrefix string
	Cluster    string
}

// compileTCPChain reads a chain of network wasm filters followed by
// tcp_proxy; ok is false when the chain is not of that shape (the caller
// then reports what it supports).
func compileTCPChain(c *checker, fc *listenerv3.FilterChain, fat string, clusters map[string]bool, o Options) (*TCPConfig, bool) {
	nfs := fc.GetFilters()
	if len(nfs) == 0 {
		return nil, false
	}
	last, err := nfs[len(nfs)-1].GetTypedConfig().UnmarshalNew()
	if err != nil {
		return nil, false
	}
	tp, ok := last.(*tcpv3.TcpProxy)
	if !ok {
		return nil, false
	}
	tc := &TCPConfig{}
	for i, nf := range nfs[:len(nfs)-1] {
		at := fmt.Sprintf("%s.filters[%d]", fat, i)
		c.check(nf, at, fields{use: "name typed_config"})
		m, err := nf.GetTypedConfig().UnmarshalNew()
		if err != nil {
			c.errorf("%s.typed_config: %v", at, err)
			continue
		}
		w, ok := m.(*netwasmv3.Wasm)
		if !ok {
			c.errorf("%s.typed_config: %s is not supported before tcp_proxy; only envoy.filters.network.wasm is", at, nf.GetTypedConfig().GetTypeUrl())
			continue
		}
		c.check(w, at+".typed_config", fields{use: "config"})
		if f, ok := compileWasm(c, w.GetConfig(), at+".typed_config.config", nf.GetName(), o); ok {
			f.Engine.Name = c.engineName(f.Engine.Name)
			tc.Filters = append(tc.Filters, f)
		}
	}
	at := fmt.Sprintf("%s.filters[%d] (tcp_proxy)", fat, len(nfs)-1)
	c.check(tp, at+".typed_config", fields{use: "stat_prefix cluster", warn: map[string]string{
		"idle_timeout":                       "TCP idle timeout",
		"access_log":                         "TCP access log",
		"max_connect_attempts":               "connect retries (one attempt)",
		"max_downstream_connection_duration": "connection duration limit",
	}})
	tc.StatPrefix, tc.Cluster = tp.GetStatPrefix(), tp.GetCluster()
	if tc.StatPrefix == "" {
		c.errorf("%s.typed_config.stat_prefix: required", at)
	}
	switch {
	case tc.Cluster == "":
		c.errorf("%s.typed_config.cluster: required (weighted_clusters is not supported)", at)
	case !clusters[tc.Cluster]:
		c.errorf("%s.typed_config.cluster: unknown cluster %q", at, tc.Cluster)
	}
	return tc, true
}
