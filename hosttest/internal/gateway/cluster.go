package gateway

import (
	"context"
	"errors"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"

	"github.com/concierge-wasm/concierge/hosttest/internal/engine"
)

// cluster is a running cluster: its hosts (resolved, health-checked), the
// load balancer and the connection pool.
type cluster struct {
	cfg       *ClusterConfig
	log       *Logger
	transport *http.Transport
	scheme    string

	mu    sync.RWMutex
	hosts []*host

	rr   atomic.Uint64
	stop chan struct{}
	wg   sync.WaitGroup

	rqTotal, rqXX [6]atomic.Uint64 // [0] total; [n] n xx
	cxFail        atomic.Uint64
	noHealthy     atomic.Uint64
}

// host is one upstream endpoint.
type host struct {
	addr    string // dial address, host:port
	hcAddr  string
	name    string // the endpoint's hostname, for auto_host_rewrite
	healthy atomic.Bool
	active  atomic.Int64
	rq      atomic.Uint64

	fails, passes uint32 // owned by the health checker
}

func newCluster(cfg *ClusterConfig, log *Logger) *cluster {
	d := &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
	c := &cluster{cfg: cfg, log: log, scheme: "http", stop: make(chan struct{})}
	c.transport = &http.Transport{
		DialContext:         d.DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     60 * time.Second,
		// The gateway forwards bytes as they are: no transparent gzip.
		DisableCompression: true,
	}
	if cfg.TLS != nil {
		c.transport.TLSClientConfig = cfg.TLS.Clone()
		c.scheme = "https"
	}
	return c
}

// start resolves the endpoints and runs the first round of health checks
// before returning, as Envoy warms a cluster before serving; then DNS
// refreshes and health checks go on in the background.
func (c *cluster) start() {
	c.resolve()
	if hc := c.cfg.HealthCheck; hc != nil {
		c.checkAll(true)
		c.every(hc.Interval, func() { c.checkAll(false) })
	}
	if c.cfg.Type == clusterv3.Cluster_STRICT_DNS {
		c.every(c.cfg.DNSRefresh, c.resolve)
	}
}

// staticHosts makes the hosts without resolving anything (validate mode).
func (c *cluster) staticHosts() {
	var hs []*host
	for _, ep := range c.cfg.Endpoints {
		hs = append(hs, c.newHost(ep.Host, ep))
	}
	c.setHosts(hs)
}

func (c *cluster) every(d time.Duration, fn func()) {
	if d <= 0 {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-c.stop:
				return
			case <-t.C:
				fn()
			}
		}
	}()
}

func (c *cluster) close() {
	close(c.stop)
	c.wg.Wait()
	c.transport.CloseIdleConnections()
}

func (c *cluster) newHost(ip string, ep EndpointAddr) *host {
	port := strconv.Itoa(int(ep.Port))
	hcPort := port
	if ep.HCPort != 0 {
		hcPort = strconv.Itoa(int(ep.HCPort))
	}
	h := &host{addr: net.JoinHostPort(ip, port), hcAddr: net.JoinHostPort(ip, hcPort), name: ep.Host}
	h.healthy.Store(c.cfg.HealthCheck == nil)
	return h
}

// resolve computes the host set: STATIC and LOGICAL_DNS endpoints as
// given (a LOGICAL_DNS name is resolved per connection by the dialer),
// STRICT_DNS names to every address they have. Hosts that stay keep their
// health.
func (c *cluster) resolve() {
	var hs []*host
	for _, ep := range c.cfg.Endpoints {
		if c.cfg.Type != clusterv3.Cluster_STRICT_DNS || net.ParseIP(ep.Host) != nil {
			hs = append(hs, c.newHost(ep.Host, ep))
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		network := "ip"
		switch c.cfg.DNSFamily {
		case clusterv3.Cluster_V4_ONLY:
			network = "ip4"
		case clusterv3.Cluster_V6_ONLY:
			network = "ip6"
		}
		ips, err := net.DefaultResolver.LookupNetIP(ctx, network, ep.Host)
		cancel()
		if err != nil {
			c.log.Warnf("upstream", "cluster %s: resolving %s: %v", c.cfg.Name, ep.Host, err)
			// Envoy keeps the last good answer when a refresh fails.
			c.mu.RLock()
			for _, h := range c.hosts {
				if h.name == ep.Host {
					hs = append(hs, h)
				}
			}
			c.mu.RUnlock()
			continue
		}
		for _, ip := range ips {
			hs = append(hs, c.newHost(ip.Unmap().String(), ep))
		}
	}
	c.mu.RLock()
	old := c.hosts
	c.mu.RUnlock()
	for i, h := range hs {
		for _, o := range old {
			if o.addr == h.addr && o.name == h.name {
				hs[i] = o
			}
		}
	}
	c.setHosts(hs)
}

func (c *cluster) setHosts(hs []*host) {
	c.mu.Lock()
	c.hosts = hs
	c.mu.Unlock()
}

func (c *cluster) snapshot() []*host {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.hosts
}

// pick chooses a host: the healthy ones, unless fewer than the panic
// threshold are healthy, in which case Envoy balances over all of them.
func (c *cluster) pick() *host {
	all := c.snapshot()
	if len(all) == 0 {
		return nil
	}
	avail := all
	if c.cfg.HealthCheck != nil {
		avail = make([]*host, 0, len(all))
		for _, h := range all {
			if h.healthy.Load() {
				avail = append(avail, h)
			}
		}
		if float64(len(avail))*100 < c.cfg.PanicThreshold*float64(len(all)) {
			avail = all // panic mode
		}
	}
	if len(avail) == 0 {
		return nil
	}
	switch c.cfg.LB {
	case clusterv3.Cluster_RANDOM:
		return avail[rand.IntN(len(avail))]
	case clusterv3.Cluster_LEAST_REQUEST:
		a, b := avail[rand.IntN(len(avail))], avail[rand.IntN(len(avail))]
		if b.active.Load() < a.active.Load() {
			return b
		}
		return a
	}
	return avail[int((c.rr.Add(1)-1)%uint64(len(avail)))]
}

// checkAll runs one round of health checks, in parallel, and waits.
func (c *cluster) checkAll(first bool) {
	var wg sync.WaitGroup
	for _, h := range c.snapshot() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok := c.checkOne(h)
			c.record(h, ok, first)
		}()
	}
	wg.Wait()
}

func (c *cluster) checkOne(h *host) bool {
	hc := c.cfg.HealthCheck
	ctx, cancel := context.WithTimeout(context.Background(), hc.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, hc.Method, c.scheme+"://"+h.hcAddr+hc.Path, nil)
	if err != nil {
		return false
	}
	req.Host = hc.Host
	req.Header.Set("User-Agent", "Envoy/HC")
	applyHeaderOptions(req.Header, hc.mutations.reqRemove, hc.mutations.reqAdd)
	resp, err := c.transport.RoundTrip(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	for _, r := range hc.Expected {
		if int64(resp.StatusCode) >= r[0] && int64(resp.StatusCode) < r[1] {
			return true
		}
	}
	return false
}

func (c *cluster) record(h *host, ok, first bool) {
	hc := c.cfg.HealthCheck
	was := h.healthy.Load()
	if ok {
		h.passes++
		h.fails = 0
		if !was && (first || h.passes >= hc.Healthy) {
			h.healthy.Store(true)
			if !first {
				c.log.Infof("upstream", "cluster %s: host %s passed its health check: back in rotation", c.cfg.Name, h.addr)
			}
		}
		return
	}
	h.fails++
	h.passes = 0
	if first || (was && h.fails >= hc.Unhealthy) {
		h.healthy.Store(false)
		c.log.Warnf("upstream", "cluster %s: host %s failed its health check: out of rotation", c.cfg.Name, h.addr)
	}
}

func (c *cluster) healthyCount() (healthy, total int) {
	for _, h := range c.snapshot() {
		total++
		if h.healthy.Load() {
			healthy++
		}
	}
	return
}

// upstreamCall is one request leaving for a host.
type upstreamCall struct {
	path      string // new request target
	authority string
	// edit changes the outgoing headers (after hop-by-hop removal).
	edit     func(h http.Header)
	response func(resp *http.Response)
}

// forward sends r to h and streams the answer to w. A failed exchange is
// reported as Envoy's router reports it (FailFromRouter): a 503 "upstream
// connect error or disconnect/reset before headers" before the response
// began, a reset after. Outside a filter chain (callouts, a listener
// without wasm filters) it panics with http.ErrAbortHandler instead, or
// answers the 503 itself.
func (c *cluster) forward(w http.ResponseWriter, r *http.Request, h *host, call upstreamCall) {
	h.active.Add(1)
	defer h.active.Add(-1)
	h.rq.Add(1)
	c.rqTotal[0].Add(1)
	u, err := url.ParseRequestURI(call.path)
	if err != nil {
		http.Error(w, "bad request path", http.StatusBadRequest)
		return
	}
	engine.SetUpstreamHost(r, h.addr)
	// ReverseProxy panics on a response body that breaks off only inside
	// an http.Server; requests from the engine are not, so it is noticed
	// here.
	var body *erringBody
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			out := pr.Out
			out.URL.Scheme, out.URL.Host = c.scheme, h.addr
			out.URL.Path, out.URL.RawPath, out.URL.RawQuery = u.Path, u.RawPath, u.RawQuery
			out.Host = call.authority
			// Rewrite starts without X-Forwarded-*: keep what the
			// connection manager and the filters left.
			for _, k := range []string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host"} {
				if v := pr.In.Header.Values(k); len(v) > 0 {
					out.Header[k] = v
				}
			}
			if call.edit != nil {
				call.edit(out.Header)
			}
			// Request trailers get their values when the body is read to
			// its end, after this request was cloned: copy them across
			// then, in the goroutine the transport reads the body in.
			switch {
			case !c.cfg.Trailers: // the HTTP/1 client codec leaves them out
				out.Trailer = nil
			case len(pr.In.Trailer) > 0 && out.Body != nil:
				out.Body = &trailerCopier{ReadCloser: out.Body, from: pr.In.Trailer, to: out.Trailer}
			}
		},
		Transport:     c.transport,
		FlushInterval: -1,
		ErrorLog:      log.New(io.Discard, "", 0), // failures are logged here, in Envoy's words
		ModifyResponse: func(resp *http.Response) error {
			if class := resp.StatusCode / 100; class >= 1 && class <= 5 {
				c.rqXX[class].Add(1)
			}
			if !c.cfg.Trailers {
				dropTrailers(resp) // the HTTP/1 client codec ignores them
			}
			if call.response != nil {
				call.response(resp)
			}
			body = &erringBody{ReadCloser: resp.Body}
			resp.Body = body
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			c.log.Debugf("upstream", "cluster %s: host %s: %v", c.cfg.Name, h.addr, err)
			f := upstreamFailure(err)
			if f.Flags&engine.FlagUpstreamConnectionFailure != 0 {
				c.cxFail.Add(1)
			}
			c.fail(w, r, f)
		},
	}
	rp.ServeHTTP(w, r)
	if body != nil && body.err != nil {
		c.log.Debugf("upstream", "cluster %s: host %s: response body: %v", c.cfg.Name, h.addr, body.err)
		c.fail(w, r, engine.UpstreamFailure{Reason: "connection termination", Flags: engine.FlagUpstreamConnectionTermination})
	}
}

// fail ends an exchange that broke: through the router when the request
// came from a filter chain, else as described at forward.
func (c *cluster) fail(w http.ResponseWriter, r *http.Request, f engine.UpstreamFailure) {
	if r.Context().Err() != nil {
		// The stream ended first (route timeout, client gone, a filter's
		// reply): nothing is left to answer.
		panic(http.ErrAbortHandler)
	}
	if engine.FailFromRouter(r, f) {
		return
	}
	if dw, ok := w.(*directWriter); ok && dw.status == 0 {
		dw.local(http.StatusServiceUnavailable, f.Body())
		return
	}
	panic(http.ErrAbortHandler)
}

// upstreamFailure names a transport error in Envoy's words: a refused or
// failed connect is "remote connection failure" with strerror() as the
// transport failure reason (UF), a connect timeout "connection timeout"
// (UF), anything later "connection termination" (UC).
func upstreamFailure(err error) engine.UpstreamFailure {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" {
		return engine.UpstreamFailure{Reason: "connection termination", Flags: engine.FlagUpstreamConnectionTermination}
	}
	if op.Timeout() {
		return engine.UpstreamFailure{Reason: "connection timeout", Flags: engine.FlagUpstreamConnectionFailure}
	}
	// Envoy prints strerror(): Go's errno texts are the same, lower-cased.
	msg := op.Err.Error()
	var errno syscall.Errno
	if errors.As(err, &errno) {
		msg = errno.Error()
	}
	tf := "delayed connect error: " + strings.ToUpper(msg[:1]) + msg[1:]
	return engine.UpstreamFailure{Reason: "remote connection failure", TransportFailure: tf, Flags: engine.FlagUpstreamConnectionFailure}
}

// erringBody remembers a read error of an upstream response body.
type erringBody struct {
	io.ReadCloser
	err error
}

func (b *erringBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	return n, err
}

// calloutHandler answers proxy_http_call for this cluster: the request as
// the plugin built it (:authority, :path) sent to a host of the cluster.
func (c *cluster) calloutHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := c.pick()
		if h == nil {
			c.noHealthy.Add(1)
			w.Header().Set("content-type", "text/plain")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "no healthy upstream")
			return
		}
		c.forward(w, r, h, upstreamCall{path: r.RequestURI, authority: r.Host})
	})
}

// describe lists the cluster for --mode validate and /clusters.
func (c *cluster) describe(checked bool) []string {
	var out []string
	hs := c.snapshot()
	addrs := make([]string, 0, len(hs))
	for _, h := range hs {
		state := ""
		switch {
		case !checked:
		case h.healthy.Load():
			state = " (healthy)"
		default:
			state = " (unhealthy)"
		}
		addrs = append(addrs, h.addr+state)
	}
	slices.Sort(addrs)
	line := "  " + c.cfg.Name + ": " + c.cfg.Type.String() + " " + c.cfg.LB.String() + " over " + strings.Join(addrs, ", ")
	if hc := c.cfg.HealthCheck; hc != nil {
		line += "; health check " + hc.Method + " " + hc.Path + " every " + hc.Interval.String()
	}
	return append(out, line)
}

// trailerCopier copies the incoming request's trailers into the outgoing
// one when the body ends, just before the transport sends them.
type trailerCopier struct {
	io.ReadCloser
	from, to http.Header
}

func (t *trailerCopier) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	if err == io.EOF {
		for k, v := range t.from {
			t.to[k] = v
		}
	}
	return n, err
}
