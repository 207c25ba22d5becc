package hosttest_test

import (
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/concierge-wasm/concierge/hosttest"
)

// The SDK's proxytest is an independent emulator (wasm mode runs the same
// .wasm). Where it matches Envoy, both hosts must agree; where it diverges
// (RATIONALE.md), hosttest must give Envoy's answer.

// proxytest's emulator is process-global: its tests never run in parallel.
var proxytestMu sync.Mutex

func runProxytest(t *testing.T, config string, fn func(host proxytest.HostEmulator)) {
	t.Helper()
	proxytestMu.Lock()
	defer proxytestMu.Unlock()
	path, err := hosttest.Build(probeDir)
	if err != nil {
		t.Fatal(err)
	}
	wasm, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	vm, err := proxytest.NewWasmVMContext(wasm)
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()
	host, reset := proxytest.NewHostEmulator(proxytest.NewEmulatorOption().WithVMContext(vm).WithPluginConfiguration([]byte(config)))
	defer reset()
	if st := host.StartPlugin(); st != types.OnPluginStartStatusOK {
		t.Fatalf("proxytest: plugin refused to start: %v", host.GetErrorLogs())
	}
	fn(host)
}

func pairsOf(hs [][2]string) []hosttest.Pair {
	out := make([]hosttest.Pair, len(hs))
	for i, h := range hs {
		out[i] = hosttest.Pair{Key: h[0], Value: h[1]}
	}
	return out
}

func TestAgreesWithProxytest(t *testing.T) {
	tests := []struct {
		name   string
		script string
	}{
		{"replace and remove", "set-req:x-keep=new del-req:x-gone set-req:x-from=probe"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reqHeaders := [][2]string{{":method", "GET"}, {":path", "/x"}, {":authority", "localhost"}, {":scheme", "http"},
				{"x-keep", "old"}, {"x-gone", "1"}, {"x-p", tc.script}}
			var want []hosttest.Pair
			runProxytest(t, `{"name":"p"}`, func(host proxytest.HostEmulator) {
				id := host.InitializeHttpContext()
				if a := host.CallOnRequestHeaders(id, reqHeaders, true); a != types.ActionContinue {
					t.Fatalf("proxytest action = %v", a)
				}
				want = pairsOf(host.GetCurrentRequestHeaders(id))
			})
			h := probeHost(t, "", hosttest.Workers(1))
			r := hosttest.GET("/x").Header("x-keep", "old").Header("x-gone", "1").Header("x-p", tc.script)
			got := h.Do(r).Upstream.Headers
			// hosttest adds x-forwarded-proto as Envoy's connection manager does.
			got = without(got, "x-forwarded-proto")
			if !samePairs(got, want) {
				t.Errorf("upstream headers differ\n hosttest:  %v\n proxytest: %v", got, want)
			}
		})
	}
}

func TestAgreesWithProxytestOnLocalReply(t *testing.T) {
	var status uint32
	var body string
	runProxytest(t, `{"name":"p"}`, func(host proxytest.HostEmulator) {
		id := host.InitializeHttpContext()
		host.CallOnRequestHeaders(id, [][2]string{{":path", "/"}, {"x-p", "local:418"}}, true)
		lr := host.GetSentLocalResponse(id)
		if lr == nil {
			t.Fatal("proxytest recorded no local reply")
		}
		status, body = lr.StatusCode, string(lr.Data)
	})
	resp := probeHost(t, "").Do(hosttest.GET("/").Header("x-p", "local:418"))
	if resp.Status != int(status) || string(resp.Body) != body {
		t.Errorf("hosttest %d %q, proxytest %d %q", resp.Status, resp.Body, status, body)
	}
}

// Divergence (not in §3): proxytest's add_header_map_value concatenates
// the new value onto an existing one; Envoy's addCopy appends a second
// header with the same name.
func TestDivergenceAddHeaderAppendsDuplicate(t *testing.T) {
	var merged string
	runProxytest(t, `{"name":"p"}`, func(host proxytest.HostEmulator) {
		id := host.InitializeHttpContext()
		host.CallOnRequestHeaders(id, [][2]string{{"x-p", "add-req:x-a=1 add-req:x-a=2"}}, true)
		merged = headerOf(pairsOf(host.GetCurrentRequestHeaders(id)), "x-a")
	})
	t.Logf("proxytest gives x-a=%q", merged)
	up := probeHost(t, "").Do(hosttest.GET("/").Header("x-p", "add-req:x-a=1 add-req:x-a=2")).Upstream
	if got := up.HeaderValues("x-a"); len(got) != 2 || got[0] != "1" || got[1] != "2" {
		t.Errorf("hosttest x-a = %q, want two headers [1 2] as Envoy's addCopy gives", got)
	}
}

// Divergence §3.1: proxytest refuses cas=0 on an existing key; Envoy
// treats cas 0 as an unconditional write.
func TestDivergenceSharedDataCasZero(t *testing.T) {
	var proxytestResult string
	runProxytest(t, `{"name":"p"}`, func(host proxytest.HostEmulator) {
		id := host.InitializeHttpContext()
		host.CallOnRequestHeaders(id, [][2]string{{"x-p", "shared-set:k=a:0"}}, true)
		id = host.InitializeHttpContext()
		host.CallOnRequestHeaders(id, [][2]string{{"x-p", "shared-set:k=b:0"}}, true)
		proxytestResult = headerOf(pairsOf(host.GetCurrentRequestHeaders(id)), "x-p-set-result")
	})
	if !strings.Contains(proxytestResult, "cas mismatch") {
		t.Logf("proxytest now answers %q for cas 0 on an existing key; the divergence may be fixed upstream", proxytestResult)
	}
	h := probeHost(t, "")
	h.Do(hosttest.GET("/").Header("x-p", "shared-set:k=a:0"))
	got := h.Do(hosttest.GET("/").Header("x-p", "shared-set:k=b:0")).Upstream.Header("x-p-set-result")
	wantHeader(t, "hosttest cas 0 on existing key (Envoy: unconditional write)", got, "ok")
}

// Divergence §3.5: proxytest records a local reply but lets a callback that
// returned Continue go on; Envoy stops the stream whatever the callback
// returns.
func TestDivergenceLocalReplyStopsIteration(t *testing.T) {
	var action types.Action
	runProxytest(t, `{"name":"p"}`, func(host proxytest.HostEmulator) {
		id := host.InitializeHttpContext()
		action = host.CallOnRequestHeaders(id, [][2]string{{"x-p", "local-continue:403"}}, true)
	})
	if action != types.ActionContinue {
		t.Logf("proxytest returned %v", action)
	}
	resp := probeHost(t, "").Do(hosttest.GET("/").Header("x-p", "local-continue:403"))
	wantStatus(t, resp, 403)
	if resp.Upstream != nil {
		t.Error("hosttest let the request reach the upstream after a local reply (Envoy stops it)")
	}
}

func without(pairs []hosttest.Pair, key string) []hosttest.Pair {
	var out []hosttest.Pair
	for _, p := range pairs {
		if p.Key != key {
			out = append(out, p)
		}
	}
	return out
}

func samePairs(a, b []hosttest.Pair) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
