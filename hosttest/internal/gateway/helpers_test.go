package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/concierge-wasm/concierge/hosttest/internal/build"
)

var (
	builderOnce sync.Once
	builder     *build.Builder
)

// module builds a plugin folder (relative to the repository root) and
// returns the path of its .wasm.
func module(t testing.TB, dir string) string {
	t.Helper()
	builderOnce.Do(func() { builder = build.New(build.DefaultCacheDir()) })
	p, err := builder.Build(filepath.Join("..", "..", "..", dir))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// testLog sends the gateway's log lines to t.Log while the test runs.
type testLog struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// start parses, compiles and starts a bootstrap, closed at cleanup.
func start(t testing.TB, yaml string) *Gateway {
	t.Helper()
	bs, err := Parse([]byte(yaml))
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, yaml)
	}
	cfg, err := Compile(bs, Options{})
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	tl := &testLog{t: t}
	g, err := Start(cfg, RunOptions{Workers: 2, Log: NewLogger(tl, LevelInfo)})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		g.Close()
		tl.mu.Lock()
		tl.done = true
		tl.mu.Unlock()
	})
	return g
}

// compileErr compiles a bootstrap that must be refused, and returns the
// refusal.
func compileErr(t testing.TB, yaml string) (string, *Config) {
	t.Helper()
	bs, err := Parse([]byte(yaml))
	if err != nil {
		return err.Error(), nil
	}
	cfg, err := Compile(bs, Options{})
	if err == nil {
		return "", cfg
	}
	return err.Error(), cfg
}

// echo is an upstream that answers with what it received, as JSON.
type echoed struct {
	Name    string              `json:"name"`
	Method  string              `json:"method"`
	Path    string              `json:"path"`
	Host    string              `json:"host"`
	Headers map[string][]string `json:"headers"`
	Body    string              `json:"body"`
}

func echoServer(t testing.TB, name string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			w.WriteHeader(http.StatusOK)
			return
		}
		b, _ := io.ReadAll(r.Body)
		hs := map[string][]string{}
		for k, v := range r.Header {
			hs[strings.ToLower(k)] = v
		}
		w.Header().Set("content-type", "application/json")
		w.Header().Set("server", "echo")
		json.NewEncoder(w).Encode(echoed{Name: name, Method: r.Method, Path: r.RequestURI, Host: r.Host, Headers: hs, Body: string(b)})
	}))
	t.Cleanup(s.Close)
	return s
}

func port(t testing.TB, s *httptest.Server) string {
	t.Helper()
	_, p, err := net.SplitHostPort(s.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// client is an HTTP client that talks only to the gateway and keeps no
// connection between tests.
func client(t testing.TB) *http.Client {
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) echo(t testing.TB) echoed {
	t.Helper()
	var e echoed
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("upstream answer is not the echo JSON (status %d): %s", r.status, r.body)
	}
	return e
}

func do(t testing.TB, c *http.Client, method, url string, headers map[string]string, body []byte) resp {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		if k == "host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, url, err)
	}
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

// waitFor polls cond every 20ms for at most d.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// bootstrap renders a test bootstrap: one listener on 127.0.0.1:0 with the
// given wasm filters (YAML list items), routes (YAML list items under the
// virtual host) and clusters (YAML list items).
func bootstrap(filters, routes, clusters string) string {
	return fmt.Sprintf(`
admin:
  address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
static_resources:
  listeners:
  - name: ingress
    address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress_http
          use_remote_address: true
          generate_request_id: false
          normalize_path: true
          merge_slashes: true
          path_with_escaped_slashes_action: REJECT_REQUEST
          route_config:
            name: test
            virtual_hosts:
            - name: test
              domains: ["*"]
              routes:
%s
          http_filters:
%s
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
%s
`, indent(routes, 14), indent(filters, 10), indent(clusters, 2))
}

func indent(s string, n int) string {
	pad := strings.Repeat(" ", n)
	var out []string
	for _, line := range strings.Split(strings.Trim(s, "\n"), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		out = append(out, pad+line)
	}
	return strings.Join(out, "\n")
}

// wasmFilter renders one wasm http filter.
func wasmFilter(name, path, config string) string {
	return fmt.Sprintf(`- name: %s
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
    config:
      name: %s
      root_id: %s
      configuration:
        "@type": type.googleapis.com/google.protobuf.StringValue
        value: '%s'
      vm_config:
        vm_id: %s
        runtime: envoy.wasm.runtime.v8
        code: { local: { filename: %s } }
`, name, name, name, config, name, path)
}

// staticCluster renders a STATIC cluster over 127.0.0.1 ports, with extra
// YAML appended (health_checks, ...).
func staticCluster(name string, ports []string, extra string) string {
	var eps []string
	for _, p := range ports {
		eps = append(eps, fmt.Sprintf("      - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: %s } } }", p))
	}
	return fmt.Sprintf(`- name: %s
  type: STATIC
  connect_timeout: 0.5s
  load_assignment:
    cluster_name: %s
    endpoints:
    - lb_endpoints:
%s
%s
`, name, name, strings.Join(eps, "\n"), indent(extra, 2))
}

// fastHealthCheck is cluster YAML for staticCluster: an HTTP health check
// on /healthz every 50ms that takes a host out after one failure, and no
// panic mode, so that an unhealthy host really leaves rotation.
const fastHealthCheck = `
health_checks:
- timeout: 0.5s
  interval: 0.05s
  unhealthy_threshold: 1
  healthy_threshold: 1
  http_health_check: { path: /healthz }
common_lb_config: { healthy_panic_threshold: { value: 0 } }
`

// closedPort is a loopback port nothing listens on: a server's, closed.
func closedPort(t testing.TB) string {
	t.Helper()
	s := httptest.NewServer(http.NotFoundHandler())
	p := port(t, s)
	s.Close()
	return p
}

// slowServer answers nothing for 5 seconds, or until its request is
// cancelled: an upstream for route timeouts.
func slowServer(t testing.TB) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	t.Cleanup(s.Close)
	return s
}
