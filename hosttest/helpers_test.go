package hosttest_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/concierge-wasm/concierge/hosttest"
)

const probeDir = "testdata/probe"

// probeFilter is a probe named name (its script header is x-<name>).
func probeFilter(name, extra string) hosttest.Filter {
	cfg := `{"name":"` + name + `"` + extra + `}`
	return hosttest.Filter{Name: name, Plugin: probeDir, Config: cfg}
}

// probeHost runs one probe named "p".
func probeHost(t testing.TB, extraConfig string, opts ...hosttest.Option) *hosttest.Host {
	t.Helper()
	return hosttest.New(t, append([]hosttest.Option{hosttest.Chain(probeFilter("p", extraConfig))}, opts...)...)
}

func script(verbs ...string) string { return strings.Join(verbs, " ") }

func wantStatus(t testing.TB, r *hosttest.Response, want int) {
	t.Helper()
	if r.Status != want {
		t.Fatalf("status = %d, want %d; response %v", r.Status, want, r)
	}
}

func wantHeader(t testing.TB, what, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

func containsLog(h *hosttest.Host, substr string) bool { return len(h.LogsContaining(substr)) > 0 }

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// hanging is a handler that never answers: it returns when its request is
// cancelled or the test ends.
func hanging(t testing.TB) http.Handler {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
}
