//go:build !wasm

package main

// Helpers for the tests that run the compiled module in hosttest.

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/concierge-wasm/concierge/hosttest"
)

const (
	filterName = "request-id" // hosttest names a filter after its folder
	probeDir   = "../../hosttest/testdata/probe"
	noopDir    = "../../hosttest/testdata/noop"
)

var (
	uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	uuidV7 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
)

// newHost runs the filter built from this folder with configuration cfg.
func newHost(t testing.TB, cfg string, opts ...hosttest.Option) *hosttest.Host {
	t.Helper()
	return hosttest.New(t, append([]hosttest.Option{hosttest.Plugin("."), hosttest.Config(cfg)}, opts...)...)
}

// metric returns a counter of the filter by its short name ("kept_total"),
// 0 when it was never defined.
func metric(h *hosttest.Host, name string) int64 {
	v, _ := h.Metric(metricPrefix + name)
	return v
}

// metricDeltas snapshots the filter's counters so that a test can check
// what one request added.
type metricDeltas struct {
	h      *hosttest.Host
	before map[string]int64
}

func snapshot(h *hosttest.Host) metricDeltas {
	m := metricDeltas{h: h, before: map[string]int64{}}
	for _, v := range h.Metrics() {
		m.before[v.Name] = v.Value
	}
	return m
}

// changed returns the counters that moved since the snapshot, by short
// name, as "name+delta" in name order.
func (m metricDeltas) changed() string {
	var out []string
	for _, v := range m.h.Metrics() {
		if d := v.Value - m.before[v.Name]; d != 0 {
			out = append(out, strings.TrimPrefix(v.Name, metricPrefix)+"+"+strconv.FormatInt(d, 10))
		}
	}
	return strings.Join(out, " ")
}

// accessLines returns the access-log lines the filter logged, in order.
func accessLines(h *hosttest.Host) []string {
	var out []string
	for _, l := range h.Logs() {
		if l.Filter == filterName && l.Level.String() == "info" && strings.HasPrefix(l.Message, "request_id=") {
			out = append(out, l.Message)
		}
	}
	return out
}

// errorLines returns the error-level lines the filter logged.
func errorLines(h *hosttest.Host) []string {
	var out []string
	for _, l := range h.Logs() {
		if l.Filter == filterName && l.Level.String() == "error" {
			out = append(out, l.Message)
		}
	}
	return out
}

// respond is an upstream that answers status with headers (name, value
// pairs) and writes body as the given chunks, one frame each.
func respond(status int, headers []string, chunks ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Add(headers[i], headers[i+1])
		}
		w.WriteHeader(status)
		for _, c := range chunks {
			w.Write([]byte(c))
		}
	})
}

// wantOne fails unless values holds exactly want.
func wantOne(t testing.TB, what string, values []string, want string) {
	t.Helper()
	if len(values) != 1 || values[0] != want {
		t.Errorf("%s = %q, want exactly [%q]", what, values, want)
	}
}
