//go:build !wasm

package main

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/concierge-wasm/concierge/hosttest"
)

// rlsDouble is a test double of Envoy's reference rate limit service's
// JSON endpoint. It decodes what the filter sends with the service's own
// protos (protojson rejects unknown fields) and answers per mode.
type rlsDouble struct {
	t    testing.TB
	mu   sync.Mutex
	mode string // ok, over, slow, 500, garbage, contradict
	got  []*rlsv3.RateLimitRequest
	meta []string // method path content-type of each call
	// release ends the slow mode's wait; arrived says a call came in.
	release chan struct{}
	arrived chan struct{}
}

func newRLS(t testing.TB, mode string) *rlsDouble {
	d := &rlsDouble{t: t, mode: mode, release: make(chan struct{}), arrived: make(chan struct{}, 100)}
	t.Cleanup(func() { close(d.release) })
	return d
}

func (d *rlsDouble) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req := &rlsv3.RateLimitRequest{}
	if err := protojson.Unmarshal(body, req); err != nil {
		d.t.Errorf("rate limit service got %q: not a RateLimitRequest: %v", body, err)
	}
	d.mu.Lock()
	d.got = append(d.got, req)
	d.meta = append(d.meta, r.Method+" "+r.URL.Path+" "+r.Header.Get("content-type")+" "+r.Host)
	mode := d.mode
	d.mu.Unlock()
	d.arrived <- struct{}{}
	answer := func(status int, resp *rlsv3.RateLimitResponse) {
		b, _ := protojson.Marshal(resp)
		w.Header().Set("content-type", "application/json")
		w.WriteHeader(status)
		w.Write(b)
	}
	switch mode {
	case "ok":
		answer(200, &rlsv3.RateLimitResponse{OverallCode: rlsv3.RateLimitResponse_OK})
	case "over":
		answer(429, &rlsv3.RateLimitResponse{OverallCode: rlsv3.RateLimitResponse_OVER_LIMIT,
			Statuses: []*rlsv3.RateLimitResponse_DescriptorStatus{{Code: rlsv3.RateLimitResponse_OVER_LIMIT,
				DurationUntilReset: durationpb.New(6500 * time.Millisecond)}}})
	case "contradict":
		answer(200, &rlsv3.RateLimitResponse{OverallCode: rlsv3.RateLimitResponse_OVER_LIMIT})
	case "slow":
		select {
		case <-d.release:
		case <-r.Context().Done():
		}
	case "500":
		http.Error(w, "boom", 500)
	case "garbage":
		w.WriteHeader(200)
		io.WriteString(w, "<html>rate limit service</html>")
	}
}

func (d *rlsDouble) requests() []*rlsv3.RateLimitRequest {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*rlsv3.RateLimitRequest(nil), d.got...)
}

func withGlobal(failureMode string) string {
	return `{"limits":[{"requests":100,"per":"1s"}],"key":["header:x-tenant+method","ip"],
		"global":{"cluster":"ratelimit","authority":"rls.internal","domain":"concierge","failure_mode":"` + failureMode + `"}}`
}

// TestGlobalOKAndOverLimit: the wire format is a RateLimitRequest the
// service's protos accept; OK lets the request through with the local
// headers, OVER_LIMIT is a 429 with the service's reset as Retry-After.
func TestGlobalOKAndOverLimit(t *testing.T) {
	rls := newRLS(t, "ok")
	h := newHost(t, withGlobal("allow"), hosttest.Cluster("ratelimit", rls))
	r := h.Do(from("192.0.2.1", "/api").Header("x-tenant", "acme"))
	wantStatus(t, r, 200)
	wantHeader(t, r, "x-ratelimit-limit", "100")
	got := rls.requests()
	if len(got) != 1 {
		t.Fatalf("rate limit service got %d requests, want 1", len(got))
	}
	want := `{"domain":"concierge","descriptors":[{"entries":[{"key":"x-tenant","value":"acme"},{"key":"method","value":"GET"}]}]}`
	if b, _ := protojson.Marshal(got[0]); compact(string(b)) != want {
		t.Errorf("RateLimitRequest = %s\nwant %s", b, want)
	}
	if m := rls.meta[0]; m != "POST /json application/json rls.internal" {
		t.Errorf("callout = %q, want POST /json application/json to rls.internal", m)
	}
	// Without the header: the ip alternative.
	h.Do(from("192.0.2.1", "/api"))
	if got := rls.requests(); len(got) != 2 || got[1].Descriptors[0].Entries[0].Key != "remote_address" || got[1].Descriptors[0].Entries[0].Value != "192.0.2.1" {
		t.Errorf("second RateLimitRequest = %v, want remote_address 192.0.2.1", got[len(got)-1])
	}

	rls.mu.Lock()
	rls.mode = "over"
	rls.mu.Unlock()
	r = h.Do(from("192.0.2.1", "/api").Header("x-tenant", "acme"))
	wantStatus(t, r, 429)
	wantHeader(t, r, "retry-after", "7")
	wantHeader(t, r, "x-ratelimit-remaining", "0")
	wantHeader(t, r, "x-ratelimit-reset", "7")
	if r.Upstream != nil {
		t.Error("a request over the global limit reached the upstream")
	}
	if b := denialBody(t, r); b["retryAfter"] != float64(7) || b["requestId"] != "req-1" {
		t.Errorf("429 body = %s", r.Body)
	}
	if n := metric(t, h, metricGlobalOverLimit); n != 1 {
		t.Errorf("global_over_limit = %d, want 1", n)
	}
	if len(h.LogsContaining(`denied status=429 by=global limit="global:concierge" retry_after=7`)) != 1 {
		t.Errorf("no global denial log line: %v", h.LogsContaining("denied"))
	}
}

func compact(s string) string { return strings.Join(strings.Fields(s), "") }

// TestGlobalFailures: a slow service (past global.timeout), a 500,
// garbage and a self-contradicting answer apply failure_mode: allow lets
// the request through, deny answers 503 JSON; both are counted and logged.
func TestGlobalFailures(t *testing.T) {
	for _, mode := range []string{"slow", "500", "garbage", "contradict"} {
		for _, fm := range []string{"allow", "deny"} {
			t.Run(mode+"/"+fm, func(t *testing.T) {
				rls := newRLS(t, mode)
				h := newHost(t, withGlobal(fm), hosttest.Cluster("ratelimit", rls))
				s := h.Stream(from("192.0.2.1", "/api")).SendHeaders()
				if mode == "slow" {
					// Once the service holds the call, move past global.timeout.
					select {
					case <-rls.arrived:
					case <-time.After(5 * time.Second):
						t.Fatal("the rate limit service was never called")
					}
					h.Clock().Advance(150 * time.Millisecond)
				}
				r, ok := s.Wait(5 * time.Second)
				if !ok {
					t.Fatalf("no response: %s", s.Holder())
				}
				if fm == "allow" {
					wantStatus(t, r, 200)
				} else {
					wantStatus(t, r, 503)
					wantHeader(t, r, "content-type", "application/json")
					if got := string(r.Body); got != `{"error":"rate limit service unavailable","requestId":"req-1"}` {
						t.Errorf("503 body = %s", got)
					}
					if r.Upstream != nil {
						t.Error("denied request reached the upstream")
					}
				}
				if n := metric(t, h, metricGlobalErrors); n != 1 {
					t.Errorf("global_errors = %d, want 1", n)
				}
				want := map[string]string{"slow": "(status 504)", "500": "(status 500)", "garbage": "(status 200 with a body that is not JSON)",
					"contradict": `(status 200 disagrees with overallCode "OVER_LIMIT")`}[mode]
				if len(h.LogsContaining("rate limit service failed "+want)) != 1 {
					t.Errorf("no failure log line: %v", h.Logs())
				}
			})
		}
	}
}

// TestGlobalUnknownCluster: a cluster the host does not know is a failure
// too, decided at once.
func TestGlobalUnknownCluster(t *testing.T) {
	h := newHost(t, withGlobal("deny"))
	wantStatus(t, h.Do(from("192.0.2.1", "/api")), 503)
	if n := metric(t, h, metricGlobalErrors); n != 1 {
		t.Errorf("global_errors = %d, want 1", n)
	}
}

// TestGlobalNotAskedWhenLocalDenies: the local buckets answer first.
func TestGlobalNotAskedWhenLocalDenies(t *testing.T) {
	rls := newRLS(t, "ok")
	h := newHost(t, `{"limits":[{"requests":1,"per":"1m"}],"key":["ip"],"global":{"cluster":"ratelimit","domain":"d"}}`,
		hosttest.Cluster("ratelimit", rls))
	wantStatus(t, h.Do(from("192.0.2.1", "/")), 200)
	wantStatus(t, h.Do(from("192.0.2.1", "/")), 429)
	if n := len(rls.requests()); n != 1 {
		t.Errorf("rate limit service asked %d times, want 1", n)
	}
}
