package main

import (
	"strconv"
	"testing"
	"time"

	"github.com/concierge-wasm/concierge/hosttest"
)

// BenchmarkWasmRequest is one whole request through the compiled filter
// on one worker VM, beside the noop filter (hosttest/testdata/noop) in the
// same run: the ratio of the two is the filter's cost. "10" and "10000"
// are the configured consumers; the key is a valid one of a consumer in
// the middle. B/op and allocs/op are the test process's (host and wazero).
//
//	go test -run '^$' -bench BenchmarkWasmRequest ./plugins/key-auth/
func BenchmarkWasmRequest(b *testing.B) {
	cases := []struct {
		name      string
		plugin    string
		consumers int
	}{
		{"noop", noopPlugin, 0},
		{"key-auth/10-consumers", ".", 10},
		{"key-auth/10000-consumers", ".", 10000},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			opts := []hosttest.Option{hosttest.Plugin(c.plugin), hosttest.Workers(1)}
			req := hosttest.GET("/api/users/1").Header("x-request-id", "req-1")
			if c.consumers > 0 {
				opts = append(opts, hosttest.Config(manyConsumers(c.consumers, "")))
				req.Header("x-api-key", consumerKey(c.consumers/2))
			}
			h := hosttest.New(b, opts...)
			b.ReportAllocs()
			for b.Loop() {
				if resp := h.Do(req); resp.Status != 200 {
					b.Fatalf("%v", resp)
				}
			}
		})
	}
}

// BenchmarkWasmStart is the start-up of a host with one worker (the main
// VM and the worker's each parse the configuration), beside the noop
// filter. The difference is what 10,000 consumers cost at start, per VM
// pair.
func BenchmarkWasmStart(b *testing.B) {
	cfg := manyConsumers(10000, "")
	for _, c := range []struct {
		name string
		opts []hosttest.Option
	}{
		{"noop", []hosttest.Option{hosttest.Plugin(noopPlugin)}},
		{"key-auth/10-consumers", []hosttest.Option{hosttest.Plugin("."), hosttest.Config(manyConsumers(10, ""))}},
		{"key-auth/10000-consumers", []hosttest.Option{hosttest.Plugin("."), hosttest.Config(cfg)}},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				h, err := hosttest.Start(append(c.opts, hosttest.Workers(1))...)
				if err != nil {
					b.Fatal(err)
				}
				h.Close()
			}
		})
	}
}

// BenchmarkWasmRatio sends a no-op request and a key-auth request in turn,
// each through its own host with one worker, and reports each one's mean
// and their ratio: on a shared machine, interleaving keeps both under the
// same load, which two separate benchmarks do not.
//
//	go test -run '^$' -bench BenchmarkWasmRatio ./plugins/key-auth/
func BenchmarkWasmRatio(b *testing.B) {
	noop := hosttest.New(b, hosttest.Plugin(noopPlugin), hosttest.Workers(1))
	noopReq := hosttest.GET("/api/users/1").Header("x-request-id", "req-1")
	for _, n := range []int{10, 10000} {
		h := newHost(b, manyConsumers(n, ""), hosttest.Workers(1))
		req := hosttest.GET("/api/users/1").Header("x-request-id", "req-1").Header("x-api-key", consumerKey(n/2))
		b.Run(strconv.Itoa(n)+"-consumers", func(b *testing.B) {
			var tNoop, tKey time.Duration
			for b.Loop() {
				t0 := time.Now()
				if resp := noop.Do(noopReq); resp.Status != 200 {
					b.Fatalf("%v", resp)
				}
				t1 := time.Now()
				if resp := h.Do(req); resp.Status != 200 {
					b.Fatalf("%v", resp)
				}
				tKey += time.Since(t1)
				tNoop += t1.Sub(t0)
			}
			b.ReportMetric(float64(tNoop.Nanoseconds())/float64(b.N), "noop-ns/req")
			b.ReportMetric(float64(tKey.Nanoseconds())/float64(b.N), "key-auth-ns/req")
			b.ReportMetric(float64(tKey)/float64(tNoop), "ratio")
		})
	}
}
