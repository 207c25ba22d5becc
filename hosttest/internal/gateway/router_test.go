package gateway

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRouterRepliesReachTheFilters: the answers Envoy's router gives by
// itself (no route, a direct response, no healthy host, a refused
// connection) run through the encoder filters, which see Envoy's status,
// body, response code details, response flags and upstream attributes.
func TestRouterRepliesReachTheFilters(t *testing.T) {
	deadPort := closedPort(t)
	sick := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }))
	t.Cleanup(sick.Close)
	up := echoServer(t, "up")
	routes := `
- name: refused
  match: { prefix: /refused }
  route: { cluster: dead }
- name: sick
  match: { prefix: /sick }
  route: { cluster: sick }
- name: teapot
  match: { path: /direct }
  direct_response: { status: 418, body: { inline_string: "short and stout" } }
- name: up
  match: { prefix: /up }
  route: { cluster: up }
`
	clusters := staticCluster("dead", []string{deadPort}, "") + staticCluster("sick", []string{port(t, sick)}, fastHealthCheck) +
		staticCluster("up", []string{port(t, up)}, "")
	g := start(t, bootstrap(wasmFilter("probe", module(t, "hosttest/testdata/probe"), `{"name":"probe"}`), routes, clusters))
	c := client(t)
	base := "http://" + g.Addr("ingress")
	waitFor(t, 5*time.Second, "the sick host to fail its health check", func() bool {
		return strings.Contains(string(do(t, c, "GET", "http://"+g.AdminAddr()+"/clusters", nil, nil).body), "/failed_active_hc")
	})

	script := "get-prop-resp:response.code_details get-prop-resp:response.flags get-prop-resp:upstream.address get-prop-resp:upstream.transport_failure_reason"
	for _, tc := range []struct {
		path, status, body, details string
		flags                       uint64
		upstream, transport         string
	}{
		{"/refused", "503", "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure, transport failure reason: delayed connect error: Connection refused",
			"upstream_reset_before_response_started{remote_connection_failure|delayed_connect_error:_Connection_refused}", 0x20, "127.0.0.1:" + deadPort, "delayed connect error: Connection refused"},
		{"/nowhere", "404", "", "route_not_found", 0x100, "NOTFOUND", "NOTFOUND"},
		{"/direct", "418", "short and stout", "direct_response", 0, "NOTFOUND", "NOTFOUND"},
		{"/sick", "503", "no healthy upstream", "no_healthy_upstream", 0x2, "NOTFOUND", "NOTFOUND"},
		{"/up", "200", "", "via_upstream", 0, "127.0.0.1:" + port(t, up), ""},
	} {
		t.Run(strings.TrimPrefix(tc.path, "/"), func(t *testing.T) {
			r := do(t, c, "GET", base+tc.path, map[string]string{"x-probe": script}, nil)
			if strconv.Itoa(r.status) != tc.status || (tc.body != "" && string(r.body) != tc.body) {
				t.Errorf("got %d %q, want %s %q", r.status, r.body, tc.status, tc.body)
			}
			// The probe saw the reply in on_response_headers.
			if got := r.header.Get("x-probe-saw"); !strings.HasSuffix(got, "resp-headers") {
				t.Errorf("x-probe-saw %q: the reply did not run through the filter", got)
			}
			flags := make([]byte, 8)
			binary.LittleEndian.PutUint64(flags, tc.flags)
			for prop, want := range map[string]string{
				"response.code_details":             tc.details,
				"response.flags":                    "hex:" + hex.EncodeToString(flags),
				"upstream.address":                  tc.upstream,
				"upstream.transport_failure_reason": tc.transport,
			} {
				if got := r.header.Get("x-probe-prop-" + prop); got != want {
					t.Errorf("%s = %q, want %q", prop, got, want)
				}
			}
		})
	}
}

// TestUpstreamBreakingOffMidBodyResets: an upstream that dies in the middle
// of a chunked body must not look like a short, complete response.
func TestUpstreamBreakingOffMidBodyResets(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				http.ReadRequest(bufio.NewReader(conn))
				io.WriteString(conn, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
				time.Sleep(50 * time.Millisecond) // the gateway forwards the first chunk, then the upstream dies
			}()
		}
	}()
	_, p, _ := net.SplitHostPort(ln.Addr().String())
	g := start(t, bootstrap(wasmFilter("probe", module(t, "hosttest/testdata/probe"), `{"name":"probe"}`),
		"- name: all\n  match: { prefix: / }\n  route: { cluster: cut }", staticCluster("cut", []string{p}, "")))
	res, err := client(t).Get("http://" + g.Addr("ingress") + "/x")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err == nil {
		t.Fatalf("the client read %q and a clean end: want the stream reset", b)
	}
	if string(b) != "hello" {
		t.Errorf("before the reset the client read %q, want the first chunk", b)
	}
}
