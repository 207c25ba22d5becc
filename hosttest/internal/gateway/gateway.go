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
	tcp       []*tcpListener // network wasm filters and tcp_proxy (tcp.go)
	// engine runs every wasm filter of every listener and WasmService
	// (engine.go); nil when there is none.
	engine *engine.Host

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

// listener is one listener with its connection manager and its chain in
// the gateway's engine.
type listener struct {
	g     *Gateway
	cfg   *ListenerConfig
	hcm   *HCMConfig
	host  *engine.Host // the gateway's engine; nil when the chain has no wasm filter
	chain int          // the listener's filter chain in it
	ln    net.Listener
	srv   *http.Server
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
	for _, lc := range cfg.Listeners {
		l := &listener{g: g, cfg: lc, hcm: lc.HCM}
		l.initProps()
		g.listeners = append(g.listeners, l)
	}
	for _, lc := range cfg.TCPListeners {
		g.tcp = append(g.tcp, &tcpListener{g: g, cfg: lc, cluster: g.clusters[lc.TCP.Cluster]})
	}
	if err := g.startEngine(); err != nil {
		g.Close()
		return nil, err
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
		}
		if g.admin != nil {
			g.admin.Close()
		} else if g.adminLn != nil {
			g.adminLn.Close()
		}
		for _, t := range g.tcp {
			t.close()
		}
		if g.engine != nil {
			g.engine.Close()
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
