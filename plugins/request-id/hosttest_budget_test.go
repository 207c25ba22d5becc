//go:build !wasm

package main

// max_buffered_bytes through the compiled module: many large envelopes in
// flight at once on one worker hold at most the budget; the rest pass
// through unchanged.

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concierge-wasm/concierge/hosttest"
)

// jsonBody is a valid JSON document of exactly n bytes.
func jsonBody(n int) []byte {
	b := make([]byte, n)
	b[0], b[n-1] = '"', '"'
	for i := 1; i < n-1; i++ {
		b[i] = 'a' + byte(i%26)
	}
	return b
}

// concurrentEnvelopes sends n requests whose upstream answers a body of
// size bytes in two halves, the second halves only once every first half
// has reached the worker: all n bodies are in flight at once. It returns
// the responses and the VM's linear memory afterwards.
func concurrentEnvelopes(t *testing.T, cfg string, n, size int) (*hosttest.Host, []*hosttest.Response) {
	t.Helper()
	body := jsonBody(size)
	var flushed sync.WaitGroup
	flushed.Add(n)
	release := make(chan struct{})
	var started atomic.Int64
	h := newHost(t, cfg, hosttest.Workers(1), hosttest.UpstreamFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("content-type", "application/json")
		w.Header().Set("content-length", strconv.Itoa(size))
		if started.Add(1) > int64(n) {
			w.Write(body) // after the burst
			return
		}
		w.Write(body[:size/2])
		w.(http.Flusher).Flush()
		flushed.Done()
		<-release
		w.Write(body[size/2:])
	}))
	streams := make([]*hosttest.Stream, n)
	for i := range streams {
		streams[i] = h.Stream(hosttest.GET(fmt.Sprintf("/api/%d", i))).SendHeaders()
	}
	flushed.Wait()
	close(release)
	out := make([]*hosttest.Response, n)
	for i, s := range streams {
		resp, ok := s.Wait(10 * time.Second)
		if !ok {
			t.Fatalf("stream %d did not finish: %s", i, s.Holder())
		}
		out[i] = resp
	}
	return h, out
}

func TestEnvelopeBudget(t *testing.T) {
	const n, size = 6, 256 << 10
	body := jsonBody(size)
	// Room for two bodies (each held with its envelope prefix).
	h, resps := concurrentEnvelopes(t, `{"envelope": {"enabled": true, "max_body_bytes": 262144}, "max_buffered_bytes": 600000}`, n, size)
	wrapped, unchanged := 0, 0
	for i, r := range resps {
		switch {
		case r.Status != 200:
			t.Errorf("response %d: status %d", i, r.Status)
		case bytes.Equal(r.Body, body):
			unchanged++
		case bytes.HasPrefix(r.Body, []byte(`{"requestId":"`)) && bytes.Contains(r.Body, body):
			wrapped++
		default:
			t.Errorf("response %d: %d bytes, neither the body nor its envelope", i, len(r.Body))
		}
	}
	if wrapped != 2 || unchanged != n-2 {
		t.Errorf("wrapped %d, unchanged %d; want 2 within the budget and %d passed through", wrapped, unchanged, n-2)
	}
	if got := metric(h, "envelope_over_budget_total"); got != n-2 {
		t.Errorf("envelope_over_budget_total = %d, want %d", got, n-2)
	}
	if got := metric(h, "enveloped_total"); got != 2 {
		t.Errorf("enveloped_total = %d, want 2", got)
	}
	// Once they are done the budget is whole again: all of them fit one
	// after the other.
	for i := range 3 {
		if r := h.Do(hosttest.GET("/api/after")); !bytes.HasPrefix(r.Body, []byte(`{"requestId":"`)) {
			t.Errorf("sequential request %d after the burst: not wrapped (%d bytes)", i, len(r.Body))
		}
	}
}
