package gateway

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// rulesBootstrap renders jwt-auth in front of two virtual hosts: the
// public one (public.example.com, jwt-auth off by a host rule) and the
// catch-all with the protected API, where /open/ is public by a path rule.
// hcm is extra HTTP connection manager YAML (strip options, path options).
func rulesBootstrap(t *testing.T, hcm string) (*Gateway, string) {
	t.Helper()
	public, open, api := echoServer(t, "public"), echoServer(t, "open"), echoServer(t, "api")
	cfg := `{"providers":[{"name":"main","issuer":"https://hmac.example","algorithms":["HS256"],"hmac_secret":"0123456789abcdef0123456789abcdef"}],` +
		`"rules":[{"match":{"host":"public.example.com"},"enabled":false},{"match":{"prefix":"/open/"},"enabled":false}]}`
	y := fmt.Sprintf(`
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
          generate_request_id: false
%s
          route_config:
            name: test
            virtual_hosts:
            - name: public
              domains: ["public.example.com"]
              routes:
              - name: public
                match: { prefix: / }
                route: { cluster: public }
            - name: api
              domains: ["*"]
              routes:
              - name: open
                match: { prefix: /open/ }
                route: { cluster: open }
              - name: api
                match: { prefix: / }
                route: { cluster: api }
          http_filters:
%s
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
%s
`, indent(hcm, 10), indent(wasmFilter("jwt-auth", module(t, "plugins/jwt-auth"), cfg), 10),
		indent(staticCluster("public", []string{port(t, public)}, "")+staticCluster("open", []string{port(t, open)}, "")+
			staticCluster("api", []string{port(t, api)}, ""), 2))
	g := start(t, y)
	return g, g.Addr("ingress")
}

// rawGet sends one HTTP/1.1 GET with the request target and Host header
// exactly as given (net/http's client would clean both), and reads the
// answer.
func rawGet(t testing.TB, addr, target, host string) resp {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", target, host); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("GET %s (Host %s): %v", target, host, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

// wantReached checks a request got 200 from the named upstream, or the
// given denial status from the gateway.
func wantReached(t testing.TB, r resp, what string, status int, upstream string) {
	t.Helper()
	if r.status != status {
		t.Errorf("%s: status %d (%s), want %d", what, r.status, strings.TrimSpace(string(r.body)), status)
		return
	}
	if upstream != "" {
		if e := r.echo(t); e.Name != upstream {
			t.Errorf("%s: reached %s, want %s", what, e.Name, upstream)
		}
	}
}

// TestHostRuleFollowsTheRouter: a jwt-auth host rule that switches the
// filter off applies only to requests the router sends to that virtual
// host. Envoy selects the virtual host on :authority as sent (port and
// trailing dot included) unless the connection manager strips them, and
// then it rewrites :authority before the filters see it.
func TestHostRuleFollowsTheRouter(t *testing.T) {
	t.Run("no stripping", func(t *testing.T) {
		_, addr := rulesBootstrap(t, "")
		wantReached(t, rawGet(t, addr, "/x", "public.example.com"), "public.example.com", 200, "public")
		wantReached(t, rawGet(t, addr, "/x", "PUBLIC.example.com"), "PUBLIC.example.com", 200, "public")
		// Each of these reached the protected API without a token (200).
		for _, host := range []string{"public.example.com:8080", "public.example.com.", "public.example.com:", "public.example.com.:80"} {
			wantReached(t, rawGet(t, addr, "/x", host), host, 401, "")
		}
	})
	t.Run("strip_any_host_port", func(t *testing.T) {
		_, addr := rulesBootstrap(t, "strip_any_host_port: true")
		r := rawGet(t, addr, "/x", "public.example.com:8080")
		wantReached(t, r, "public.example.com:8080", 200, "public")
		if e := r.echo(t); e.Host != "public.example.com" {
			t.Errorf("upstream saw Host %q, want public.example.com (the port stripped)", e.Host)
		}
		wantReached(t, rawGet(t, addr, "/x", "public.example.com:"), "public.example.com: (no port to strip)", 401, "")
		wantReached(t, rawGet(t, addr, "/x", "public.example.com."), "public.example.com. (no strip_trailing_host_dot)", 401, "")
	})
	t.Run("strip_matching_host_port", func(t *testing.T) {
		_, addr := rulesBootstrap(t, "strip_matching_host_port: true")
		_, lport, _ := net.SplitHostPort(addr)
		wantReached(t, rawGet(t, addr, "/x", "public.example.com:"+lport), "the listener's port", 200, "public")
		wantReached(t, rawGet(t, addr, "/x", "public.example.com:1"), "another port", 401, "")
	})
	t.Run("strip_trailing_host_dot", func(t *testing.T) {
		_, addr := rulesBootstrap(t, "strip_trailing_host_dot: true\nstrip_any_host_port: true")
		wantReached(t, rawGet(t, addr, "/x", "public.example.com."), "public.example.com.", 200, "public")
		wantReached(t, rawGet(t, addr, "/x", "public.example.com.:8080"), "public.example.com.:8080", 200, "public")
	})
}

// TestPathRuleFollowsTheRouter: with normalize_path off (Envoy's default)
// the router matches the path as sent, so a rule that switches jwt-auth
// off must not apply to a path that only normalizes into its prefix; and
// a '#' in the request target is refused, as Envoy does, rather than cut
// by some readers and forwarded by others.
func TestPathRuleFollowsTheRouter(t *testing.T) {
	_, addr := rulesBootstrap(t, "")
	wantReached(t, rawGet(t, addr, "/open/p", "api.example.com"), "/open/p", 200, "open")
	// Both reached an upstream without a token (200).
	wantReached(t, rawGet(t, addr, "/api/orders/../../open/p", "api.example.com"), "/api/orders/../../open/p", 401, "")
	wantReached(t, rawGet(t, addr, "/open/x#/../../x/secret.txt", "api.example.com"), "/open/x#/../../x/secret.txt", 400, "")
	wantReached(t, rawGet(t, addr, "/api?q=#x", "api.example.com"), "a '#' in the query", 400, "")
	// The rule still holds for the path it names, with dot segments that
	// stay inside it.
	wantReached(t, rawGet(t, addr, "/open/a/../p", "api.example.com"), "/open/a/../p", 200, "open")

	t.Run("h2c", func(t *testing.T) {
		tr := &http.Transport{Protocols: new(http.Protocols)}
		tr.Protocols.SetUnencryptedHTTP2(true)
		t.Cleanup(tr.CloseIdleConnections)
		for target, want := range map[string]int{"/open/p": 200, "/open/x#/../../x/secret.txt": 400, "/api/orders/../../open/p": 401} {
			req := &http.Request{Method: "GET", URL: &url.URL{Scheme: "http", Host: addr, Opaque: target}, Host: "api.example.com", Header: http.Header{}}
			res, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Do(req)
			if err != nil {
				t.Fatalf("h2c GET %s: %v", target, err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.ProtoMajor != 2 || res.StatusCode != want {
				t.Errorf("h2c GET %s: %s %d, want HTTP/2 %d", target, res.Proto, res.StatusCode, want)
			}
		}
	})

	t.Run("normalize_path on", func(t *testing.T) {
		_, addr := rulesBootstrap(t, "normalize_path: true\nmerge_slashes: true")
		// The connection manager normalizes first: filters and router agree.
		wantReached(t, rawGet(t, addr, "/api/orders/../../open/p", "api.example.com"), "normalized into /open/p", 200, "open")
		wantReached(t, rawGet(t, addr, "/open/x#/../../x/secret.txt", "api.example.com"), "'#' with normalize_path", 400, "")
	})
}
