package engine

import (
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/concierge-wasm/concierge/hosttest/internal/abi"
	"github.com/concierge-wasm/concierge/hosttest/internal/build"
)

// What an upstream handler leaves unread of the request body stops
// counting against flow control once the handler returns, so a client
// reader is not held back by a body nobody will read, even while a filter
// holds the response.
func TestUnreadBodyIsDroppedWhenTheHandlerReturns(t *testing.T) {
	path, err := build.New(build.DefaultCacheDir()).Build("../../testdata/probe")
	if err != nil {
		t.Fatal(err)
	}
	wasm, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	returned := make(chan struct{})
	h, err := Start(Options{Filters: []FilterConfig{{Name: "p", Wasm: wasm, Configuration: []byte(`{"name":"p","tick_ms":600000}`)}}, Workers: 1,
		Upstream: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer close(returned)
			w.WriteHeader(200) // answers without reading the body
		})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	sink := &chanSink{events: make(chan string, 16)}
	// pause-resp: the filter holds the response (until a tick that does not
	// come during the test), so the stream stays open.
	s := h.NewStream(Request{Headers: []abi.Pair{{Key: ":method", Value: "POST"}, {Key: ":path", Value: "/"},
		{Key: ":authority", Value: "x"}, {Key: ":scheme", Value: "http"}, {Key: "x-p", Value: "pause-resp"}}, Sink: sink, BufferLimit: 1024})
	s.Start(false)
	s.SendData(make([]byte, 4096), false)
	<-returned
	deadline := time.Now().Add(5 * time.Second)
	for s.RequestBacklogged() {
		if time.Now().After(deadline) {
			t.Fatal("4 KiB the handler never read still hold the client back after it returned")
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.SendData([]byte("more"), true)
	if s.RequestBacklogged() {
		t.Error("the rest of the body, sent after the handler returned, holds the client back")
	}
}
