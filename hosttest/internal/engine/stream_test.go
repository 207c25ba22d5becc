package engine

import (
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/concierge-wasm/concierge/hosttest/internal/abi"
	"github.com/concierge-wasm/concierge/hosttest/internal/build"
)

func startNoop(t testing.TB, up http.Handler) *Host {
	t.Helper()
	path, err := build.New(build.DefaultCacheDir()).Build("../../testdata/noop")
	if err != nil {
		t.Fatal(err)
	}
	wasm, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h, err := Start(Options{Filters: []FilterConfig{{Name: "noop", Wasm: wasm}}, Workers: 1, Upstream: up})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

type chanSink struct {
	mu     sync.Mutex
	events chan string
}

func (c *chanSink) Headers(h []abi.Pair, eos bool) {
	c.events <- "headers " + headerValue(h, ":status")
}
func (c *chanSink) Data(b []byte, eos bool) {
	if eos {
		c.events <- "data " + string(b) + " eos"
		return
	}
	c.events <- "data " + string(b)
}
func (c *chanSink) Trailers([]abi.Pair) { c.events <- "trailers" }
func (c *chanSink) Reset(r string)      { c.events <- "reset " + r }

func next(t *testing.T, c chan string) string {
	t.Helper()
	select {
	case e := <-c:
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
		return ""
	}
}

// The response streams to the client as the upstream flushes it: the
// first chunk arrives while the upstream is still writing.
func TestResponseStreamsThroughSink(t *testing.T) {
	release := make(chan struct{})
	h := startNoop(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("first"))
		w.(http.Flusher).Flush()
		<-release
		w.Write([]byte("second"))
	}))
	sink := &chanSink{events: make(chan string, 16)}
	s := h.NewStream(Request{Headers: []abi.Pair{{Key: ":method", Value: "GET"}, {Key: ":path", Value: "/"}, {Key: ":authority", Value: "x"}}, Sink: sink})
	s.Start(true)
	if e := next(t, sink.events); e != "headers 200" {
		t.Fatalf("first event %q", e)
	}
	if e := next(t, sink.events); e != "data first" {
		t.Fatalf("second event %q, want the flushed chunk before the upstream finished", e)
	}
	close(release)
	if e := next(t, sink.events); e != "data second eos" {
		t.Fatalf("third event %q", e)
	}
	if res, ok := s.Wait(5 * time.Second); !ok || res.Body != nil {
		t.Errorf("result %+v ok=%v; with a sink the result keeps no body", res, ok)
	}
}

// The upstream is called when the request headers have passed the
// filters, and reads the body as it arrives.
func TestRequestBodyStreamsToUpstream(t *testing.T) {
	got := make(chan string, 4)
	h := startNoop(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- "called"
		buf := make([]byte, 16)
		for {
			n, err := r.Body.Read(buf)
			if n > 0 {
				got <- string(buf[:n])
			}
			if err != nil {
				break
			}
		}
		w.Write([]byte("done"))
	}))
	s := h.NewStream(Request{Headers: []abi.Pair{{Key: ":method", Value: "POST"}, {Key: ":path", Value: "/"}, {Key: ":authority", Value: "x"}}})
	s.Start(false)
	if e := next(t, got); e != "called" {
		t.Fatalf("upstream event %q, want it called on headers", e)
	}
	s.SendData([]byte("part1"), false)
	if e := next(t, got); e != "part1" {
		t.Fatalf("upstream read %q before the request ended, want part1", e)
	}
	s.SendData([]byte("part2"), true)
	if e := next(t, got); e != "part2" {
		t.Fatalf("upstream read %q", e)
	}
	res, ok := s.Wait(5 * time.Second)
	if !ok || string(res.Body) != "done" || string(res.Upstream.Body) != "part1part2" {
		t.Errorf("result %+v ok=%v", res, ok)
	}
}
