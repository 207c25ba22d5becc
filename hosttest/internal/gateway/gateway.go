package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/concierge-wasm/concierge/hosttest/internal/engine"
)

// RunOptions are the command line's choices for one run.
type RunOptions struct {
	Workers int // worker threads, each with its own VMs (--concurrency); 0 means 2
	Profile engine.Profile
	Log     *Logger
	// ValidateOnly starts every filter's VMs (so a configuration a filter
	// refuses fails), and binds, resolves and health-checks nothing.
	ValidateOnly bool
}

// Gateway is a running configuration.
type Gateway struct {
	cfg       *Config
	opts      RunOptions
	log       *Logger
	clusters  map[string]*cluster
	order     []string // cluster names in configuration order
	listeners []*listener
	vmOwners  []vmOwner      // first filter of each VM, for logSharedVMs
	tcp       []*tcpListener // network wasm filters and tcp_proxy (tcp.go)
	services  []*engine.Host // WasmServices (service.go)
	shareRoot *engine.Host   // whose shared data and queues every host uses

	admin   *http.Server
	adminLn net.Listener
	ready   atomic.Bool
	closed  sync.Once
	closing chan struct{} // closed when Close starts: handlers stop waiting on the engine
	codec   codecStats
	started time.Time
	quit    chan struct{} // closed by POST /quitquitquit
	quitOne sync.Once
	// overload is the overload manager's monitor; nil without one.
	overload *overload
}

// Quit delivers when an operator asks the admin interface to exit
// (POST /quitquitquit); the command line then shuts down as on SIGTERM.
func (g *Gateway) Quit() <-chan struct{} { return g.quit }

// listener is one listener with its connection manager and engine.
type listener struct {
	g    *Gateway
	cfg  *ListenerConfig
	hcm  *HCMConfig
	host *engine.Host // nil when the chain has no wasm filter
	ln   net.Listener
	srv  *http.Server
	// props are the listener's attributes for requests no route matched.
	props streamProps

	rqTotal atomic.Uint64
	rqXX    [6]atomic.Uint64
	active  atomic.Int64
	// Timeout counters (timeouts.go).
	cxIdleTimeout, cxMaxDuration, rqIdleTimeout, rqTimeout, rqHeaderTimeout atomic.Uint64
	rqOverload                                                              atomic.Uint64
}

// Start runs a compiled configuration: clusters resolved and health
// checked, each connection manager's filters started in an engine, the
// listeners and the admin interface bound. On error nothing is left
// running.
func Start(cfg *Config, o RunOptions) (*Gateway, error) {
	if o.Log == nil {
		o.Log = NewLogger(nilWriter{}, LevelOff)
	}
	if o.Workers <= 0 {
		o.Workers = 2
	}
	g := &Gateway{cfg: cfg, opts: o, log: o.Log, clusters: map[string]*cluster{}, started: time.Now(), closing: make(chan struct{}), quit: make(chan struct{})}
	for _, w := range cfg.Warnings {
		g.log.Warnf("config", "%s", w)
	}
	var wg sync.WaitGroup
	for _, cc := range cfg.Clusters {
		c := newCluster(cc, g.log)
		g.clusters[cc.Name] = c
		g.order = append(g.order, cc.Name)
		if o.ValidateOnly {
			c.staticHosts()
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); c.start() }()
	}
	wg.Wait()
	if err := g.startServices(); err != nil {
		g.Close()
		return nil, err
	}
	for _, lc := range cfg.Listeners {
		l := &listener{g: g, cfg: lc, hcm: lc.HCM}
		l.initProps()
		g.listeners = append(g.listeners, l)
		if err := l.startEngine(); err != nil {
			g.Close()
			return nil, fmt.Errorf("listener %s: %w", lc.Name, err)
		}
	}
	for _, lc := range cfg.TCPListeners {
		t, err := g.startTCP(lc)
		if err != nil {
			g.Close()
			return nil, fmt.Errorf("listener %s: %w", lc.Name, err)
		}
		g.tcp = append(g.tcp, t)
	}
	if o.ValidateOnly {
		return g, nil
	}
	if oc := cfg.Overload; oc != nil && oc.MaxHeapBytes > 0 {
		g.overload = startOverload(oc)
	}
	for _, t := range g.tcp {
		if err := t.listen(); err != nil {
			g.Close()
			return nil, fmt.Errorf("listener %s: %w", t.cfg.Name, err)
		}
		g.log.Infof("main", "listener %s: serving TCP on %s to cluster %s", t.cfg.Name, t.ln.Addr(), t.cfg.TCP.Cluster)
	}
	for _, l := range g.listeners {
		ln, err := net.Listen("tcp", l.cfg.Address)
		if err != nil {
			g.Close()
			return nil, fmt.Errorf("listener %s: %w", l.cfg.Name, err)
		}
		// The connection manager's timers run on each connection
		// (timeouts.go); net/http's own read deadlines stay off, except
		// IdleTimeout, which also makes HTTP/2 connections go away.
		l.ln = timedListener{Listener: ln, l: l}
		// Go allows 4 KiB beyond MaxHeaderBytes for its read buffer: the
		// limit is Envoy's to within that.
		l.srv = &http.Server{Handler: l, IdleTimeout: l.hcm.Timeouts.Idle, MaxHeaderBytes: l.hcm.MaxRequestHeaderBytes,
			ConnState:   connState,
			ConnContext: func(ctx context.Context, c net.Conn) context.Context { return context.WithValue(ctx, connKey{}, c) }}
		p := new(http.Protocols)
		p.SetHTTP1(l.hcm.HTTP1)
		p.SetUnencryptedHTTP2(l.hcm.H2C)
		l.srv.Protocols = p
	}
	if cfg.Admin != "" {
		ln, err := net.Listen("tcp", cfg.Admin)
		if err != nil {
			g.Close()
			return nil, fmt.Errorf("admin: %w", err)
		}
		g.adminLn = ln
		g.admin = &http.Server{Handler: g.adminMux(), ReadHeaderTimeout: 10 * time.Second}
		go g.admin.Serve(ln)
		g.log.Infof("admin", "admin address: %s", ln.Addr())
	}
	for _, l := range g.listeners {
		go l.srv.Serve(l.ln)
		g.log.Infof("main", "listener %s: serving on %s with filters [%s]", l.cfg.Name, l.ln.Addr(), strings.Join(l.filterNames(), " "))
	}
	g.ready.Store(true)
	return g, nil
}

type nilWriter struct{}

func (nilWriter) Write(p []byte) (int, error) { return len(p), nil }

func (l *listener) filterNames() []string {
	var out []string
	for _, f := range l.hcm.Filters {
		out = append(out, f.HTTPName)
	}
	return append(out, "envoy.filters.http.router")
}

func (l *listener) startEngine() error {
	if l.hcm == nil || len(l.hcm.Filters) == 0 {
		return nil
	}
	prefixes := map[string]string{}
	var filters []engine.FilterConfig
	for _, f := range l.hcm.Filters {
		filters = append(filters, f.Engine)
		prefixes[f.Engine.Name] = wasmLogPrefix(f.PluginName, f.Engine.RootID, f.Engine.VMID)
	}
	clusters := map[string]engine.Cluster{}
	for name, c := range l.g.clusters {
		clusters[name] = engine.Cluster{Handler: c.calloutHandler()}
	}
	log := l.g.log
	h, err := engine.Start(engine.Options{
		Filters:  filters,
		Workers:  l.g.opts.Workers,
		Profile:  l.g.opts.Profile,
		Clusters: clusters,
		LogSink: func(e engine.LogEntry) {
			log.plugin(e, prefixes[e.Filter])
		},
		MaxLogs:      1000,
		ShareWith:    l.g.shareRoot,
		Node:         l.g.node(),
		UpstreamHost: l.g.upstreamHost,
		ClusterEndpoints: func(name string) (int, bool) {
			c := l.g.clusters[name]
			if c == nil {
				return 0, false
			}
			return len(c.snapshot()), true
		},
	})
	if err != nil {
		return err
	}
	l.g.noteShared(h)
	l.g.logSharedVMs("listener "+l.cfg.Name, h, filters)
	l.host = h
	return nil
}

// logSharedVMs says which filters of a listener run in the VM of an
// earlier one (same vm_id, code, vm configuration and environment), as
// Envoy does: Go globals are then shared between them. VMs are shared
// within one engine (one listener's chain, one service) only: a filter
// that Envoy would put in the VM of another listener's or service's
// filter gets a warning saying so.
func (g *Gateway) logSharedVMs(where string, h *engine.Host, filters []engine.FilterConfig) {
	shares := h.SharesVMWith()
	for i, j := range shares {
		f := &filters[i]
		if j >= 0 {
			g.log.Infof("main", "%s: filter %d %s: shares the VM of filter %d %s (vm_id %q), as root context %d",
				where, i+1, f.Name, j+1, filters[j].Name, f.VMID, sharedRootIndex(shares, i))
			continue
		}
		key := engine.VMKeyOf(f)
		for _, o := range g.vmOwners {
			if o.key == key {
				g.log.Warnf("main", "%s: filter %d %s: Envoy would run it in the VM of %s (same vm_id %q, code, vm configuration and environment); "+
					"the gateway shares a VM only within one listener's filter chain, so its root context ids and Go globals are its own", where, i+1, f.Name, o.where, f.VMID)
				break
			}
		}
		g.vmOwners = append(g.vmOwners, vmOwner{where: fmt.Sprintf("%s filter %d %s", where, i+1, f.Name), key: key})
	}
}

// vmOwner is the first filter of a VM in one of the gateway's engines.
type vmOwner struct {
	where string
	key   engine.VMKey
}

// sharedRootIndex is the root context id filter i gets in its shared VM:
// root contexts are numbered in chain order from 1.
func sharedRootIndex(shares []int, i int) int {
	first, n := shares[i], 1
	if first < 0 {
		return 1
	}
	for k := first + 1; k <= i; k++ {
		if shares[k] == first {
			n++
		}
	}
	return n
}

// Addr is the bound address of a listener ("" if unknown), useful when
// the configuration asked for port 0.
func (g *Gateway) Addr(listenerName string) string {
	for _, l := range g.listeners {
		if l.cfg.Name == listenerName && l.ln != nil {
			return l.ln.Addr().String()
		}
	}
	for _, t := range g.tcp {
		if t.cfg.Name == listenerName && t.ln != nil {
			return t.ln.Addr().String()
		}
	}
	return ""
}

// AdminAddr is the bound admin address, or "".
func (g *Gateway) AdminAddr() string {
	if g.adminLn == nil {
		return ""
	}
	return g.adminLn.Addr().String()
}

// Shutdown stops accepting connections, waits for the requests in flight
// to finish (or ctx to end), then stops everything.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.ready.Store(false)
	var wg sync.WaitGroup
	errs := make([]error, len(g.listeners))
	for i, l := range g.listeners {
		if l.srv == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = l.srv.Shutdown(ctx)
		}()
	}
	wg.Wait()
	g.Close()
	return errors.Join(errs...)
}

// Close stops everything at once; requests in flight are cut.
func (g *Gateway) Close() {
	g.closed.Do(func() {
		g.ready.Store(false)
		close(g.closing)
		g.overload.close()
		for _, l := range g.listeners {
			if l.srv != nil {
				l.srv.Close()
			} else if l.ln != nil {
				l.ln.Close()
			}
			if l.host != nil {
				l.host.Close()
			}
		}
		if g.admin != nil {
			g.admin.Close()
		} else if g.adminLn != nil {
			g.adminLn.Close()
		}
		for _, t := range g.tcp {
			t.close()
		}
		for _, h := range g.services {
			h.Close()
		}
		for _, c := range g.clusters {
			c.close()
		}
	})
}

// Describe says what the gateway serves: listeners and their filters,
// routes and clusters, and every warning; --mode validate prints it.
func (g *Gateway) Describe() string {
	var b strings.Builder
	for _, l := range g.listeners {
		addr := l.cfg.Address
		if l.ln != nil {
			addr = l.ln.Addr().String()
		}
		fmt.Fprintf(&b, "listener %s on %s (stat_prefix %s)\n", l.cfg.Name, addr, l.hcm.StatPrefix)
		for i, f := range l.hcm.Filters {
			fmt.Fprintf(&b, "  filter %d %s: %s (root_id %q, vm_id %q, %d bytes of configuration, %s), %d worker VMs + main: started\n",
				i+1, f.HTTPName, f.CodePath, f.Engine.RootID, f.Engine.VMID, len(f.Engine.Configuration), policyName(f.Engine.FailurePolicy), g.opts.Workers)
		}
		fmt.Fprintf(&b, "  filter %d envoy.filters.http.router\n", len(l.hcm.Filters)+1)
		if l.hcm.Routes != nil {
			b.WriteString("routes:\n")
			for _, r := range l.hcm.Routes.Describe() {
				b.WriteString(r + "\n")
			}
		}
	}
	g.describeTCP(&b)
	b.WriteString("clusters:\n")
	names := append([]string(nil), g.order...)
	for _, n := range names {
		for _, line := range g.clusters[n].describe(!g.opts.ValidateOnly) {
			b.WriteString(line + "\n")
		}
	}
	if g.cfg.Admin != "" {
		fmt.Fprintf(&b, "admin on %s: /ready /stats/prometheus /clusters\n", g.cfg.Admin)
	}
	if len(g.cfg.Warnings) > 0 {
		ws := append([]string(nil), g.cfg.Warnings...)
		sort.Strings(ws)
		fmt.Fprintf(&b, "%d warning(s):\n", len(ws))
		for _, w := range ws {
			b.WriteString("  " + w + "\n")
		}
	}
	return b.String()
}

func policyName(p engine.FailurePolicy) string {
	switch p {
	case engine.FailOpen:
		return "FAIL_OPEN"
	case engine.FailReload:
		return "FAIL_RELOAD"
	}
	return "FAIL_CLOSED"
}
