package main

// Helpers for the tests that run the compiled module in hosttest
// (filter_test.go, remote_test.go, soak_test.go, host_bench_test.go).

import (
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concierge-wasm/concierge/hosttest"
)

// probePlugin is hosttest's scriptable test filter, used after jwt-auth to
// read what it left for later filters.
const probePlugin = "../../hosttest/testdata/probe"

// identityReader reads the identity property as later filters do.
const identityReader = "testdata/identity-reader"

// newHost runs this folder's module (built and cached by hosttest) with cfg.
func newHost(tb testing.TB, cfg string, opts ...hosttest.Option) *hosttest.Host {
	tb.Helper()
	return hosttest.New(tb, append([]hosttest.Option{hosttest.Plugin("."), hosttest.Config(cfg)}, opts...)...)
}

// withRealm adds "realm":"api" to the standard configuration, plus extra
// top-level members (`,"rules":[...]`).
func withRealm(tb testing.TB, extra string) string {
	c := testConfigJSON(tb)
	return `{"realm":"api"` + extra + "," + strings.TrimPrefix(c, "{")
}

// get is a GET with a request ID and the token as a bearer token ("" for
// none).
func get(path, token string) *hosttest.Request {
	r := hosttest.GET(path).Header("x-request-id", "req-1")
	if token != "" {
		r.Header("authorization", "Bearer "+token)
	}
	return r
}

// claimsAt are valid claims of the main (asymmetric) provider at now, with
// changes applied.
func claimsAt(now time.Time, changes map[string]any) map[string]any {
	c := claimsFor("RS256", now)
	for k, v := range changes {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// rsToken signs claims with the main RSA key and kid.
func rsToken(tb testing.TB, c any) string {
	tb.Helper()
	return signToken(tb, "RS256", testKeys(tb).rsa, map[string]any{"alg": "RS256", "kid": "rsa-1"}, c)
}

func wantStatus(tb testing.TB, r *hosttest.Response, want int) {
	tb.Helper()
	if r.Status != want {
		tb.Fatalf("status = %d, want %d; response %v", r.Status, want, r)
	}
}

func wantEqual[T comparable](tb testing.TB, what string, got, want T) {
	tb.Helper()
	if got != want {
		tb.Errorf("%s = %v, want %v", what, got, want)
	}
}

// wantDenied checks a denial: status, challenge, JSON body, no upstream.
func wantDenied(tb testing.TB, r *hosttest.Response, status int, reason, challenge string) {
	tb.Helper()
	wantStatus(tb, r, status)
	if r.Upstream != nil {
		tb.Errorf("a denied request reached the upstream")
	}
	wantEqual(tb, "LocalReplyBy", r.LocalReplyBy, "jwt-auth")
	wantEqual(tb, "www-authenticate", r.Header("www-authenticate"), challenge)
	wantEqual(tb, "content-type", r.Header("content-type"), "application/json")
	var body struct {
		Error     string `json:"error"`
		RequestID *string
	}
	if err := json.Unmarshal(r.Body, &body); err != nil {
		tb.Fatalf("body %q: %v", r.Body, err)
	}
	wantEqual(tb, "body error", body.Error, reason)
	if body.RequestID == nil || *body.RequestID != r.Header("x-request-id") {
		tb.Errorf("body requestId = %v, want the x-request-id echoed (%q)", body.RequestID, r.Header("x-request-id"))
	}
}

// invalid is the challenge of a 401 for a bad token in realm "api".
func invalid(reason string) string {
	return `Bearer realm="api", error="invalid_token", error_description="` + reason + `"`
}

func metric(tb testing.TB, h *hosttest.Host, name string) int64 {
	tb.Helper()
	v, ok := h.Metric(name)
	if !ok {
		tb.Fatalf("metric %s is not defined", name)
	}
	return v
}

// eventually polls cond until it holds or 10 s of real time pass: for
// what happens off the request path (callout answers, other workers'
// ticks). It is not a timing assertion: the bound only stops a hang.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// counter is an atomic hit counter for cluster handlers.
type counter struct{ n atomic.Int64 }

func (c *counter) add() int64 { return c.n.Add(1) }
func (c *counter) get() int64 { return c.n.Load() }
