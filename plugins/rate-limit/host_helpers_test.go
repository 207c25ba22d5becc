//go:build !wasm

package main

// Helpers for the tests that run the compiled module in hosttest.

import (
	"encoding/json"
	"testing"

	"github.com/concierge-wasm/concierge/hosttest"
)

// probePlugin is hosttest's scriptable test filter; before rate-limit it
// plays the auth filter that sets the identity property.
const probePlugin = "../../hosttest/testdata/probe"

// noopDir is hosttest's do-nothing filter, the floor for benchmarks.
const noopDir = "../../hosttest/testdata/noop"

// newHost runs this folder's module (built and cached by hosttest) with cfg.
func newHost(tb testing.TB, cfg string, opts ...hosttest.Option) *hosttest.Host {
	tb.Helper()
	return hosttest.New(tb, append([]hosttest.Option{hosttest.Plugin("."), hosttest.Config(cfg)}, opts...)...)
}

// newIdentityHost runs the probe before rate-limit, so that a request's
// x-probe script can set the identity property as jwt-auth would.
func newIdentityHost(tb testing.TB, cfg string, opts ...hosttest.Option) *hosttest.Host {
	tb.Helper()
	return hosttest.New(tb, append([]hosttest.Option{hosttest.Chain(
		hosttest.Filter{Plugin: probePlugin, Config: `{"name":"probe"}`},
		hosttest.Filter{Plugin: ".", Name: "rate-limit", Config: cfg},
	)}, opts...)...)
}

// asIdentity makes the probe set the verified identity property for sub.
func asIdentity(r *hosttest.Request, sub string) *hosttest.Request {
	return r.Header("x-probe", `set-prop:concierge.identity={"v":1,"m":"jwt","s":"`+sub+`","p":"main"}`)
}

// from is a GET from a client address.
func from(ip, path string) *hosttest.Request {
	return hosttest.GET(path).Source(ip+":40000").Header("x-request-id", "req-1")
}

func wantStatus(tb testing.TB, r *hosttest.Response, want int) {
	tb.Helper()
	if r.Status != want {
		tb.Fatalf("status = %d, want %d; response %v", r.Status, want, r)
	}
}

func wantHeader(tb testing.TB, r *hosttest.Response, key, want string) {
	tb.Helper()
	if got := r.Header(key); got != want {
		tb.Errorf("%s = %q, want %q; response %v", key, got, want, r)
	}
}

// denialBody decodes a 429's JSON body.
func denialBody(tb testing.TB, r *hosttest.Response) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		tb.Fatalf("denial body %q is not JSON: %v", r.Body, err)
	}
	return m
}

func metric(tb testing.TB, h *hosttest.Host, name string) int64 {
	tb.Helper()
	v, ok := h.Metric(name)
	if !ok {
		tb.Fatalf("metric %s is not defined", name)
	}
	return v
}
