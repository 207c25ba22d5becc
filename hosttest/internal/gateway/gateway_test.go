package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// routingGateway runs the probe filter in front of a table of routes.
func routingGateway(t *testing.T) (g *Gateway, base string, a, b, one *httptest.Server) {
	a, b, one = echoServer(t, "a"), echoServer(t, "b"), echoServer(t, "one")
	slow := slowServer(t)
	routes := `
- name: rr
  match: { prefix: /svc }
  route: { cluster: pair }
- name: rewrite
  match: { prefix: /api/orders }
  route: { cluster: one, prefix_rewrite: /orders, host_rewrite_literal: orders.internal }
  request_headers_to_add:
  - header: { key: x-gateway, value: concierge }
    append_action: OVERWRITE_IF_EXISTS_OR_ADD
  response_headers_to_add:
  - header: { key: x-route, value: rewrite }
- name: public
  match: { prefix: /public/ }
  route: { cluster: one }
  typed_per_filter_config:
    probe:
      "@type": type.googleapis.com/envoy.config.route.v3.FilterConfig
      disabled: true
- name: slow
  match: { path: /slow }
  route: { cluster: slow, timeout: 0.2s }
- name: variant-b
  match:
    prefix: /variant
    headers:
    - name: x-variant
      string_match: { exact: b }
  route: { cluster: pair }
- name: variant-regex
  match: { safe_regex: { regex: "/variant/[0-9]+" } }
  route: { cluster: one }
- name: teapot
  match: { path: /direct }
  direct_response: { status: 418, body: { inline_string: "short and stout" } }
`
	clusters := staticCluster("pair", []string{port(t, a), port(t, b)}, "") +
		staticCluster("one", []string{port(t, one)}, "") +
		staticCluster("slow", []string{port(t, slow)}, "")
	g = start(t, bootstrap(wasmFilter("probe", module(t, "hosttest/testdata/probe"), `{"name":"probe","metrics":true}`), routes, clusters))
	return g, "http://" + g.Addr("ingress"), a, b, one
}

func TestRoutesRewritesAndPerRouteDisabling(t *testing.T) {
	g, base, _, _, _ := routingGateway(t)
	c := client(t)
	script := map[string]string{"x-probe": "add-req:x-probed=yes get-prop:xds.route_name get-prop:xds.cluster_name"}

	t.Run("prefix rewrite and host rewrite", func(t *testing.T) {
		r := do(t, c, "GET", base+"/api/orders/42?full=1", script, nil)
		e := r.echo(t)
		if r.status != 200 || e.Name != "one" || e.Path != "/orders/42?full=1" || e.Host != "orders.internal" {
			t.Fatalf("GET /api/orders/42?full=1 reached %s %s (host %s), status %d; want one /orders/42?full=1 (host orders.internal)", e.Name, e.Path, e.Host, r.status)
		}
		for k, want := range map[string]string{
			"x-envoy-original-path":          "/api/orders/42?full=1",
			"x-gateway":                      "concierge",
			"x-probed":                       "yes",
			"x-probe-prop-xds.route_name":    "rewrite",
			"x-probe-prop-xds.cluster_name":  "one",
			"x-forwarded-proto":              "http",
			"x-forwarded-for":                "127.0.0.1",
			"x-envoy-internal":               "true",
			"x-envoy-expected-rq-timeout-ms": "15000",
		} {
			if got := strings.Join(e.Headers[k], ","); got != want {
				t.Errorf("upstream header %s = %q, want %q", k, got, want)
			}
		}
		if r.header.Get("server") != "envoy" || r.header.Get("x-route") != "rewrite" || r.header.Get("x-envoy-upstream-service-time") == "" {
			t.Errorf("response headers %v: want server: envoy, x-route: rewrite, x-envoy-upstream-service-time", r.header)
		}
		if r.header.Get("x-probe-saw") != "req-headers,resp-headers" {
			t.Errorf("x-probe-saw = %q, want the probe to have run both ways", r.header.Get("x-probe-saw"))
		}
	})

	t.Run("typed_per_filter_config disabled", func(t *testing.T) {
		r := do(t, c, "GET", base+"/public/status", script, nil)
		e := r.echo(t)
		if r.status != 200 || len(e.Headers["x-probed"]) != 0 || r.header.Get("x-probe-saw") != "" {
			t.Fatalf("GET /public/status: status %d, upstream saw x-probed %v, x-probe-saw %q: the probe must not run on this route", r.status, e.Headers["x-probed"], r.header.Get("x-probe-saw"))
		}
	})

	t.Run("header and regex matchers", func(t *testing.T) {
		if e := do(t, c, "GET", base+"/variant/7", map[string]string{"x-variant": "b"}, nil).echo(t); e.Name != "a" && e.Name != "b" {
			t.Errorf("with x-variant: b, reached %s, want the pair cluster", e.Name)
		}
		if e := do(t, c, "GET", base+"/variant/7", nil, nil).echo(t); e.Name != "one" {
			t.Errorf("without x-variant, reached %s, want one (safe_regex route)", e.Name)
		}
		if r := do(t, c, "GET", base+"/variant/x", nil, nil); r.status != 404 {
			t.Errorf("GET /variant/x: status %d, want 404 (no route)", r.status)
		}
	})

	t.Run("route timeout", func(t *testing.T) {
		r := do(t, c, "GET", base+"/slow", nil, nil)
		if r.status != 504 || string(r.body) != "upstream request timeout" {
			t.Errorf("GET /slow: %d %q, want 504 upstream request timeout", r.status, r.body)
		}
	})

	t.Run("direct response", func(t *testing.T) {
		if r := do(t, c, "GET", base+"/direct", nil, nil); r.status != 418 || string(r.body) != "short and stout" {
			t.Errorf("GET /direct: %d %q", r.status, r.body)
		}
	})

	t.Run("path normalisation", func(t *testing.T) {
		if e := do(t, c, "GET", base+"/public/../api/orders//1", nil, nil).echo(t); e.Path != "/orders/1" {
			t.Errorf("GET /public/../api/orders//1 reached %s, want /orders/1 (dot segments removed, slashes merged)", e.Path)
		}
		if r := do(t, c, "GET", base+"/api/orders/a%2Fb", nil, nil); r.status != 400 {
			t.Errorf("GET /api/orders/a%%2Fb: status %d, want 400 (path_with_escaped_slashes_action: REJECT_REQUEST)", r.status)
		}
	})

	t.Run("filter answers locally", func(t *testing.T) {
		r := do(t, c, "GET", base+"/svc/x", map[string]string{"x-probe": "local:403"}, nil)
		if r.status != 403 || string(r.body) != "denied by probe" || r.header.Get("x-local-by") != "probe" {
			t.Errorf("local:403: %d %q %v", r.status, r.body, r.header)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		do(t, c, "GET", base+"/svc/x", map[string]string{"x-probe": "metric"}, nil)
		do(t, c, "GET", base+"/svc/x", map[string]string{"x-probe": "metric"}, nil)
		m := do(t, c, "GET", "http://"+g.AdminAddr()+"/stats/prometheus", nil, nil)
		for _, want := range []string{"# TYPE probe_requests_total counter\nprobe_requests_total 2\n", `envoy_cluster_upstream_rq_total{envoy_cluster_name="pair"}`, "# TYPE probe_size histogram"} {
			if !strings.Contains(string(m.body), want) {
				t.Errorf("/stats/prometheus lacks %q:\n%s", want, m.body)
			}
		}
		if r := do(t, c, "GET", "http://"+g.AdminAddr()+"/ready", nil, nil); r.status != 200 || string(r.body) != "LIVE\n" {
			t.Errorf("/ready: %d %q", r.status, r.body)
		}
	})
}

func TestRoundRobin(t *testing.T) {
	_, base, _, _, _ := routingGateway(t)
	c := client(t)
	seen := map[string]int{}
	prev := ""
	for i := 0; i < 10; i++ {
		name := do(t, c, "GET", base+"/svc/"+fmt.Sprint(i), nil, nil).echo(t).Name
		if name == prev {
			t.Errorf("request %d went to %s twice in a row, want alternation", i, name)
		}
		prev = name
		seen[name]++
	}
	if seen["a"] != 5 || seen["b"] != 5 {
		t.Errorf("10 requests over 2 endpoints: %v, want 5 each", seen)
	}
}

func TestHealthCheckTakesEndpointsOut(t *testing.T) {
	var sick atomic.Bool
	healthy := echoServer(t, "healthy")
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" && sick.Load() {
			w.WriteHeader(503)
			return
		}
		io.WriteString(w, `{"name":"flaky"}`)
	}))
	t.Cleanup(flaky.Close)
	g := start(t, bootstrap("", "- name: all\n  match: { prefix: / }\n  route: { cluster: pool }", staticCluster("pool", []string{port(t, healthy), port(t, flaky)}, fastHealthCheck)))
	c := client(t)
	base := "http://" + g.Addr("ingress")
	names := func(n int) map[string]int {
		seen := map[string]int{}
		for i := 0; i < n; i++ {
			seen[do(t, c, "GET", base+"/x", nil, nil).echo(t).Name]++
		}
		return seen
	}
	if seen := names(4); seen["flaky"] == 0 || seen["healthy"] == 0 {
		t.Fatalf("both endpoints healthy: %v, want both used", seen)
	}
	clusters := func() string { return string(do(t, c, "GET", "http://"+g.AdminAddr()+"/clusters", nil, nil).body) }
	sick.Store(true)
	waitFor(t, 5*time.Second, "the failing endpoint to leave rotation", func() bool {
		return strings.Contains(clusters(), port(t, flaky)+"::health_flags::/failed_active_hc")
	})
	if seen := names(6); seen["flaky"] != 0 || seen["healthy"] != 6 {
		t.Fatalf("after the health check failed: %v, want every request on the healthy endpoint", seen)
	}
	sick.Store(false)
	waitFor(t, 5*time.Second, "the endpoint to come back", func() bool {
		return strings.Contains(clusters(), port(t, flaky)+"::health_flags::healthy")
	})
	if seen := names(4); seen["flaky"] == 0 {
		t.Fatalf("after the health check passed again: %v, want the endpoint back in rotation", seen)
	}
}

func TestUpstreamDownIs503(t *testing.T) {
	p := closedPort(t)
	g := start(t, bootstrap(wasmFilter("probe", module(t, "hosttest/testdata/probe"), `{"name":"probe"}`),
		"- name: all\n  match: { prefix: / }\n  route: { cluster: dead }", staticCluster("dead", []string{p}, "")))
	r := do(t, client(t), "GET", "http://"+g.Addr("ingress")+"/x", nil, nil)
	if r.status != 503 || !strings.HasPrefix(string(r.body), "upstream connect error or disconnect/reset before headers") {
		t.Errorf("upstream down: %d %q, want Envoy's 503", r.status, r.body)
	}
}

func TestCalloutGoesThroughCluster(t *testing.T) {
	backend := echoServer(t, "backend")
	one := echoServer(t, "one")
	g := start(t, bootstrap(wasmFilter("probe", module(t, "hosttest/testdata/probe"), `{"name":"probe"}`),
		"- name: all\n  match: { prefix: / }\n  route: { cluster: one }",
		staticCluster("one", []string{port(t, one)}, "")+staticCluster("backend", []string{port(t, backend)}, "")))
	e := do(t, client(t), "GET", "http://"+g.Addr("ingress")+"/x", map[string]string{"x-probe": "call:backend:/lookup"}, nil).echo(t)
	if got := strings.Join(e.Headers["x-probe-call-status"], ","); got != "200" {
		t.Errorf("callout through cluster backend: x-probe-call-status %q, want 200 (headers %v)", got, e.Headers)
	}
	got := strings.Join(e.Headers["x-probe-call-body"], ",")
	if b, err := hex.DecodeString(strings.TrimPrefix(got, "hex:")); err == nil {
		got = string(b) // the probe hex-encodes values with non-printable bytes
	}
	if !strings.Contains(got, `"name":"backend"`) || !strings.Contains(got, `"path":"/lookup"`) {
		t.Errorf("callout body %q, want the backend's answer to /lookup", got)
	}
}

// TestStreamsLargeBodiesBothWays sends 8 MiB through the filter chain: the
// upstream echoes as it reads, and the client must see the echo begin
// while it still holds most of the request, so neither direction is
// buffered whole.
func TestStreamsLargeBodiesBothWays(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		rc.EnableFullDuplex()
		w.WriteHeader(200)
		rc.Flush()
		buf := make([]byte, 64<<10)
		for {
			n, err := r.Body.Read(buf)
			if n > 0 {
				w.Write(buf[:n])
				rc.Flush()
			}
			if err != nil {
				return
			}
		}
	}))
	t.Cleanup(up.Close)
	g := start(t, bootstrap(wasmFilter("probe", module(t, "hosttest/testdata/probe"), `{"name":"probe"}`),
		"- name: all\n  match: { prefix: / }\n  route: { cluster: up, timeout: 0s }", staticCluster("up", []string{port(t, up)}, "")))

	const total, chunk = 8 << 20, 64 << 10
	pr, pw := io.Pipe()
	echoStarted := make(chan struct{})
	sent := sha256.New()
	go func() {
		block := bytes.Repeat([]byte("0123456789abcdef"), chunk/16)
		for i := 0; i < total/chunk; i++ {
			if i == 4 {
				// Hold the rest of the request until the echo has begun.
				select {
				case <-echoStarted:
				case <-time.After(5 * time.Second):
					pw.CloseWithError(fmt.Errorf("no echo after %d KiB sent: the body is buffered", i*chunk>>10))
					return
				}
			}
			block[0] = byte(i)
			sent.Write(block)
			if _, err := pw.Write(block); err != nil {
				return
			}
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", "http://"+g.Addr("ingress")+"/stream", pr)
	req.Header.Set("x-probe", "req-body-upper")
	res, err := client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	got := sha256.New()
	first := make([]byte, 1)
	if _, err := io.ReadFull(res.Body, first); err != nil {
		t.Fatalf("reading the first echoed byte: %v", err)
	}
	close(echoStarted)
	got.Write(first)
	n, err := io.Copy(got, res.Body)
	if err != nil || n+1 != total {
		t.Fatalf("echo: %d bytes, err %v; want %d", n+1, err, total)
	}
	// The probe upper-cased each chunk on the way in.
	want := sha256.New()
	block := bytes.ToUpper(bytes.Repeat([]byte("0123456789abcdef"), chunk/16))
	for i := 0; i < total/chunk; i++ {
		b := append([]byte(nil), block...)
		b[0] = bytes.ToUpper([]byte{byte(i)})[0]
		want.Write(b)
	}
	if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Errorf("echoed body differs from the upper-cased request")
	}
}

// TestGracefulShutdownFinishesInFlight holds requests at the upstream,
// starts a shutdown, and checks that every one of them completes.
func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	const n = 6
	var arrived atomic.Int32
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Add(1)
		<-release
		io.WriteString(w, "done")
	}))
	t.Cleanup(up.Close)
	g := start(t, bootstrap(wasmFilter("probe", module(t, "hosttest/testdata/probe"), `{"name":"probe"}`),
		"- name: all\n  match: { prefix: / }\n  route: { cluster: up }", staticCluster("up", []string{port(t, up)}, "")))
	base := "http://" + g.Addr("ingress")
	c := client(t)
	var wg sync.WaitGroup
	results := make([]string, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := c.Get(base + "/work")
			if err != nil {
				results[i] = err.Error()
				return
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			results[i] = fmt.Sprintf("%d %s", res.StatusCode, b)
		}()
	}
	waitFor(t, 5*time.Second, "every request to reach the upstream", func() bool { return arrived.Load() == n })
	shut := make(chan error, 1)
	go func() { shut <- g.Shutdown(context.Background()) }()
	waitFor(t, 5*time.Second, "the listener to stop accepting", func() bool {
		_, err := (&http.Client{Timeout: time.Second}).Get(base + "/late")
		return err != nil
	})
	close(release)
	select {
	case err := <-shut:
		if err != nil {
			t.Errorf("Shutdown = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not return")
	}
	wg.Wait()
	for i, r := range results {
		if r != "200 done" {
			t.Errorf("in-flight request %d: %q, want 200 done", i, r)
		}
	}
}

// TestRouterAloneAndH2C: a chain with only the router (the load
// baseline), and HTTP/2 with prior knowledge (h2c) on codec_type AUTO.
func TestRouterAloneAndH2C(t *testing.T) {
	one := echoServer(t, "one")
	deadPort := closedPort(t)
	slow := slowServer(t)
	routes := `
- name: slow
  match: { prefix: /slow }
  route: { cluster: slow, timeout: 0.2s }
- name: dead
  match: { prefix: /dead }
  route: { cluster: dead }
- name: all
  match: { prefix: / }
  route: { cluster: one, prefix_rewrite: /v1/ }
`
	g := start(t, bootstrap("", routes, staticCluster("one", []string{port(t, one)}, "")+staticCluster("dead", []string{deadPort}, "")+staticCluster("slow", []string{port(t, slow)}, "")))
	base := "http://" + g.Addr("ingress")
	c := client(t)
	r := do(t, c, "GET", base+"/x", nil, nil)
	if e := r.echo(t); e.Path != "/v1/x" || e.Headers["x-envoy-original-path"][0] != "/x" || r.header.Get("server") != "envoy" {
		t.Errorf("router alone: upstream saw %s (original %v), server %q", e.Path, e.Headers["x-envoy-original-path"], r.header.Get("server"))
	}
	if r := do(t, c, "GET", base+"/dead", nil, nil); r.status != 503 {
		t.Errorf("router alone, upstream down: %d %q, want 503", r.status, r.body)
	}
	if r := do(t, c, "GET", base+"/slow", nil, nil); r.status != 504 {
		t.Errorf("router alone, slow upstream: %d %q, want 504", r.status, r.body)
	}

	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(tr.CloseIdleConnections)
	res, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get(base + "/h2")
	if err != nil {
		t.Fatalf("h2c: %v", err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.ProtoMajor != 2 || res.StatusCode != 200 {
		t.Errorf("h2c: %s %d, want HTTP/2 200", res.Proto, res.StatusCode)
	}
}

// TestWasmFilterSettings: vm_config.environment_variables reach the VM,
// and failure_policy FAIL_OPEN lets requests through once the VM failed.
func TestWasmFilterSettings(t *testing.T) {
	one := echoServer(t, "one")
	f := wasmFilter("probe", module(t, "hosttest/testdata/probe"), `{"name":"probe"}`)
	f = strings.Replace(f, "      vm_config:\n", "      failure_policy: FAIL_OPEN\n      vm_config:\n        environment_variables: { key_values: { GREETING: hello } }\n", 1)
	y := bootstrap(f, "- name: all\n  match: { prefix: / }\n  route: { cluster: one }", staticCluster("one", []string{port(t, one)}, ""))
	bs, err := Parse([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Compile(bs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// One worker, so that the VM that fails is the one every later request meets.
	g, err := Start(cfg, RunOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	c := client(t)
	base := "http://" + g.Addr("ingress")
	if e := do(t, c, "GET", base+"/x", map[string]string{"x-probe": "env:GREETING"}, nil).echo(t); strings.Join(e.Headers["x-probe-env"], ",") != "hello" {
		t.Errorf("x-probe-env = %v, want hello from vm_config.environment_variables", e.Headers["x-probe-env"])
	}
	if r := do(t, c, "GET", base+"/x", map[string]string{"x-probe": "panic-req"}, nil); r.status != 200 {
		t.Errorf("a panicking filter under FAIL_OPEN: %d %q, want the request to go on (200)", r.status, r.body)
	}
	if r := do(t, c, "GET", base+"/x", map[string]string{"x-probe": "add-req:x-probed=1"}, nil); r.status != 200 || len(r.echo(t).Headers["x-probed"]) != 0 {
		t.Errorf("after the VM failed under FAIL_OPEN: %d, probe still ran: %v", r.status, r.echo(t).Headers["x-probed"])
	}
}

// TestClientGoneResetsTheStream: a client that hangs up mid-request
// resets the stream, and the upstream request is cancelled with it.
func TestClientGoneResetsTheStream(t *testing.T) {
	arrived, cancelled := make(chan struct{}), make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		select {
		case <-r.Context().Done():
			close(cancelled)
		case <-time.After(5 * time.Second):
		}
	}))
	t.Cleanup(up.Close)
	g := start(t, bootstrap(wasmFilter("probe", module(t, "hosttest/testdata/probe"), `{"name":"probe"}`),
		"- name: all\n  match: { prefix: / }\n  route: { cluster: up }", staticCluster("up", []string{port(t, up)}, "")))
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+g.Addr("ingress")+"/hang", nil)
	go func() {
		<-arrived
		cancel()
	}()
	if _, err := client(t).Do(req); err == nil {
		t.Fatal("the request succeeded; want it cancelled")
	}
	select {
	case <-cancelled:
	case <-time.After(3 * time.Second):
		t.Fatal("the upstream request was not cancelled after the client went away")
	}
	waitFor(t, 3*time.Second, "no request in flight", func() bool {
		return strings.Contains(g.Prometheus(), `envoy_http_downstream_rq_active{envoy_http_conn_manager_prefix="ingress_http"} 0`)
	})
}

// TestRequestHeaderLimit: request headers over max_request_headers_kb
// (Envoy's default 60 KiB) get 431 and never reach a filter.
func TestRequestHeaderLimit(t *testing.T) {
	up := echoServer(t, "up")
	render := func(extra string) string {
		yaml := bootstrap(wasmFilter("probe", module(t, "hosttest/testdata/probe"), `{"name":"probe"}`),
			"- name: all\n  match: { prefix: / }\n  route: { cluster: up }", staticCluster("up", []string{port(t, up)}, ""))
		return strings.Replace(yaml, "          stat_prefix: ingress_http\n", "          stat_prefix: ingress_http\n"+extra, 1)
	}
	byDefault, raised := start(t, render("")), start(t, render("          max_request_headers_kb: 96\n"))
	c := client(t)
	for _, tc := range []struct {
		name   string
		g      *Gateway
		kib    int
		status int
	}{
		{"50 KiB, default limit", byDefault, 50, 200},
		{"80 KiB, default limit", byDefault, 80, 431},
		{"80 KiB, max_request_headers_kb 96", raised, 80, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, c, "GET", "http://"+tc.g.Addr("ingress")+"/x", map[string]string{"x-big": strings.Repeat("a", tc.kib<<10)}, nil)
			if r.status != tc.status {
				t.Errorf("%d KiB of headers: %d, want %d", tc.kib, r.status, tc.status)
			}
		})
	}
}

// TestTwoFiltersOfOneName: Envoy accepts two http filters of one name (two
// envoy.filters.http.wasm, say); typed_per_filter_config under that name
// then switches both off.
func TestTwoFiltersOfOneName(t *testing.T) {
	one := echoServer(t, "one")
	mod := module(t, "hosttest/testdata/probe")
	second := strings.Replace(wasmFilter("probe", mod, `{"name":"probe-2"}`), "      name: probe\n      root_id: probe\n", "      name: probe-2\n      root_id: probe-2\n", 1)
	routes := `
- name: public
  match: { prefix: /public/ }
  route: { cluster: one }
  typed_per_filter_config:
    probe:
      "@type": type.googleapis.com/envoy.config.route.v3.FilterConfig
      disabled: true
- name: api
  match: { prefix: / }
  route: { cluster: one }
`
	g := start(t, bootstrap(wasmFilter("probe", mod, `{"name":"probe"}`)+second, routes, staticCluster("one", []string{port(t, one)}, "")))
	base, c := "http://"+g.Addr("ingress"), client(t)
	script := map[string]string{"x-probe": "add-req:x-probed=yes", "x-probe-2": "add-req:x-probed=yes"}
	if e := do(t, c, "GET", base+"/api", script, nil).echo(t); len(e.Headers["x-probed"]) != 2 {
		t.Errorf("GET /api: upstream saw x-probed %v, want it from both filters", e.Headers["x-probed"])
	}
	if e := do(t, c, "GET", base+"/public/x", script, nil).echo(t); len(e.Headers["x-probed"]) != 0 {
		t.Errorf("GET /public/x: upstream saw x-probed %v, want both filters switched off", e.Headers["x-probed"])
	}
}
