package gateway

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// sharedVMFilter renders a testdata/sharedvm HTTP filter on vmID, with
// extra PluginConfig lines (failure_policy, reload_config).
func sharedVMFilter(name, vmID, path, extra string) string {
	return fmt.Sprintf(`- name: envoy.filters.http.wasm
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
    config:
      name: %s
      root_id: %s
      configuration:
        "@type": type.googleapis.com/google.protobuf.StringValue
        value: '{"name":"%s"}'
%s      vm_config:
        vm_id: %s
        runtime: envoy.wasm.runtime.v8
        code: { local: { filename: %s } }
`, name, name, name, extra, vmID, path)
}

// sharedVMGateway serves a, b (vm_id x) and c (vm_id other) of the sharedvm
// module, with a's and b's extra PluginConfig lines, on workers workers.
func sharedVMGateway(t testing.TB, workers int, extra string) (*Gateway, string, *syncBuf) {
	t.Helper()
	one := echoServer(t, "one")
	mod := module(t, "hosttest/testdata/sharedvm")
	filters := sharedVMFilter("a", "x", mod, extra) + sharedVMFilter("b", "x", mod, extra) + sharedVMFilter("c", "other", mod, "")
	y := bootstrap(filters, "- name: all\n  match: { prefix: / }\n  route: { cluster: one }", staticCluster("one", []string{port(t, one)}, ""))
	bs, err := Parse([]byte(y))
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, y)
	}
	cfg, err := Compile(bs, Options{})
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	logs := &syncBuf{}
	g, err := Start(cfg, RunOptions{Workers: workers, Log: NewLogger(logs, LevelInfo)})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(g.Close)
	return g, "http://" + g.Addr("ingress"), logs
}

// TestSharedVMByVMID: two wasm filters of one listener with the same
// vm_id and code share a VM per worker (root contexts 1 and 2, one
// package counter that reads 2), a third with another vm_id has its own;
// the startup log says which share, and each plugin keeps Envoy's own
// log prefix.
func TestSharedVMByVMID(t *testing.T) {
	_, base, logs := sharedVMGateway(t, 2, "")
	c := client(t)
	for i := 0; i < 4; i++ { // both workers
		e := do(t, c, "GET", base+"/x", nil, nil).echo(t)
		for k, want := range map[string]string{
			"x-a-root": "1", "x-a-count": "2", "x-a-parent-name": "a",
			"x-b-root": "2", "x-b-count": "2", "x-b-parent-name": "b",
			"x-c-root": "1", "x-c-count": "1", "x-c-parent-name": "c",
		} {
			if got := strings.Join(e.Headers[k], ","); got != want {
				t.Errorf("request %d: upstream header %s = %q, want %q", i, k, got, want)
			}
		}
	}
	out := logs.String()
	for _, want := range []string{
		`listener ingress: filter 2 b: shares the VM of filter 1 a (vm_id "x"), as root context 2`,
		"wasm log a a x: plugin_start name=a root=1 count=1",
		"wasm log b b x: plugin_start name=b root=2 count=2",
		"wasm log c c other: plugin_start name=c root=1 count=1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log has no %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "filter 3 c: shares") {
		t.Errorf("filter c (vm_id other) is said to share a VM:\n%s", out)
	}
}

// TestSharedVMFailReloadGateway: a trap in b's stream fails the VM it
// shares with a; under FAIL_RELOAD both come back in one fresh VM, root
// contexts 1 and 2 again, while c's VM was never touched.
func TestSharedVMFailReloadGateway(t *testing.T) {
	_, base, _ := sharedVMGateway(t, 1, "      failure_policy: FAIL_RELOAD\n      reload_config: { backoff: { base_interval: 0.01s } }\n")
	c := client(t)
	if r := do(t, c, "GET", base+"/x", map[string]string{"x-panic": "b"}, nil); r.status != 503 {
		t.Fatalf("the request that made b panic: %d %q, want 503", r.status, r.body)
	}
	// Bounded: a reload is due 10–15ms after the last load.
	deadline := time.Now().Add(3 * time.Second)
	for {
		r := do(t, c, "GET", base+"/x", nil, nil)
		if r.status == 200 {
			e := r.echo(t)
			// Both in one fresh VM (its counter reads 2); b is root
			// context 2 unless a stream of a's came in between (b's own
			// jittered backoff had not passed yet), then 3.
			for k, want := range map[string]string{"x-a-root": "1", "x-a-count": "2", "x-b-count": "2", "x-c-root": "1", "x-c-count": "1"} {
				if got := strings.Join(e.Headers[k], ","); got != want {
					t.Errorf("after the reload: upstream header %s = %q, want %q", k, got, want)
				}
			}
			if got := strings.Join(e.Headers["x-b-root"], ","); got != "2" && got != "3" {
				t.Errorf("after the reload: b's root context id %q, want 2 (or 3)", got)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery within 3s: last answer %d %q", r.status, r.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSharedVMAcrossEngines: Envoy would also share the VM between a
// WasmService and a listener's filter of the same vm_config; the gateway
// shares within one listener's chain only, and says so at start.
func TestSharedVMAcrossEngines(t *testing.T) {
	mod := module(t, "hosttest/testdata/sharedvm")
	one := echoServer(t, "one")
	y := wasmService("svc", mod, `{"name":"svc"}`, false) +
		bootstrap(sharedVMFilter("a", "shared", mod, ""), "- name: all\n  match: { prefix: / }\n  route: { cluster: one }", staticCluster("one", []string{port(t, one)}, ""))
	bs, err := Parse([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Compile(bs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuf
	g, err := Start(cfg, RunOptions{Workers: 1, Log: NewLogger(&logs, LevelInfo)})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	want := `listener ingress: filter 1 a: Envoy would run it in the VM of wasm service svc filter 1 svc (same vm_id "shared"`
	if !strings.Contains(logs.String(), want) {
		t.Errorf("log has no %q:\n%s", want, logs.String())
	}
}
