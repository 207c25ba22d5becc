package engine

import (
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/concierge-wasm/concierge/hosttest/internal/abi"
	"github.com/concierge-wasm/concierge/hosttest/internal/build"
)

// TestChainsShareVMs: filters of different chains (the gateway's
// listeners) with one vm_config are root contexts of one VM per thread,
// and a MainThreadOnly filter (a singleton WasmService) joins only the
// main thread's VM; each stream runs its own chain only.
func TestChainsShareVMs(t *testing.T) {
	path, err := build.New(build.DefaultCacheDir()).Build("../../testdata/sharedvm")
	if err != nil {
		t.Fatal(err)
	}
	wasm, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f := func(name, vmID string, mainOnly bool) FilterConfig {
		return FilterConfig{Name: name, VMID: vmID, Wasm: wasm, Configuration: []byte(`{"name":"` + name + `"}`), MainThreadOnly: mainOnly}
	}
	var upstream http.Header
	h, err := Start(Options{Workers: 1,
		Filters: []FilterConfig{f("svc", "x", true), f("a", "x", false), f("c", "other", false), f("b", "x", false)},
		Chains:  [][]int{{1, 2}, {3}},
		Upstream: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			upstream = r.Header.Clone()
		})})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for _, tc := range []struct {
		worker int
		want   []VMShare
	}{
		{-1, []VMShare{{0, 1}, {0, 2}, {2, 1}, {0, 3}}},
		{0, []VMShare{{-1, 0}, {1, 1}, {2, 1}, {1, 2}}},
	} {
		got := h.VMShares(tc.worker)
		for i := range tc.want {
			if i >= len(got) || got[i] != tc.want[i] {
				t.Errorf("thread %d: VMShares = %v, want %v", tc.worker, got, tc.want)
				break
			}
		}
	}
	for _, tc := range []struct {
		chain int
		want  map[string]string
	}{
		{0, map[string]string{"X-A-Root": "1", "X-A-Count": "2", "X-C-Root": "1", "X-B-Root": ""}},
		{1, map[string]string{"X-B-Root": "2", "X-B-Count": "2", "X-A-Root": "", "X-C-Root": ""}},
	} {
		res, ok := h.NewStream(Request{Chain: tc.chain, Headers: []abi.Pair{{Key: ":method", Value: "GET"}, {Key: ":path", Value: "/"},
			{Key: ":authority", Value: "x"}}}).Do(5 * time.Second)
		if !ok || res.Status != 200 {
			t.Fatalf("chain %d: ok=%v status=%d", tc.chain, ok, res.Status)
		}
		for k, want := range tc.want {
			if got := upstream.Get(k); got != want {
				t.Errorf("chain %d: upstream %s = %q, want %q", tc.chain, k, got, want)
			}
		}
	}
}

// TestChainsRefused: a chain may not name a filter that does not exist,
// runs on the main thread only, or is already in it.
func TestChainsRefused(t *testing.T) {
	path, err := build.New(build.DefaultCacheDir()).Build("../../testdata/noop")
	if err != nil {
		t.Fatal(err)
	}
	wasm, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fs := []FilterConfig{{Name: "a", Wasm: wasm}, {Name: "svc", Wasm: wasm, MainThreadOnly: true}}
	for _, tc := range []struct {
		chains [][]int
		want   string
	}{
		{[][]int{{2}}, "hosttest: chain 0 names filter 2; there are 2"},
		{[][]int{{0}, {1}}, `hosttest: chain 1 has filter "svc", which runs on the main thread only`},
		{[][]int{{0, 0}}, `hosttest: chain 0 has filter "a" twice`},
	} {
		h, err := Start(Options{Workers: 1, Filters: append([]FilterConfig(nil), fs...), Chains: tc.chains})
		if err == nil {
			h.Close()
			t.Errorf("chains %v accepted", tc.chains)
			continue
		}
		if err.Error() != tc.want {
			t.Errorf("chains %v: %q, want %q", tc.chains, err, tc.want)
		}
	}
}
