package gateway

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/concierge-wasm/concierge/hosttest/internal/engine"
)

// One engine runs every wasm filter of the gateway, as Envoy's worker
// threads serve every listener: each HTTP or TCP listener's wasm filters
// are one chain in it, and each WasmService's plugin a filter in no chain
// (root context only; a singleton's on the main thread only). So the VM
// per thread is keyed by vm_config across the whole gateway, as cpp-host's
// getOrCreateThreadLocalWasm keys it across the server: filters of two
// listeners, or a listener's filter and a WasmService, with the same
// vm_id, code, vm configuration and environment are root contexts of one
// VM per worker (and on the main thread). Shared data, queues, metrics and
// the clock are the engine's, process-wide as in Envoy.

// engineFilter is one filter of the engine and where the bootstrap has it.
type engineFilter struct {
	where   string // "listener ingress" or "wasm service svc"
	pos     int    // its position in that chain, from 1
	service bool
	cfg     *FilterConfig
}

// describe names the filter in the start-up log.
func (f engineFilter) describe() string {
	if f.service {
		return f.where
	}
	return fmt.Sprintf("%s filter %d %s", f.where, f.pos, f.cfg.Engine.Name)
}

// startEngine starts the engine with the filters in the order Envoy
// creates their root contexts: the listeners' in static_resources order
// (each chain in order, HTTP and TCP alike), then the services', which
// Envoy creates in onServerInitialized, once the listeners are
// configured. So a service that shares a filter's VM is a later root
// context of it.
func (g *Gateway) startEngine() error {
	var all []engineFilter
	var chains [][]int
	add := func(where string, fs []FilterConfig, service bool) []int {
		var chain []int
		for i := range fs {
			chain = append(chain, len(all))
			all = append(all, engineFilter{where: where, pos: i + 1, service: service, cfg: &fs[i]})
		}
		return chain
	}
	type chainOwner struct {
		index   int // in static_resources.listeners
		filters []FilterConfig
		name    string
		chain   *int
	}
	var owners []chainOwner
	for _, l := range g.listeners {
		if l.hcm != nil && len(l.hcm.Filters) > 0 {
			owners = append(owners, chainOwner{l.cfg.Index, l.hcm.Filters, l.cfg.Name, &l.chain})
		}
	}
	for _, t := range g.tcp {
		if len(t.cfg.TCP.Filters) > 0 {
			owners = append(owners, chainOwner{t.cfg.Index, t.cfg.TCP.Filters, t.cfg.Name, &t.chain})
		}
	}
	sort.SliceStable(owners, func(i, j int) bool { return owners[i].index < owners[j].index })
	for _, o := range owners {
		*o.chain = len(chains)
		chains = append(chains, add("listener "+o.name, o.filters, false))
	}
	for i := range g.cfg.Services {
		s := &g.cfg.Services[i]
		add("wasm service "+s.Filter.Engine.Name, []FilterConfig{s.Filter}, true)
	}
	if len(all) == 0 {
		return nil
	}
	prefixes := map[string]string{}
	filters := make([]engine.FilterConfig, len(all))
	for i, f := range all {
		filters[i] = f.cfg.Engine
		prefixes[f.cfg.Engine.Name] = wasmLogPrefix(f.cfg.PluginName, f.cfg.Engine.RootID, f.cfg.Engine.VMID)
	}
	clusters := map[string]engine.Cluster{}
	for name, c := range g.clusters {
		clusters[name] = engine.Cluster{Handler: c.calloutHandler()}
	}
	log := g.log
	h, err := engine.Start(engine.Options{
		Filters:  filters,
		Chains:   chains,
		Workers:  g.opts.Workers,
		Profile:  g.opts.Profile,
		Clusters: clusters,
		LogSink: func(e engine.LogEntry) {
			log.plugin(e, prefixes[e.Filter])
		},
		MaxLogs:      1000,
		Node:         g.node(),
		UpstreamHost: g.upstreamHost,
		ClusterEndpoints: func(name string) (int, bool) {
			c := g.clusters[name]
			if c == nil {
				return 0, false
			}
			return len(c.snapshot()), true
		},
	})
	if err != nil {
		return ownedError(all, err)
	}
	g.engine = h
	for _, l := range g.listeners {
		if l.hcm != nil && len(l.hcm.Filters) > 0 {
			l.host = h
		}
	}
	for _, t := range g.tcp {
		if len(t.cfg.TCP.Filters) > 0 {
			t.host = h
		}
	}
	g.logSharedVMs(all)
	for _, s := range g.cfg.Services {
		kind := "one VM per worker"
		if s.Singleton {
			kind = "singleton on the main thread"
		}
		g.log.Infof("main", "wasm service %s started (%s)", s.Filter.Engine.Name, kind)
	}
	return nil
}

// ownedError says whose filter refused to start, as the gateway said when
// each listener and service had an engine of its own: "listener ingress:
// ..." or "bootstrap extension svc: ...".
func ownedError(all []engineFilter, err error) error {
	name := ""
	var ce *engine.ConfigError
	if errors.As(err, &ce) {
		name = ce.Filter
	} else {
		// The engine's other start errors name the filter first
		// ("compiling <name> (<file>)").
		for _, f := range all {
			if strings.Contains(err.Error(), " "+f.cfg.Engine.Name+" (") {
				name = f.cfg.Engine.Name
				break
			}
		}
	}
	for _, f := range all {
		if f.cfg.Engine.Name != name {
			continue
		}
		if f.service {
			return fmt.Errorf("bootstrap extension %s: %w", f.cfg.Engine.Name, err)
		}
		return fmt.Errorf("%s: %w", f.where, err)
	}
	return err
}

// logSharedVMs says which filters run in the VM of an earlier one (same
// vm_id, code, vm configuration and environment) and as which root
// context, as Envoy shares them: Go globals are then shared between them.
// A singleton service is on the main thread only, so a filter may share
// its VM there and have one of its own on the workers: each thread's
// sharing is said when they differ.
func (g *Gateway) logSharedVMs(all []engineFilter) {
	h := g.engine
	main := h.VMShares(-1)
	var work []engine.VMShare
	if h.Workers() > 0 {
		work = h.VMShares(0)
	}
	say := func(i int, s engine.VMShare, thread string) {
		f, o := all[i], all[s.First]
		subject := f.where
		if !f.service {
			subject = fmt.Sprintf("%s: filter %d %s", f.where, f.pos, f.cfg.Engine.Name)
		}
		owner := o.describe()
		if o.where == f.where {
			owner = fmt.Sprintf("filter %d %s", o.pos, o.cfg.Engine.Name)
		}
		g.log.Infof("main", "%s: shares the VM of %s (vm_id %q), as root context %d%s",
			subject, owner, f.cfg.Engine.VMID, s.RootID, thread)
	}
	for i := range all {
		m := main[i]
		w := m
		if work != nil {
			w = work[i]
		}
		mShared, wShared := m.First >= 0 && m.First != i, w.First >= 0 && w.First != i
		switch {
		case work != nil && w.First < 0: // a singleton: on the main thread only
			if mShared {
				say(i, m, " on the main thread")
			}
		case m == w:
			if mShared {
				say(i, m, "")
			}
		default:
			if mShared {
				say(i, m, " on the main thread")
			}
			if wShared {
				say(i, w, " on each worker")
			}
		}
	}
}

// engineHosts are the engines the gateway runs (one, or none), whose
// metrics /stats reads.
func (g *Gateway) engineHosts() []*engine.Host {
	if g.engine == nil {
		return nil
	}
	return []*engine.Host{g.engine}
}
