package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"
)

// withHCM adds YAML under the connection manager of a test bootstrap.
func withHCM(yaml, extra string) string {
	return strings.Replace(yaml, "          stat_prefix: ingress_http\n", "          stat_prefix: ingress_http\n"+indent(extra, 10)+"\n", 1)
}

// h2cClient speaks HTTP/2 with prior knowledge.
func h2cClient(t testing.TB) *http.Client {
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// seen is what a test upstream received.
type seen struct {
	header, trailer http.Header
}

// recordingServer records each request it receives whole, headers and
// trailers (one the gateway gave up on midway is not reported, so it
// cannot be taken for a later one), and answers 200 with a response
// trailer x-resp-trailer: t.
func recordingServer(t testing.TB) (*httptest.Server, chan seen) {
	got := make(chan seen, 16)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			return
		}
		got <- seen{header: r.Header.Clone(), trailer: r.Trailer.Clone()}
		w.Header().Set("Trailer", "x-resp-trailer")
		w.WriteHeader(200)
		io.WriteString(w, "ok")
		w.Header().Set("x-resp-trailer", "t")
	}))
	t.Cleanup(s.Close)
	return s, got
}

func upstreamSaw(t testing.TB, got chan seen) (seen, bool) {
	t.Helper()
	select {
	case s := <-got:
		return s, true
	default:
		return seen{}, false
	}
}

// TestHeadersWithUnderscoresAction: the HTTP connection manager's
// common_http_protocol_options.headers_with_underscores_action, over real
// sockets on HTTP/1.1 and h2c: ALLOW passes x_user_id on, DROP_HEADER
// removes it (and counts it), REJECT_REQUEST answers HTTP/1 with 400 and
// a closed connection and resets the HTTP/2 stream; neither reaches a
// filter or the upstream.
func TestHeadersWithUnderscoresAction(t *testing.T) {
	up, got := recordingServer(t)
	yaml := bootstrap(wasmFilter("probe", module(t, "hosttest/testdata/probe"), `{"name":"probe"}`),
		"- name: all\n  match: { prefix: / }\n  route: { cluster: up, timeout: 5s }", staticCluster("up", []string{port(t, up)}, ""))
	gateways := map[string]*Gateway{"": start(t, yaml)}
	for _, a := range []string{"ALLOW", "DROP_HEADER", "REJECT_REQUEST"} {
		gateways[a] = start(t, withHCM(yaml, "common_http_protocol_options: { headers_with_underscores_action: "+a+" }"))
	}
	h1, h2 := client(t), h2cClient(t)
	for _, tc := range []struct {
		action, proto string
		status        int    // 0: the stream is reset
		upstream      string // what the upstream gets as x_user_id ("-": not called)
		stat          string
	}{
		{"", "http1", 200, "admin", ""},
		{"ALLOW", "http1", 200, "admin", ""},
		{"ALLOW", "http2", 200, "admin", ""},
		{"DROP_HEADER", "http1", 200, "", "envoy_http1_dropped_headers_with_underscores 1"},
		{"DROP_HEADER", "http2", 200, "", "envoy_http2_dropped_headers_with_underscores 1"},
		{"REJECT_REQUEST", "http1", 400, "-", "envoy_http1_requests_rejected_with_underscores_in_headers 1"},
		{"REJECT_REQUEST", "http2", 0, "-", "envoy_http2_requests_rejected_with_underscores_in_headers 1"},
	} {
		t.Run(tc.action+" "+tc.proto, func(t *testing.T) {
			g := gateways[tc.action]
			c := h1
			if tc.proto == "http2" {
				c = h2
			}
			req, _ := http.NewRequest("GET", "http://"+g.Addr("ingress")+"/x", nil)
			req.Header["x_user_id"] = []string{"admin"}
			req.Header.Set("x-ok", "1")
			req.Header.Set("x-probe", "echo-req-headers")
			res, err := c.Do(req)
			switch {
			case tc.status == 0:
				if err == nil {
					res.Body.Close()
					t.Fatalf("status %d, want the stream reset", res.StatusCode)
				}
			case err != nil:
				t.Fatal(err)
			default:
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != tc.status {
					t.Fatalf("status %d %q, want %d", res.StatusCode, body, tc.status)
				}
				if tc.status == 400 && (string(body) != "Bad Request" || !res.Close || res.Header.Get("server") != "envoy") {
					t.Errorf("400: body %q, connection close %v, server %q; want Envoy's local reply and the connection closed", body, res.Close, res.Header.Get("server"))
				}
			}
			s, called := upstreamSaw(t, got)
			switch {
			case tc.upstream == "-":
				if called {
					t.Errorf("a rejected request reached the upstream: %v", s.header)
				}
			case !called:
				t.Fatal("the upstream was not called")
			default:
				if v := strings.Join(s.header.Values("x_user_id"), ","); v != tc.upstream {
					t.Errorf("upstream x_user_id = %q, want %q", v, tc.upstream)
				}
				if s.header.Get("x-ok") != "1" {
					t.Errorf("upstream x-ok = %q, want 1", s.header.Get("x-ok"))
				}
			}
			if tc.stat != "" && !strings.Contains(g.Prometheus(), "\n"+tc.stat+"\n") {
				t.Errorf("/stats/prometheus lacks %q", tc.stat)
			}
			if tc.stat != "" {
				dotted := strings.Replace(strings.TrimPrefix(tc.stat, "envoy_"), "_", ".", 1)
				dotted = strings.Replace(dotted, " ", ": ", 1)
				found := false
				for _, s := range g.envoyStats() {
					if fmt.Sprintf("%s: %d", s.name, s.value) == dotted {
						found = true
					}
				}
				if !found {
					t.Errorf("/stats lacks %q", dotted)
				}
			}
		})
	}
}

// clusterTrailers is cluster YAML (for staticCluster) enabling trailers on
// its HTTP/1 codec.
const clusterTrailers = `
typed_extension_protocol_options:
  envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
    "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
    explicit_http_config:
      http_protocol_options: { enable_trailers: true }
`

// TestTrailers: HTTP/1 request and response trailers cross the gateway
// only with http_protocol_options.enable_trailers, as Envoy's HTTP/1
// codecs have it, downstream on the connection manager and upstream on the
// cluster; HTTP/2 always carries them. headers_with_underscores_action
// applies to trailer names too.
func TestTrailers(t *testing.T) {
	up, got := recordingServer(t)
	routes := "- name: all\n  match: { prefix: / }\n  route: { cluster: up, timeout: 5s }"
	yaml := bootstrap(wasmFilter("probe", module(t, "hosttest/testdata/probe"), `{"name":"probe"}`),
		routes, staticCluster("up", []string{port(t, up)}, clusterTrailers))
	clusterOff := start(t, withHCM(bootstrap(wasmFilter("probe", module(t, "hosttest/testdata/probe"), `{"name":"probe"}`),
		routes, staticCluster("up", []string{port(t, up)}, "")), "http_protocol_options: { enable_trailers: true }"))
	byDefault := start(t, yaml)
	enabled := start(t, withHCM(yaml, "http_protocol_options: { enable_trailers: true }"))
	direct := bootstrap("", routes, staticCluster("up", []string{port(t, up)}, clusterTrailers))
	routerOnly := start(t, direct)
	routerOnlyEnabled := start(t, withHCM(direct, "http_protocol_options: { enable_trailers: true }"))
	routerOnlyDropping := start(t, withHCM(direct, "http_protocol_options: { enable_trailers: true }\ncommon_http_protocol_options: { headers_with_underscores_action: DROP_HEADER }"))
	routerOnlyRejecting := start(t, withHCM(direct, "http_protocol_options: { enable_trailers: true }\ncommon_http_protocol_options: { headers_with_underscores_action: REJECT_REQUEST }"))
	dropping := start(t, withHCM(yaml, "http_protocol_options: { enable_trailers: true }\ncommon_http_protocol_options: { headers_with_underscores_action: DROP_HEADER }"))
	rejecting := start(t, withHCM(yaml, "http_protocol_options: { enable_trailers: true }\ncommon_http_protocol_options: { headers_with_underscores_action: REJECT_REQUEST }"))
	h1, h2 := client(t), h2cClient(t)
	for _, tc := range []struct {
		name    string
		g       *Gateway
		c       *http.Client
		status  int    // 0: reset
		trailer string // the upstream's request trailers, "-" when not called
		probe   bool   // the filter saw the trailers
		resp    string // the client's x-resp-trailer
	}{
		{"http1, trailers off (Envoy's default)", byDefault, h1, 200, "", false, ""},
		{"http1, router only, trailers off", routerOnly, h1, 200, "", false, ""},
		{"http1, router only, enable_trailers", routerOnlyEnabled, h1, 200, "x-checksum=abc x_user_id=admin", false, "t"},
		{"http2, router only", routerOnly, h2, 200, "x-checksum=abc x_user_id=admin", false, "t"},
		{"http1, router only, DROP_HEADER", routerOnlyDropping, h1, 200, "x-checksum=abc", false, "t"},
		{"http1, router only, REJECT_REQUEST", routerOnlyRejecting, h1, 400, "", false, ""},
		{"http2, router only, REJECT_REQUEST", routerOnlyRejecting, h2, 0, "", false, ""},
		{"http1, enable_trailers", enabled, h1, 200, "x-checksum=abc x_user_id=admin", true, "t"},
		{"http1, enable_trailers, not on the cluster", clusterOff, h1, 200, "", true, ""},
		{"http2, not on the cluster", clusterOff, h2, 200, "", true, ""},
		{"http2, trailers always", byDefault, h2, 200, "x-checksum=abc x_user_id=admin", true, "t"},
		{"http1, DROP_HEADER", dropping, h1, 200, "x-checksum=abc", true, "t"},
		{"http2, DROP_HEADER", dropping, h2, 200, "x-checksum=abc", true, "t"},
		{"http1, REJECT_REQUEST", rejecting, h1, 400, "", false, ""},
		{"http2, REJECT_REQUEST", rejecting, h2, 0, "", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, l := range tc.g.listeners {
				if l.host != nil {
					l.host.ClearLogs()
				}
			}
			for len(got) > 0 { // what an earlier rejected request left
				<-got
			}
			req, _ := http.NewRequest("POST", "http://"+tc.g.Addr("ingress")+"/t", io.MultiReader(strings.NewReader("body")))
			req.ContentLength = -1
			req.Trailer = http.Header{"X-Checksum": {"abc"}, "x_user_id": {"admin"}}
			req.Header.Set("x-probe", "echo-req-trailers")
			res, err := tc.c.Do(req)
			if tc.status == 0 {
				if err == nil {
					res.Body.Close()
					t.Fatalf("status %d, want the stream reset", res.StatusCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.status)
			}
			if tc.status == 400 && !res.Close {
				t.Error("400 for a rejected trailer: the connection stays open, want it closed")
			}
			if v := res.Trailer.Get("x-resp-trailer"); v != tc.resp {
				t.Errorf("response trailer x-resp-trailer = %q, want %q", v, tc.resp)
			}
			if tc.status != 200 {
				return
			}
			var s seen
			select {
			case s = <-got:
			case <-time.After(5 * time.Second):
				t.Fatal("upstream not called")
			}
			if got := pairsOf(s.trailer); got != tc.trailer {
				t.Errorf("upstream request trailers %q, want %q", got, tc.trailer)
			}
			// The filter's on_request_trailers ran before the upstream
			// read the end of the body, so its log line is there if ever.
			logged := false
			if h := tc.g.listeners[0].host; h != nil {
				for _, l := range h.Logs() {
					if strings.Contains(l.Message, "req trailers=") {
						logged = true
					}
				}
			}
			if logged != tc.probe {
				t.Errorf("the filter saw request trailers: %v, want %v", logged, tc.probe)
			}
		})
	}
}

// pairsOf renders a header as sorted lower-case "k=v" pairs.
func pairsOf(h http.Header) string {
	var out []string
	for k, vs := range h {
		for _, v := range vs {
			out = append(out, strings.ToLower(k)+"="+v)
		}
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// TestJWTAuthStripsSpoofedIdentityEndToEnd: jwt-auth behind a gateway that
// lets underscores and trailers through (ALLOW, enable_trailers): on a
// route its rules make public, identity headers in any spelling, in the
// headers and in the trailers, never reach the upstream.
func TestJWTAuthStripsSpoofedIdentityEndToEnd(t *testing.T) {
	up, got := recordingServer(t)
	cfg := `{"providers":[{"issuer":"https://issuer.example","algorithms":["HS256"],"hmac_secret":"0123456789abcdef0123456789abcdef"}],"rules":[{"match":{"prefix":"/public/"},"enabled":false}]}`
	yaml := withHCM(bootstrap(wasmFilter("jwt-auth", module(t, "plugins/jwt-auth"), cfg),
		"- name: all\n  match: { prefix: / }\n  route: { cluster: up, timeout: 5s }", staticCluster("up", []string{port(t, up)}, clusterTrailers)),
		"http_protocol_options: { enable_trailers: true }")
	g := start(t, yaml)
	for name, c := range map[string]*http.Client{"http1": client(t), "http2": h2cClient(t)} {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(context.Background(), "POST", "http://"+g.Addr("ingress")+"/public/x", strings.NewReader("body"))
			req.ContentLength = -1
			req.Header["x_user_id"] = []string{"admin"}
			req.Header["X-User_Roles"] = []string{"admin"}
			req.Header.Set("X-User-Id", "admin")
			req.Trailer = http.Header{"X-User-Id": {"admin"}, "x_consumer": {"evil"}, "X-Checksum": {"abc"}}
			res, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 200 {
				t.Fatalf("status %d, want 200", res.StatusCode)
			}
			var s seen
			select {
			case s = <-got:
			case <-time.After(5 * time.Second):
				t.Fatal("upstream not called")
			}
			for k := range s.header {
				if n := strings.ReplaceAll(strings.ToLower(k), "_", "-"); strings.HasPrefix(n, "x-user-") || strings.HasPrefix(n, "x-consumer") {
					t.Errorf("the upstream got header %s: %q", k, s.header[k])
				}
			}
			if got := pairsOf(s.trailer); got != "x-checksum=abc" {
				t.Errorf("upstream request trailers %q, want only x-checksum=abc", got)
			}
		})
	}
}

// TestCodecOptionsCompile: the codec options the gateway emulates compile
// silently; the rest of their messages are accepted with a warning naming
// the field.
func TestCodecOptionsCompile(t *testing.T) {
	yaml := withHCM(bootstrap("", oneRoute, oneCluster("")),
		"common_http_protocol_options: { headers_with_underscores_action: DROP_HEADER, idle_timeout: 60s }\nhttp_protocol_options: { enable_trailers: true, accept_http_10: true }")
	msg, cfg := compileErr(t, yaml)
	if msg != "" {
		t.Fatalf("Compile: %s", msg)
	}
	h := cfg.Listeners[0].HCM
	if h.Underscores.String() != "DROP_HEADER" || !h.HTTP1Trailers {
		t.Errorf("HCM Underscores %v, HTTP1Trailers %v; want DROP_HEADER, true", h.Underscores, h.HTTP1Trailers)
	}
	warnings := strings.Join(cfg.Warnings, "\n")
	for _, want := range []string{"common_http_protocol_options.idle_timeout: accepted, not emulated", "http_protocol_options.accept_http_10: accepted, not emulated"} {
		if !strings.Contains(warnings, want) {
			t.Errorf("warnings lack %q:\n%s", want, warnings)
		}
	}
	for _, quiet := range []string{"headers_with_underscores_action", "enable_trailers"} {
		if strings.Contains(warnings, quiet) {
			t.Errorf("warnings name %s, which the gateway emulates:\n%s", quiet, warnings)
		}
	}
}

// TestLocalYAMLRejectsUnderscores: the shipped envoy/local.yaml refuses
// header names with '_' at the edge, so x_user_id never reaches the public
// route, where jwt-auth does not run.
func TestLocalYAMLRejectsUnderscores(t *testing.T) {
	g, _ := localGateway(t)
	base := "http://" + g.Addr("ingress")
	c := client(t)
	if r := do(t, c, "GET", base+"/public/status", map[string]string{"x_user_id": "admin"}, nil); r.status != 400 {
		t.Errorf("GET /public/status with x_user_id: %d %q, want 400", r.status, r.body)
	}
	r := do(t, c, "GET", base+"/public/status", map[string]string{"x-user-id": "admin"}, nil)
	var a demoAnswer
	if err := json.Unmarshal(r.body, &a); err != nil || r.status != 200 {
		t.Fatalf("GET /public/status: %d %s", r.status, r.body)
	}
	if v, ok := a.Headers["x-user-id"]; ok {
		t.Errorf("the public service saw x-user-id: %q (the route removes identity headers)", v)
	}
}
