package gateway

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestEarlyResponseClosesHTTP1: an upstream that answers a large POST
// before reading it ends the request early; the rest is never read, so the
// connection cannot carry another request. The response says
// connection: close (Envoy's connection manager does the same when it
// encodes headers before the request is complete), and the client's next
// request goes out on a new connection instead of failing with EOF.
func TestEarlyResponseClosesHTTP1(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }))
	t.Cleanup(up.Close)
	routes := "- match: { prefix: / }\n  route: { cluster: one }"
	g := start(t, bootstrap(wasmFilter("probe", module(t, "hosttest/testdata/probe"), `{"name":"probe"}`), routes, staticCluster("one", []string{port(t, up)}, "")))
	c := client(t)
	for i := range 5 {
		r := do(t, c, "POST", "http://"+g.Addr("ingress")+"/x", nil, bytes.Repeat([]byte("a"), 1<<20))
		if r.status != 404 {
			t.Fatalf("POST %d: status %d, want the upstream's 404", i, r.status)
		}
	}
	// A small request read whole keeps its connection.
	if r := do(t, c, "GET", "http://"+g.Addr("ingress")+"/x", nil, nil); r.header.Get("connection") == "close" {
		t.Errorf("GET without a body: connection: close, want the connection kept")
	}
}
