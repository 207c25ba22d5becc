package gateway

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func wasmService(name, path, config string, singleton bool) string {
	return fmt.Sprintf(`bootstrap_extensions:
- name: envoy.bootstrap.wasm
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.wasm.v3.WasmService
    singleton: %t
    config:
      name: %s
      root_id: %s
      configuration:
        "@type": type.googleapis.com/google.protobuf.StringValue
        value: '%s'
      vm_config:
        vm_id: shared
        runtime: envoy.wasm.runtime.v8
        code: { local: { filename: %s } }
`, singleton, name, name, config, path)
}

// The usual use of a singleton: HTTP filters on the workers enqueue, the
// WasmService dequeues on the main thread.
func TestWasmServiceSingletonConsumesQueue(t *testing.T) {
	probe := module(t, "hosttest/testdata/probe")
	up := echoServer(t, "up")
	filter := strings.Replace(wasmFilter("probe", probe, `{"name": "probe"}`), "vm_id: probe", "vm_id: shared", 1)
	yaml := wasmService("collector", probe, `{"name": "collector", "queue": "events"}`, true) +
		bootstrap(filter, `- match: { prefix: / }
  route: { cluster: up }`, staticCluster("up", []string{port(t, up)}, ""))
	bs, err := Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Compile(bs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var lines syncBuf
	g, err := Start(cfg, RunOptions{Workers: 2, Log: NewLogger(&lines, LevelInfo)})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	c := client(t)
	for _, msg := range []string{"one", "two", "three"} {
		r := do(t, c, "GET", "http://"+g.Addr("ingress")+"/", map[string]string{"x-probe": "enqueue:events=" + msg}, nil)
		if r.status != 200 {
			t.Fatalf("status %d", r.status)
		}
	}
	waitFor(t, 5*time.Second, "the service to dequeue three messages", func() bool {
		return strings.Count(lines.String(), " got ") == 3
	})
	log := lines.String()
	for _, want := range []string{"wasm service collector started (singleton on the main thread)", "got one", "got two", "got three"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	// One root context, on the main thread: on_vm_start ran once.
	if n := strings.Count(log, "plugin_start name=collector"); n != 1 {
		t.Errorf("singleton started %d times, want 1:\n%s", n, log)
	}
}

func TestWasmServicePerWorker(t *testing.T) {
	probe := module(t, "hosttest/testdata/probe")
	up := echoServer(t, "up")
	yaml := wasmService("collector", probe, `{"name": "collector"}`, false) +
		bootstrap("", `- match: { prefix: / }
  route: { cluster: up }`, staticCluster("up", []string{port(t, up)}, ""))
	bs, err := Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Compile(bs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var lines syncBuf
	g, err := Start(cfg, RunOptions{Workers: 3, Log: NewLogger(&lines, LevelInfo)})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	// Three workers plus the main thread's VM.
	if n := strings.Count(lines.String(), "plugin_start name=collector"); n != 4 {
		t.Errorf("service started %d times, want 4:\n%s", n, lines.String())
	}
}

func TestWasmServiceRefusals(t *testing.T) {
	got, _ := compileErr(t, `bootstrap_extensions:
- name: x
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
    stat_prefix: x
    cluster: backend
`+bootstrap("", "- match: { prefix: / }\n  route: { cluster: up }", staticCluster("up", []string{"1"}, "")))
	if want := "bootstrap_extensions[0].typed_config: type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy is not supported; only envoy.bootstrap.wasm (WasmService) is"; !strings.Contains(got, want) {
		t.Errorf("error %q lacks %q", got, want)
	}
}

// TestStartRefusalNamesOwner: every filter runs in one engine, and a
// plugin that refuses its configuration is still reported with the
// listener or bootstrap extension it belongs to, and its own log.
func TestStartRefusalNamesOwner(t *testing.T) {
	probe := module(t, "hosttest/testdata/probe")
	route := "- name: all\n  match: { prefix: / }\n  direct_response: { status: 200 }"
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"listener filter",
			wasmService("svc", probe, `{"name": "svc"}`, true) + bootstrap(wasmFilter("probe", probe, `{"name": "probe", "fail_start": true}`), route, ""),
			`listener ingress: hosttest: filter "probe" refused to start: proxy_on_configure returned false`},
		{"service",
			wasmService("svc", probe, `{"name": "svc", "fail_start": true}`, true) + bootstrap(wasmFilter("probe", probe, `{"name": "probe"}`), route, ""),
			`bootstrap extension svc: hosttest: filter "svc" refused to start: proxy_on_configure returned false`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bs, err := Parse([]byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := Compile(bs, Options{})
			if err != nil {
				t.Fatal(err)
			}
			g, err := Start(cfg, RunOptions{Workers: 1})
			if err == nil {
				g.Close()
				t.Fatal("started")
			}
			if !strings.HasPrefix(err.Error(), tc.want) || !strings.Contains(err.Error(), "refusing config") {
				t.Errorf("error %q, want it to start with %q and carry the plugin's log", err, tc.want)
			}
		})
	}
}
