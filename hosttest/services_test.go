package hosttest_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/concierge-wasm/concierge/hosttest"
)

func TestHTTPCallout(t *testing.T) {
	var got *http.Request
	idp := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		w.Header().Set("content-type", "application/json")
		w.Write([]byte(`{"keys":[]}`))
	})
	h := probeHost(t, "", hosttest.Cluster("idp", idp))
	resp := h.Do(hosttest.GET("/x").Header("x-p", "call:idp:/jwks"))
	wantStatus(t, resp, 200)
	up := resp.Upstream
	wantHeader(t, "call status", up.Header("x-p-call-status"), "200")
	wantHeader(t, "call body", up.Header("x-p-call-body"), `{"keys":[]}`)
	wantHeader(t, "call body len", up.Header("x-p-call-body-len"), "11")
	if got == nil || got.URL.Path != "/jwks" || got.Host != "idp" {
		t.Errorf("cluster handler got %v", got)
	}
}

func TestHTTPCalloutToRealAddress(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(202)
		io.WriteString(w, "real:"+r.URL.Path)
	}))
	defer srv.Close()
	h := probeHost(t, "", hosttest.ClusterAddress("svc", strings.TrimPrefix(srv.URL, "http://")))
	resp := h.Do(hosttest.GET("/x").Header("x-p", "call:svc:/ping"))
	wantHeader(t, "call status", resp.Upstream.Header("x-p-call-status"), "202")
	wantHeader(t, "call body", resp.Upstream.Header("x-p-call-body"), "real:/ping")
}

// Envoy checks the cluster, then the :method/:path/:authority headers, and
// answers BAD_ARGUMENT before dispatching anything.
func TestHTTPCalloutRefusals(t *testing.T) {
	h := probeHost(t, "", hosttest.Cluster("idp", http.NotFoundHandler()), hosttest.RecordCalls())
	tests := []struct{ script, want string }{
		{"call:nope", "error status returned by host: bad argument"},
		{"call-bad:idp", "error status returned by host: bad argument"},
	}
	for _, tc := range tests {
		resp := h.Do(hosttest.GET("/x").Header("x-p", tc.script))
		wantStatus(t, resp, 200)
		wantHeader(t, tc.script+" error", resp.Upstream.Header("x-p-call-error"), tc.want)
	}
	for _, c := range h.Calls() {
		if c.Name == "proxy_http_call" && c.Status == 0 {
			t.Errorf("a refused call was dispatched: %+v", c)
		}
	}
}

// TestHTTPCalloutAuthorityIsFreeText: Envoy routes a callout by cluster
// and sends :authority as the Host header, whatever text it holds; an
// empty one is accepted too (only a missing one is BAD_ARGUMENT).
func TestHTTPCalloutAuthorityIsFreeText(t *testing.T) {
	var hosts []string
	var mu sync.Mutex
	idp := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hosts = append(hosts, r.Host)
		mu.Unlock()
		io.WriteString(w, "ok")
	})
	h := probeHost(t, "", hosttest.Cluster("idp", idp))
	for _, tc := range []struct{ script, host string }{
		{"call:idp:/jwks authority:localhost:18000-canary", "localhost:18000-canary"},
		{"call:idp:/jwks authority:", ""},
		{"call:idp:/jwks authority:idp.example.com", "idp.example.com"},
	} {
		resp := h.Do(hosttest.GET("/x").Header("x-p", tc.script))
		wantHeader(t, tc.script+" status", resp.Upstream.Header("x-p-call-status"), "200")
		mu.Lock()
		got := hosts[len(hosts)-1]
		mu.Unlock()
		if got != tc.host {
			t.Errorf("%s: the cluster saw Host %q, want %q", tc.script, got, tc.host)
		}
	}
}

func TestHTTPCalloutTimeoutAndReset(t *testing.T) {
	slow := hanging(t)
	broken := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) })
	h := probeHost(t, "", hosttest.Cluster("slow", slow), hosttest.Cluster("broken", broken), hosttest.Workers(1))

	s := h.Stream(hosttest.GET("/x").Header("x-p", "call:slow timeout:2000")).SendHeaders()
	h.Clock().Advance(2 * time.Second)
	resp, ok := s.Wait(5 * time.Second)
	if !ok {
		t.Fatalf("callout timeout did not resume the stream: %s", s.Holder())
	}
	wantHeader(t, "timed-out call status", resp.Upstream.Header("x-p-call-status"), "504")

	resp = h.Do(hosttest.GET("/x").Header("x-p", "call:broken"))
	wantHeader(t, "reset call status", resp.Upstream.Header("x-p-call-status"), "reset")
}

func TestSharedDataCASSemantics(t *testing.T) {
	h := hosttest.New(t, hosttest.Plugin(probeDir), hosttest.Name("p"), hosttest.Config(`{"name":"p"}`), hosttest.VMID("v1"))
	do := func(verbs ...string) *hosttest.UpstreamRequest {
		t.Helper()
		return h.Do(hosttest.GET("/").Header("x-p", script(verbs...))).Upstream
	}
	// A new key ignores cas.
	wantHeader(t, "new key with stale cas", do("shared-set:k=a:999").Header("x-p-set-result"), "ok")
	v, cas, ok := h.SharedData("v1").Get("k")
	if !ok || string(v) != "a" || cas == 0 {
		t.Fatalf("Get(k) = %q, %d, %v", v, cas, ok)
	}
	wantHeader(t, "stale cas", do(fmt.Sprintf("shared-set:k=b:%d", cas+1)).Header("x-p-set-result"), "error status returned by host: cas mismatch")
	wantHeader(t, "matching cas", do(fmt.Sprintf("shared-set:k=c:%d", cas)).Header("x-p-set-result"), "ok")
	wantHeader(t, "cas 0 is unconditional", do("shared-set:k=d:0").Header("x-p-set-result"), "ok")
	got := do("shared-get:k").Header("x-p-get")
	if !strings.HasPrefix(got, "d/") {
		t.Errorf("shared-get = %q, want d/<cas>", got)
	}
	wantHeader(t, "missing key", do("shared-get:nope").Header("x-p-get"), "NOTFOUND")
	if keys := h.SharedData("v1").Keys(); len(keys) != 1 || keys[0] != "k" {
		t.Errorf("keys = %v", keys)
	}
	if _, _, ok := h.SharedData("other").Get("k"); ok {
		t.Error("shared data leaked across vm_ids")
	}
}

// The hammer: many streams on four workers increment one counter through
// compare-and-swap; every increment must land exactly once.
func TestSharedDataCASRaceAcrossWorkers(t *testing.T) {
	h := probeHost(t, "", hosttest.Workers(4))
	h.SharedData("").Set("n", []byte("0"), 0) // the first write has no CAS; create the key up front
	const goroutines, each = 8, 25
	var wg sync.WaitGroup
	start := make(chan struct{})
	var mu sync.Mutex
	retries := 0
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := 0; i < each; i++ {
				up := h.Do(hosttest.GET("/").Header("x-p", "shared-inc:n")).Upstream
				if e := up.Header("x-p-shared-error"); e != "" {
					t.Errorf("shared-inc failed: %s", e)
				}
				r, _ := strconv.Atoi(up.Header("x-p-cas-retries"))
				mu.Lock()
				retries += r
				mu.Unlock()
			}
		}()
	}
	close(start)
	wg.Wait()
	v, _, _ := h.SharedData("").Get("n")
	if string(v) != strconv.Itoa(goroutines*each) {
		t.Errorf("counter = %s, want %d (lost updates)", v, goroutines*each)
	}
	t.Logf("%d CAS retries over %d increments", retries, goroutines*each)
}

func TestSharedQueue(t *testing.T) {
	h := probeHost(t, `,"queue":"events"`, hosttest.Workers(2))
	resp := h.Do(hosttest.GET("/").Header("x-p", script("enqueue:events=hello", "enqueue:events=world", "enqueue:nope=x")))
	wantHeader(t, "unknown queue", resp.Upstream.Header("x-p-queue-error"), "NOTFOUND")
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && len(h.LogsContaining(" got ")) < 2 {
		time.Sleep(5 * time.Millisecond)
	}
	got := h.LogsContaining(" got ")
	if len(got) != 2 || !strings.HasSuffix(got[0], "got hello") || !strings.HasSuffix(got[1], "got world") {
		t.Errorf("on_queue_ready delivered %v, want hello then world", got)
	}
}

func TestMetricsAggregateAcrossVMs(t *testing.T) {
	h := probeHost(t, `,"metrics":true`, hosttest.Workers(3))
	for i := 0; i < 9; i++ {
		h.Do(hosttest.GET("/").Header("x-p", script("metric", "gauge:+2", "hist:"+strconv.Itoa(i))))
	}
	h.Do(hosttest.GET("/").Header("x-p", "gauge:-4"))
	if v, ok := h.Metric("probe_requests_total"); !ok || v != 9 {
		t.Errorf("probe_requests_total = %d, %v; want 9 summed over the workers", v, ok)
	}
	if v, _ := h.Metric("probe_inflight"); v != 14 {
		t.Errorf("probe_inflight = %d, want 14", v)
	}
	if s, ok := h.Histogram("probe_size"); !ok || len(s) != 9 {
		t.Errorf("probe_size samples = %v", s)
	}
}

func TestProperties(t *testing.T) {
	h := hosttest.New(t, hosttest.Chain(probeFilter("a", ""), probeFilter("b", "")))
	resp := h.Do(hosttest.GET("/api/users?id=1").Route("users").Source("127.0.0.1:4242").Header("x-a", script(
		"set-prop:identity=alice", "set-prop:dotted.name=bob", "get-prop:request.path", "get-prop:request.url_path", "get-prop:request.method",
		"get-prop:xds.route_name", "get-prop:plugin_name", "get-prop:source.address", "get-prop:nope", "get-prop-resp:response.code")).
		Header("x-b", script("get-prop:identity", "get-prop1:dotted.name", "get-prop:dotted.name")))
	up := resp.Upstream
	for path, want := range map[string]string{
		"request.path": "/api/users?id=1", "request.url_path": "/api/users", "request.method": "GET",
		"xds.route_name": "users", "plugin_name": "a", "source.address": "127.0.0.1:4242", "nope": "NOTFOUND",
	} {
		wantHeader(t, path, up.Header("x-a-prop-"+path), want)
	}
	wantHeader(t, "response.code (int64 LE)", resp.Header("x-a-prop-response.code"), "hex:c800000000000000")
	wantHeader(t, "b reads a's set_property", up.Header("x-b-prop-identity"), "alice")
	// A set_property name is one path segment even with dots in it; split
	// on the dots it is another (missing) path, as in Envoy.
	if got := up.HeaderValues("x-b-prop-dotted.name"); len(got) != 2 || got[0] != "bob" || got[1] != "NOTFOUND" {
		t.Errorf("dotted property = %q, want [bob NOTFOUND] (one segment, then split)", got)
	}
	// Filter state belongs to one stream.
	resp = h.Do(hosttest.GET("/").Header("x-b", "get-prop:identity"))
	wantHeader(t, "other stream", resp.Upstream.Header("x-b-prop-identity"), "NOTFOUND")
}
