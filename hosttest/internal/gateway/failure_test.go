package gateway

import (
	"strings"
	"testing"
	"time"
)

// failingGateway starts one worker (so the VM that fails is the one every
// later request meets) with the probe filter under the given PluginConfig
// lines (failure_policy, reload_config).
func failingGateway(t testing.TB, policy string) (*Gateway, string) {
	t.Helper()
	one := echoServer(t, "one")
	f := wasmFilter("probe", module(t, "hosttest/testdata/probe"), `{"name":"probe"}`)
	f = strings.Replace(f, "      vm_config:\n", policy+"      vm_config:\n", 1)
	y := bootstrap(f, "- name: all\n  match: { prefix: / }\n  route: { cluster: one }", staticCluster("one", []string{port(t, one)}, ""))
	bs, err := Parse([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Compile(bs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	g, err := Start(cfg, RunOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g, "http://" + g.Addr("ingress")
}

// TestFailReloadRecovers: under FAIL_RELOAD the stream that trapped gets
// 503 (fail-closed for it), and a later request meets a fresh VM that runs
// the filter again; under FAIL_CLOSED every later request gets 503.
func TestFailReloadRecovers(t *testing.T) {
	tests := []struct {
		name      string
		policy    string
		recovers  bool
		afterWait time.Duration
	}{
		{"FAIL_RELOAD", "      failure_policy: FAIL_RELOAD\n      reload_config: { backoff: { base_interval: 0.01s } }\n", true, 3 * time.Second},
		{"FAIL_CLOSED", "      failure_policy: FAIL_CLOSED\n", false, 100 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, base := failingGateway(t, tc.policy)
			c := client(t)
			if r := do(t, c, "GET", base+"/x", map[string]string{"x-probe": "panic-req"}, nil); r.status != 503 {
				t.Fatalf("the request that made the filter panic: %d %q, want 503", r.status, r.body)
			}
			// Bounded: a reload is due 10–15ms after the last load.
			ran := func() bool {
				r := do(t, c, "GET", base+"/x", map[string]string{"x-probe": "add-req:x-probed=1"}, nil)
				return r.status == 200 && len(r.echo(t).Headers["x-probed"]) == 1
			}
			deadline := time.Now().Add(tc.afterWait)
			recovered := ran()
			for !recovered && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
				recovered = ran()
			}
			if recovered != tc.recovers {
				t.Errorf("after the panic, within %v: filter ran again = %v, want %v", tc.afterWait, recovered, tc.recovers)
			}
		})
	}
}

// TestFailurePolicyConfig: reload_config is read, and fail_open together
// with failure_policy is refused as Envoy refuses it.
func TestFailurePolicyConfig(t *testing.T) {
	f := wasmFilter("probe", module(t, "hosttest/testdata/probe"), `{"name":"probe"}`)
	both := strings.Replace(f, "      vm_config:\n", "      fail_open: true\n      failure_policy: FAIL_RELOAD\n      vm_config:\n", 1)
	msg, _ := compileErr(t, bootstrap(both, "- match: { prefix: / }\n  direct_response: { status: 200 }", ""))
	if !strings.Contains(msg, "only one of fail_open or failure_policy can be set") {
		t.Errorf("fail_open and failure_policy together: %q, want the refusal Envoy gives", msg)
	}
	withReload := strings.Replace(f, "      vm_config:\n", "      failure_policy: FAIL_RELOAD\n      reload_config: { backoff: { base_interval: 2.5s, max_interval: 10s } }\n      vm_config:\n", 1)
	msg, cfg := compileErr(t, bootstrap(withReload, "- match: { prefix: / }\n  direct_response: { status: 200 }", ""))
	if msg != "" || cfg == nil {
		t.Fatalf("reload_config refused: %s", msg)
	}
	if got := cfg.Listeners[0].HCM.Filters[0].Engine.ReloadBackoff; got != 2500*time.Millisecond {
		t.Errorf("reload_config.backoff.base_interval = %v, want 2.5s", got)
	}
}
