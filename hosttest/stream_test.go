package hosttest_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/concierge-wasm/concierge/hosttest"
)

func TestHeaderEdits(t *testing.T) {
	h := probeHost(t, "")
	resp := h.Do(hosttest.GET("/a").Header("x-keep", "1").Header("x-drop", "1").Header("x-twice", "1").Header("x-twice", "2").
		Header("x-p", script("add-req:x-added=v", "set-req:x-twice=one", "del-req:x-drop", "add-resp:x-r=1", "set-resp:content-type=text/x", "set-status:201")))
	wantStatus(t, resp, 201)
	up := resp.Upstream
	if up == nil {
		t.Fatal("upstream was not called")
	}
	wantHeader(t, "upstream x-added", up.Header("x-added"), "v")
	if got := up.HeaderValues("x-twice"); len(got) != 1 || got[0] != "one" {
		t.Errorf("upstream x-twice = %q, want [one] (replace keeps one value)", got)
	}
	if up.Has("x-drop") {
		t.Error("upstream still got x-drop after del-req")
	}
	wantHeader(t, "upstream x-keep", up.Header("x-keep"), "1")
	wantHeader(t, "response x-r", resp.Header("x-r"), "1")
	wantHeader(t, "response content-type", resp.Header("content-type"), "text/x")
	wantHeader(t, "x-p-saw", resp.Header("x-p-saw"), "req-headers,resp-headers")
}

// Envoy clears a filter's request-header pointer once it continues:
// reading request headers from the response path is BAD_ARGUMENT.
func TestRequestHeadersUnavailableInResponsePhase(t *testing.T) {
	h := probeHost(t, "")
	resp := h.Do(hosttest.GET("/a").Header("x-p", "echo-req-headers"))
	if got := resp.Header("x-p-req-headers"); !strings.Contains(got, ":path=/a") {
		t.Errorf("echo-req-headers read in request phase = %q, want it to contain :path=/a", got)
	}
}

func TestLocalReplyRunsEncodePathOfWholeChain(t *testing.T) {
	// a → b → c; b answers locally: c never sees the request but, as in
	// Envoy, every filter (c, b, a) encodes the local reply.
	h := hosttest.New(t, hosttest.Chain(probeFilter("a", ""), probeFilter("b", ""), probeFilter("c", "")))
	for _, verb := range []string{"local:403:denied by rule", "local-continue:403:denied by rule"} {
		t.Run(verb, func(t *testing.T) {
			resp := h.Do(hosttest.GET("/x").Header("x-b", strings.ReplaceAll(verb, " ", "_")))
			wantStatus(t, resp, 403)
			if resp.Upstream != nil {
				t.Error("upstream was called despite the local reply")
			}
			wantHeader(t, "LocalReplyBy", resp.LocalReplyBy, "b")
			wantHeader(t, "Details", resp.Details, "denied_by_rule")
			wantHeader(t, "body", string(resp.Body), "denied by b")
			wantHeader(t, "x-local-by", resp.Header("x-local-by"), "b")
			wantHeader(t, "content-length", resp.Header("content-length"), "11")
			wantHeader(t, "a saw", resp.Header("x-a-saw"), "req-headers,resp-headers")
			wantHeader(t, "b saw", resp.Header("x-b-saw"), "req-headers,resp-headers")
			wantHeader(t, "c saw", resp.Header("x-c-saw"), "resp-headers")
		})
	}
}

// A local reply from the response path, once the upstream response is
// being encoded, goes straight to the client (sendDirectLocalReply).
func TestLocalReplyFromResponsePath(t *testing.T) {
	h := hosttest.New(t, hosttest.Chain(probeFilter("a", ""), probeFilter("b", "")))
	resp := h.Do(hosttest.GET("/x").Header("x-b", "local-resp:502"))
	wantStatus(t, resp, 502)
	wantHeader(t, "LocalReplyBy", resp.LocalReplyBy, "b")
	if resp.Upstream == nil {
		t.Error("upstream should have been called before the response-path reply")
	}
	if resp.Header("x-a-saw") != "" {
		t.Errorf("filter a encoded a direct local reply: x-a-saw=%q", resp.Header("x-a-saw"))
	}
}

func TestPauseResumedByTick(t *testing.T) {
	h := probeHost(t, `,"tick_ms":1000`, hosttest.Workers(1))
	s := h.Stream(hosttest.GET("/x").Header("x-p", "pause-req")).SendHeaders()
	time.Sleep(20 * time.Millisecond)
	if s.Complete() {
		t.Fatal("stream completed while paused")
	}
	if got := s.Holder(); !strings.Contains(got, `request paused by filter "p" at headers`) {
		t.Errorf("Holder() = %q", got)
	}
	h.Clock().Advance(time.Second)
	resp, ok := s.Wait(5 * time.Second)
	if !ok {
		t.Fatal("stream not resumed by the tick")
	}
	wantStatus(t, resp, 200)
	if !containsLog(h, "resume req ctx=") {
		t.Error("no resume log")
	}
}

func TestPauseResponseResumedByTick(t *testing.T) {
	h := probeHost(t, `,"tick_ms":500`, hosttest.Workers(1))
	s := h.Stream(hosttest.GET("/x").Header("x-p", "pause-resp")).SendHeaders()
	h.Clock().Advance(500 * time.Millisecond)
	resp, ok := s.Wait(5 * time.Second)
	if !ok {
		t.Fatal("response not resumed")
	}
	wantStatus(t, resp, 200)
}

// While request headers are paused (StopAllIteration), body frames are
// held and delivered to the filter once it continues.
func TestBodyHeldWhileHeadersPaused(t *testing.T) {
	h := probeHost(t, `,"tick_ms":1000`, hosttest.Workers(1))
	req := hosttest.NewRequest("POST", "/x").Header("x-p", "pause-req req-body-upper").BodyChunks([]byte("ab"), []byte("cd"))
	s := h.Stream(req).SendHeaders().SendBody([]byte("ab"), false).SendBody([]byte("cd"), true)
	time.Sleep(10 * time.Millisecond)
	h.Clock().Advance(time.Second)
	resp, ok := s.Wait(5 * time.Second)
	if !ok {
		t.Fatal("not resumed")
	}
	wantHeader(t, "upstream body", string(resp.Upstream.Body), "ABCD")
	wantHeader(t, "saw", resp.Header("x-p-saw"), "req-headers,req-body,resp-headers")
}

func TestBodyBufferingAndEdits(t *testing.T) {
	echo := hosttest.UpstreamFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write(b[:len(b)/2])
		w.Write(b[len(b)/2:])
	})
	tests := []struct {
		name, script string
		chunks       []string
		wantUp       string
		wantClient   string
	}{
		{"streamed per chunk", "req-body-upper", []string{"ab", "cd", "ef"}, "ABCDEF", "ABCDEF"},
		{"buffered whole", "buffer-req req-body-upper req-body-prepend:<< req-body-append:>>", []string{"ab", "cd"}, "<<ABCD>>", "<<ABCD>>"},
		{"response buffered", "buffer-resp resp-body-upper resp-body-append:!", []string{"xy", "z"}, "xyz", "XYZ!"},
		{"response streamed prepend once", "resp-body-prepend:>", []string{"ab", "cd"}, "abcd", ">abcd"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := probeHost(t, "", echo)
			var chunks [][]byte
			for _, c := range tc.chunks {
				chunks = append(chunks, []byte(c))
			}
			resp := h.Do(hosttest.NewRequest("POST", "/x").Header("x-p", tc.script).BodyChunks(chunks...))
			wantStatus(t, resp, 200)
			wantHeader(t, "upstream body", string(resp.Upstream.Body), tc.wantUp)
			wantHeader(t, "client body", string(resp.Body), tc.wantClient)
		})
	}
}

// A filter that buffers sees the whole body so far on every call, and
// the size grows: Envoy's StopIterationAndBuffer.
func TestBufferedBodySizesGrow(t *testing.T) {
	up := hosttest.UpstreamFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, c := range []string{"aaaa", "bb", "c"} {
			w.Write([]byte(c))
		}
	})
	h := probeHost(t, "", up)
	resp := h.Do(hosttest.GET("/x").Header("x-p", "buffer-resp resp-body-peek"))
	wantHeader(t, "body", string(resp.Body), "aaaabbc")
	if !containsLog(h, "resp body chunks=4,6,7 eos") {
		t.Errorf("want body sizes 4,6,7 (whole buffer each time); logs: %v", h.LogsContaining("resp body"))
	}
	if resp.Chunks != 1 {
		t.Errorf("client got %d frames, want 1 (buffered body forwarded whole)", resp.Chunks)
	}
}

// A body a filter buffers past the buffer limit ends as Envoy's filter
// manager ends it; streaming the same body is fine.
func TestBufferLimit(t *testing.T) {
	const limit = 1000
	body := func(n int) [][]byte {
		return [][]byte{bytes.Repeat([]byte("a"), n/2), bytes.Repeat([]byte("b"), n-n/2)}
	}
	tests := []struct {
		name, script string
		reqBytes     int
		respBytes    int
		status       int
		details      string
		reset        bool
		upstreamSeen bool
	}{
		{"request buffered within the limit", "buffer-req", limit, 10, 200, "via_upstream", false, true},
		{"request buffered over the limit", "buffer-req", limit + 1, 10, 413, "request_payload_too_large", false, true},
		{"request streamed over the limit", "req-body-upper", 4 * limit, 10, 200, "via_upstream", false, true},
		// The response headers have gone out: Envoy can only reset.
		{"response buffered over the limit", "buffer-resp", 0, limit + 1, 200, "response_payload_too_large", true, true},
		{"response streamed over the limit", "resp-body-upper", 0, 4 * limit, 200, "via_upstream", false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := hosttest.UpstreamFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				for _, c := range body(tc.respBytes) {
					w.Write(c)
				}
			})
			h := probeHost(t, "", up, hosttest.BufferLimit(limit))
			req := hosttest.GET("/x")
			if tc.reqBytes > 0 {
				req = hosttest.NewRequest("POST", "/x").BodyChunks(body(tc.reqBytes)...)
			}
			resp := h.Do(req.Header("x-p", tc.script))
			if resp.Status != tc.status || resp.Details != tc.details || resp.Reset != tc.reset {
				t.Errorf("got %v (reset %v), want %d %s (reset %v)", resp, resp.Reset, tc.status, tc.details, tc.reset)
			}
			// Envoy's router starts the upstream request at the headers.
			if (resp.Upstream != nil) != tc.upstreamSeen {
				t.Errorf("upstream called: %v, want %v", resp.Upstream != nil, tc.upstreamSeen)
			}
			if tc.status == 413 && (resp.LocalReplyBy != "connection_manager" || string(resp.Body) != "Payload Too Large") {
				t.Errorf("413 by %q with body %q, want Envoy's connection manager and \"Payload Too Large\"", resp.LocalReplyBy, resp.Body)
			}
		})
	}

	// While a later filter (earlier on the encode path) buffers, an earlier
	// one holds the response headers: nothing has reached the client, and
	// Envoy answers 500 instead.
	t.Run("response buffered over the limit, headers held", func(t *testing.T) {
		up := hosttest.UpstreamFunc(func(w http.ResponseWriter, r *http.Request) {
			for _, c := range body(limit + 1) {
				w.Write(c)
			}
		})
		h := hosttest.New(t, hosttest.Chain(probeFilter("a", ""), probeFilter("b", "")), up, hosttest.BufferLimit(limit))
		resp := h.Do(hosttest.GET("/x").Header("x-a", "pause-resp").Header("x-b", "buffer-resp"))
		if resp.Status != 500 || resp.Details != "response_payload_too_large" || resp.Reset || string(resp.Body) != "Internal Server Error" {
			t.Errorf("got %v (reset %v), want Envoy's 500 response_payload_too_large", resp, resp.Reset)
		}
	})
}

func TestTrailers(t *testing.T) {
	var gotTrailer string
	up := hosttest.UpstreamFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		gotTrailer = r.Trailer.Get("x-t")
		w.Header().Set("Trailer", "x-rt")
		w.Write([]byte("body"))
		w.Header().Set("x-rt", "r1")
	})
	h := probeHost(t, "", up)
	resp := h.Do(hosttest.POST("/x", "data").Header("x-p", script("echo-req-trailers", "add-req-trailer:x-added=1", "add-resp-trailer:x-radd=2")).Trailer("x-t", "t1"))
	wantStatus(t, resp, 200)
	if gotTrailer != "t1" {
		t.Errorf("upstream trailer x-t = %q, want t1", gotTrailer)
	}
	if got := headerOf(resp.Upstream.Trailers, "x-added"); got != "1" {
		t.Errorf("upstream trailer x-added = %q, want 1", got)
	}
	wantHeader(t, "client trailer x-rt", resp.Trailer("x-rt"), "r1")
	wantHeader(t, "client trailer x-radd", resp.Trailer("x-radd"), "2")
	if !containsLog(h, "req trailers=x-t=t1") {
		t.Errorf("probe did not read request trailers: %v", h.LogsContaining("trailers"))
	}
}

// Trailers added at end of stream by a body callback (addDecodedTrailers)
// reach the upstream even when the client sent none.
func TestTrailersAddedAtEndOfStream(t *testing.T) {
	h := probeHost(t, "")
	resp := h.Do(hosttest.POST("/x", "data").Header("x-p", "add-req-trailer:x-new=1"))
	if got := headerOf(resp.Upstream.Trailers, "x-new"); got != "1" {
		t.Errorf("upstream trailer x-new = %q, want 1; trailers %v", got, resp.Upstream.Trailers)
	}
}

func headerOf(pairs []hosttest.Pair, key string) string {
	for _, p := range pairs {
		if p.Key == key {
			return p.Value
		}
	}
	return ""
}

func TestRouteTimeoutAnswers504(t *testing.T) {
	hang := hosttest.Upstream(hanging(t))
	h := probeHost(t, "", hang, hosttest.Workers(1))
	s := h.Stream(hosttest.GET("/slow").Timeout(15 * time.Second)).SendHeaders()
	h.Clock().Advance(15 * time.Second)
	resp, ok := s.Wait(5 * time.Second)
	if !ok {
		t.Fatal("route timeout did not fire")
	}
	wantStatus(t, resp, 504)
	wantHeader(t, "LocalReplyBy", resp.LocalReplyBy, "router")
	wantHeader(t, "Details", resp.Details, "response_timeout")
	wantHeader(t, "Flags", resp.Flags.String(), "UT")
	wantHeader(t, "saw", resp.Header("x-p-saw"), "req-headers,resp-headers")
}

// An upstream handler that gives up when the route timeout cancels it (as
// a proxying handler does) is not an upstream failure: the 504 is UT
// alone, even while a filter still holds it.
func TestCancelledUpstreamIsNotAFailure(t *testing.T) {
	gaveUp := make(chan struct{})
	up := hosttest.UpstreamFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
		close(gaveUp)
		panic(http.ErrAbortHandler)
	})
	h := probeHost(t, `,"tick_ms":1000`, up, hosttest.Workers(1))
	s := h.Stream(hosttest.GET("/slow").Timeout(3*time.Second).Header("x-p", "pause-resp")).SendHeaders()
	h.Clock().Advance(3 * time.Second) // the 504; the filter holds it
	<-gaveUp
	time.Sleep(100 * time.Millisecond) // the engine sees the handler's panic
	h.Clock().Advance(time.Second)     // the next tick lets the 504 go
	resp, _ := s.Wait(5 * time.Second)
	wantStatus(t, resp, 504)
	wantHeader(t, "Flags", resp.Flags.String(), "UT")
}

func TestUpstreamPanicIsReset503(t *testing.T) {
	h := probeHost(t, "", hosttest.UpstreamFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }))
	resp := h.Do(hosttest.GET("/x"))
	wantStatus(t, resp, 503)
	wantHeader(t, "Details", resp.Details, "upstream_reset_before_response_started{connection_termination}")
	wantHeader(t, "Body", string(resp.Body), "upstream connect error or disconnect/reset before headers. reset reason: connection termination")
	wantHeader(t, "Flags", resp.Flags.String(), "UC")
}

func TestClientResetIsDownstreamTermination(t *testing.T) {
	hang := hosttest.Upstream(hanging(t))
	h := probeHost(t, "", hang, hosttest.Workers(1))
	s := h.Stream(hosttest.GET("/x").Header("x-p", "log:info:started")).SendHeaders()
	resp := s.Reset()
	if !resp.Reset || resp.Details != "downstream_remote_disconnect" || resp.Flags.String() != "DC" {
		t.Errorf("after the client hung up: reset %v, details %q, flags %s; want a reset, downstream_remote_disconnect, DC", resp.Reset, resp.Details, resp.Flags)
	}
	if !s.Complete() || len(h.LogsContaining("done p")) != 1 {
		t.Errorf("the filter's stream did not end: complete %v, logs %v", s.Complete(), h.Logs())
	}
}

func TestPerRouteDisable(t *testing.T) {
	h := hosttest.New(t, hosttest.Chain(probeFilter("a", ""), probeFilter("b", "")))
	resp := h.Do(hosttest.GET("/x").Header("x-b", "local:403").Disable("b"))
	wantStatus(t, resp, 200)
	if resp.Header("x-b-saw") != "" {
		t.Error("disabled filter b still ran")
	}
	wantHeader(t, "a saw", resp.Header("x-a-saw"), "req-headers,resp-headers")
}

func TestStreamingClientUnderStepAPI(t *testing.T) {
	var got bytes.Buffer
	h := probeHost(t, "", hosttest.UpstreamFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(&got, r.Body) }))
	s := h.Stream(hosttest.NewRequest("PUT", "/x").BodyChunks(nil)).SendHeaders()
	for i := 0; i < 100; i++ {
		s.SendBody([]byte("0123456789"), i == 99)
	}
	resp, ok := s.Wait(5 * time.Second)
	if !ok || resp.Status != 200 {
		t.Fatalf("response %v ok=%v", resp, ok)
	}
	if got.Len() != 1000 {
		t.Errorf("upstream got %d bytes, want 1000", got.Len())
	}
}
