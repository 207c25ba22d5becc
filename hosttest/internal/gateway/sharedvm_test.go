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

// sharedVMNetFilter renders a testdata/sharedvm network filter on vmID.
func sharedVMNetFilter(name, vmID, path string) string {
	f := strings.Replace(sharedVMFilter(name, vmID, path, ""), `"name":"`+name+`"`, `"name":"`+name+`","tcp":true`, 1)
	return strings.Replace(strings.Replace(f,
		"envoy.filters.http.wasm", "envoy.filters.network.wasm", 1),
		"envoy.extensions.filters.http.wasm.v3.Wasm", "envoy.extensions.filters.network.wasm.v3.Wasm", 1)
}

// TestSharedVMAcrossListeners: Envoy's worker threads serve every
// listener and key the VM per thread by vm_config across the server, so
// filters of two HTTP listeners and a TCP listener with one module and
// vm_id are root contexts 1, 2, 3 of one VM per worker (one package
// counter, reading 3), while a filter of another vm_id has its own. The
// start-up log says who shares whose VM.
func TestSharedVMAcrossListeners(t *testing.T) {
	mod := module(t, "hosttest/testdata/sharedvm")
	one := echoServer(t, "one")
	up := newTCPUpstream(t)
	y := bootstrap(sharedVMFilter("a", "x", mod, "")+sharedVMFilter("c", "other", mod, ""),
		"- name: all\n  match: { prefix: / }\n  route: { cluster: one }",
		staticCluster("one", []string{port(t, one)}, "")+staticCluster("backend", []string{up.port}, ""))
	// A second HTTP listener (a copy of the first with filter b) and a TCP
	// listener with filter t, both on vm_id x.
	lstart, lend := strings.Index(y, "  - name: ingress\n"), strings.Index(y, "  clusters:\n")
	second := strings.Replace(y[lstart:lend], "  - name: ingress\n", "  - name: second\n", 1)
	second = strings.Replace(second, indent(sharedVMFilter("a", "x", mod, "")+sharedVMFilter("c", "other", mod, ""), 10), indent(sharedVMFilter("b", "x", mod, ""), 10), 1)
	tcp := tcpBootstrap(sharedVMNetFilter("t", "x", mod), "")
	tcp = tcp[strings.Index(tcp, "  - name: tcp\n"):strings.Index(tcp, "  clusters:\n")]
	y = y[:lend] + second + tcp + y[lend:]
	bs, err := Parse([]byte(y))
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, y)
	}
	cfg, err := Compile(bs, Options{})
	if err != nil {
		t.Fatalf("Compile: %v\n%s", err, y)
	}
	var logs syncBuf
	g, err := Start(cfg, RunOptions{Workers: 2, Log: NewLogger(&logs, LevelInfo)})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	defer func() {
		if t.Failed() {
			t.Logf("log:\n%s", logs.String())
		}
	}()
	c := client(t)
	for i := 0; i < 4; i++ { // both workers
		for _, tc := range []struct {
			listener string
			want     map[string]string
		}{
			{"ingress", map[string]string{"x-a-root": "1", "x-a-count": "3", "x-c-root": "1", "x-c-count": "1"}},
			{"second", map[string]string{"x-b-root": "2", "x-b-count": "3", "x-b-parent-name": "b"}},
		} {
			e := do(t, c, "GET", "http://"+g.Addr(tc.listener)+"/x", nil, nil).echo(t)
			for k, want := range tc.want {
				if got := strings.Join(e.Headers[k], ","); got != want {
					t.Errorf("listener %s, request %d: upstream header %s = %q, want %q", tc.listener, i, k, got, want)
				}
			}
		}
	}
	for i := 0; i < 2; i++ { // both workers
		if got := exchange(t, g.Addr("tcp"), "hi"); got != "got:hi" && !t.Failed() {
			t.Errorf("TCP listener: client got %q, want %q", got, "got:hi")
		}
	}
	waitFor(t, 5*time.Second, "two TCP connections", func() bool { return strings.Count(logs.String(), "tcp name=t") == 2 })
	out := logs.String()
	for _, want := range []string{
		`listener second: filter 1 b: shares the VM of listener ingress filter 1 a (vm_id "x"), as root context 2`,
		`listener tcp: filter 1 t: shares the VM of listener ingress filter 1 a (vm_id "x"), as root context 3`,
		"wasm log b b x: plugin_start name=b root=2 count=2",
		"wasm log t t x: plugin_start name=t root=3 count=3",
		"wasm log t t x: tcp name=t root=3 count=3",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log has no %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "filter 2 c: shares") || strings.Contains(out, "Envoy would") {
		t.Errorf("log says c shares a VM, or warns:\n%s", out)
	}
}

// TestSharedVMWithService: a WasmService and a listener's filter of one
// vm_config share a VM as in Envoy: the service's root context comes
// second (Envoy creates bootstrap extensions' VMs in onServerInitialized,
// once the listeners are configured). A service on every worker shares
// each worker's VM; a singleton only the main thread's, so on the workers
// the filter has a VM of its own.
func TestSharedVMWithService(t *testing.T) {
	mod := module(t, "hosttest/testdata/sharedvm")
	one := echoServer(t, "one")
	for _, tc := range []struct {
		name              string
		singleton         bool
		wantRoot, wantCnt string // what a's stream reads on a worker
		wantLog           string
	}{
		{"on every worker", false, "1", "2",
			`wasm service svc: shares the VM of listener ingress filter 1 a (vm_id "shared"), as root context 2` + "\n"},
		{"singleton", true, "1", "1",
			`wasm service svc: shares the VM of listener ingress filter 1 a (vm_id "shared"), as root context 2 on the main thread` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			y := wasmService("svc", mod, `{"name":"svc"}`, tc.singleton) +
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
			e := do(t, client(t), "GET", "http://"+g.Addr("ingress")+"/x", nil, nil).echo(t)
			if root, cnt := strings.Join(e.Headers["x-a-root"], ","), strings.Join(e.Headers["x-a-count"], ","); root != tc.wantRoot || cnt != tc.wantCnt {
				t.Errorf("a on the worker: root context %q, counter %q; want %q, %q", root, cnt, tc.wantRoot, tc.wantCnt)
			}
			out := logs.String()
			// On the main thread svc joins a's VM in both cases.
			for _, want := range []string{tc.wantLog, "wasm log svc svc shared: plugin_start name=svc root=2 count=2\n"} {
				if !strings.Contains(out, want) {
					t.Errorf("log has no %q:\n%s", want, out)
				}
			}
			if strings.Contains(out, "Envoy would") || strings.Contains(out, "on each worker") {
				t.Errorf("unexpected sharing lines:\n%s", out)
			}
		})
	}
}
