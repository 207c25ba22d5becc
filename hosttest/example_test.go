package hosttest_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/concierge-wasm/concierge/hosttest"
)

// A filter test in a few lines: build the plugin folder, start a host,
// send a request, check what the client and the upstream saw.
func Example() {
	t := &testing.T{} // in a real test, the *testing.T of the test function
	h := hosttest.New(t, hosttest.Plugin("testdata/probe"), hosttest.Config(`{"name":"p"}`))
	resp := h.Do(hosttest.GET("/api/users/1").Header("x-p", "add-req:x-user-id=42 set-status:201"))
	fmt.Println(resp.Status, resp.Upstream.Header("x-user-id"))
	// Output: 201 42
}

// Several filters run in order, as Envoy's http_filters; the test names
// which filter answered.
func ExampleChain() {
	t := &testing.T{}
	h := hosttest.New(t, hosttest.Chain(
		hosttest.Filter{Name: "first", Plugin: "testdata/probe", Config: `{"name":"first"}`},
		hosttest.Filter{Name: "second", Plugin: "testdata/probe", Config: `{"name":"second"}`},
	))
	resp := h.Do(hosttest.GET("/").Header("x-second", "local:403"))
	fmt.Println(resp.Status, resp.LocalReplyBy, resp.Upstream == nil)
	// Output: 403 second true
}

// Callouts go to Go handlers by cluster name; time moves only forward and
// only as far as the test says (plus real time).
func ExampleCluster() {
	t := &testing.T{}
	jwks := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"keys":[]}`) })
	h := hosttest.New(t, hosttest.Plugin("testdata/probe"), hosttest.Config(`{"name":"p"}`), hosttest.Cluster("idp", jwks))
	resp := h.Do(hosttest.GET("/").Header("x-p", "call:idp:/.well-known/jwks.json"))
	fmt.Println(resp.Upstream.Header("x-p-call-status"), resp.Upstream.Header("x-p-call-body"))
	h.Clock().Advance(time.Minute)
	// Output: 200 {"keys":[]}
}

// A filter that buffers a body is held to Envoy's buffer limit, and the
// response says how the stream ended, in Envoy's words.
func ExampleBufferLimit() {
	t := &testing.T{}
	h := hosttest.New(t, hosttest.Plugin("testdata/probe"), hosttest.Config(`{"name":"p"}`), hosttest.BufferLimit(1024))
	chunk := make([]byte, 800)
	resp := h.Do(hosttest.NewRequest("POST", "/upload").BodyChunks(chunk, chunk).Header("x-p", "buffer-req"))
	fmt.Println(resp.Status, resp.Details, resp.LocalReplyBy)
	// Output: 413 request_payload_too_large connection_manager
}

// A route timeout is the router's 504, with Envoy's response flag UT.
func ExampleResponseFlags() {
	t := &testing.T{}
	hang := hosttest.UpstreamFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	h := hosttest.New(t, hosttest.Plugin("testdata/probe"), hosttest.Config(`{"name":"p"}`), hang)
	s := h.Stream(hosttest.GET("/slow").Timeout(3 * time.Second)).SendHeaders()
	h.Clock().Advance(3 * time.Second)
	resp, _ := s.Wait(5 * time.Second)
	fmt.Println(resp.Status, resp.Details, resp.Flags)
	// Output: 504 response_timeout UT
}
