package hosttest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/concierge-wasm/concierge/hosttest"
)

const sharedVMDir = "testdata/sharedvm"

// sharedVMFilter is a testdata/sharedvm plugin named name on vm_id vmID.
func sharedVMFilter(name, vmID, extra string) hosttest.Filter {
	return hosttest.Filter{Name: name, Plugin: sharedVMDir, VMID: vmID, Config: `{"name":"` + name + `"` + extra + `}`}
}

// workerLogs are the messages logged on one worker (-1: main thread)
// that start with prefix.
func workerLogs(h *hosttest.Host, worker int, prefix string) []string {
	var out []string
	for _, l := range h.Logs() {
		if l.Worker == worker && strings.HasPrefix(l.Message, prefix) {
			out = append(out, l.Filter+": "+l.Message)
		}
	}
	return out
}

func wantLines(t testing.TB, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n got %q\nwant %q", what, got, want)
	}
}

// TestSharedVM: filters of a chain whose vm_config matches (vm_id, code,
// VM configuration, environment) share one VM per thread, as Envoy's do:
// each is a root context of that VM (ids 1, 2, … in chain order) and Go
// globals are shared, so the package counter the sharedvm plugin bumps in
// OnPluginStart reads 1 then 2. A filter that differs in any of those has
// a VM of its own. Stream contexts resolve to their own plugin (the
// plugin_name they read).
func TestSharedVM(t *testing.T) {
	withVMConfig := func(f hosttest.Filter, c string) hosttest.Filter { f.VMConfig = c; return f }
	withEnv := func(f hosttest.Filter, k, v string) hosttest.Filter { f.Env = map[string]string{k: v}; return f }
	tests := []struct {
		name    string
		filters []hosttest.Filter
		starts  []string          // plugin_start lines on worker 0, in order
		headers map[string]string // request headers the upstream sees
	}{
		{"same vm_id and code share; another vm_id does not", []hosttest.Filter{
			sharedVMFilter("a", "x", ""), sharedVMFilter("b", "x", ""), sharedVMFilter("c", "y", ""),
		}, []string{
			"a: plugin_start name=a root=1 count=1",
			"b: plugin_start name=b root=2 count=2",
			"c: plugin_start name=c root=1 count=1",
		}, map[string]string{
			"x-a-root": "1", "x-a-count": "2", "x-a-parent-name": "a",
			"x-b-root": "2", "x-b-count": "2", "x-b-parent-name": "b",
			"x-c-root": "1", "x-c-count": "1", "x-c-parent-name": "c",
		}},
		{"an empty vm_id is a vm_id like any other", []hosttest.Filter{
			sharedVMFilter("a", "", ""), sharedVMFilter("b", "", ""),
		}, []string{
			"a: plugin_start name=a root=1 count=1",
			"b: plugin_start name=b root=2 count=2",
		}, map[string]string{"x-a-root": "1", "x-b-root": "2", "x-b-count": "2"}},
		{"a different VM configuration does not share", []hosttest.Filter{
			sharedVMFilter("a", "x", ""), withVMConfig(sharedVMFilter("b", "x", ""), "other"),
		}, []string{
			"a: plugin_start name=a root=1 count=1",
			"b: plugin_start name=b root=1 count=1",
		}, map[string]string{"x-a-count": "1", "x-b-root": "1", "x-b-count": "1"}},
		{"different environment variables do not share", []hosttest.Filter{
			sharedVMFilter("a", "x", ""), withEnv(sharedVMFilter("b", "x", ""), "K", "v"),
		}, []string{
			"a: plugin_start name=a root=1 count=1",
			"b: plugin_start name=b root=1 count=1",
		}, map[string]string{"x-a-count": "1", "x-b-count": "1"}},
		{"different code on the same vm_id does not share", []hosttest.Filter{
			sharedVMFilter("a", "x", ""),
			{Name: "p", Plugin: probeDir, VMID: "x", Config: `{"name":"p"}`},
			sharedVMFilter("b", "x", ""),
		}, []string{
			"a: plugin_start name=a root=1 count=1",
			"p: plugin_start name=p",
			"b: plugin_start name=b root=2 count=2",
		}, map[string]string{"x-a-root": "1", "x-b-root": "2", "x-b-count": "2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := hosttest.New(t, hosttest.Chain(tc.filters...), hosttest.Workers(1))
			wantLines(t, "plugin starts on worker 0", workerLogs(h, 0, "plugin_start"), tc.starts)
			wantLines(t, "plugin starts on the main thread", workerLogs(h, -1, "plugin_start"), tc.starts)
			resp := h.Do(hosttest.GET("/"))
			wantStatus(t, resp, 200)
			for k, v := range tc.headers {
				wantHeader(t, k, resp.Upstream.Header(k), v)
			}
		})
	}
}

// TestSharedVMStart: on_vm_start runs for each root context of a shared
// VM (cpp-host's ContextBase::onStart), so a module sees it twice in one
// VM with two plugins; its globals show it is the same VM.
func TestSharedVMStart(t *testing.T) {
	h := hosttest.New(t, hosttest.Chain(sharedVMFilter("a", "x", ""), sharedVMFilter("b", "x", "")), hosttest.Workers(1))
	wantLines(t, "vm starts on worker 0", workerLogs(h, 0, "vm_start"), []string{"a: vm_start n=1", "b: vm_start n=2"})
}

// TestSharedVMFailReload: a trap in one plugin's stream fails the whole
// shared VM. Each plugin then follows its own failure policy, as in Envoy:
// FAIL_RELOAD plugins move to one fresh VM (new globals, root contexts
// re-created and re-configured in the order they reload), a FAIL_CLOSED
// one keeps answering 503 and a FAIL_OPEN one is skipped.
func TestSharedVMFailReload(t *testing.T) {
	policy := func(f hosttest.Filter, p hosttest.FailurePolicy) hosttest.Filter { f.FailurePolicy = p; return f }
	reload := func(name string) hosttest.Filter {
		return policy(sharedVMFilter(name, "x", ""), hosttest.FailReload)
	}
	tests := []struct {
		name      string
		filters   []hosttest.Filter
		panicIn   string
		status    int               // after the reload backoff
		by        string            // LocalReplyBy when status is a local reply
		headers   map[string]string // upstream headers when status is 200
		absent    []string          // upstream headers that must be missing
		restarted []string          // plugin_start lines on worker 0 after the trap
	}{
		{"a trap in the first plugin brings both back", []hosttest.Filter{reload("a"), reload("b")}, "a",
			200, "", map[string]string{"x-a-root": "1", "x-a-count": "2", "x-b-root": "2", "x-b-count": "2"}, nil,
			[]string{"a: plugin_start name=a root=1 count=1", "b: plugin_start name=b root=2 count=2"}},
		{"a trap in the second plugin brings both back", []hosttest.Filter{reload("a"), reload("b")}, "b",
			200, "", map[string]string{"x-a-root": "1", "x-b-root": "2", "x-b-count": "2"}, nil,
			[]string{"a: plugin_start name=a root=1 count=1", "b: plugin_start name=b root=2 count=2"}},
		{"a FAIL_OPEN plugin of the failed VM is skipped", []hosttest.Filter{reload("a"), policy(sharedVMFilter("b", "x", ""), hosttest.FailOpen)}, "a",
			200, "", map[string]string{"x-a-root": "1", "x-a-count": "1"}, []string{"x-b-root"},
			[]string{"a: plugin_start name=a root=1 count=1"}},
		{"a FAIL_CLOSED plugin of the failed VM answers 503", []hosttest.Filter{reload("a"), sharedVMFilter("b", "x", "")}, "a",
			503, "b", nil, nil,
			[]string{"a: plugin_start name=a root=1 count=1"}},
		{"a plugin on another VM is untouched", []hosttest.Filter{reload("a"), sharedVMFilter("c", "y", "")}, "a",
			200, "", map[string]string{"x-a-root": "1", "x-c-root": "1", "x-c-count": "1"}, nil,
			[]string{"a: plugin_start name=a root=1 count=1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := hosttest.New(t, hosttest.Chain(tc.filters...), hosttest.Workers(1), hosttest.AllowTraps())
			resp := h.Do(hosttest.GET("/").Header("x-panic", tc.panicIn))
			wantStatus(t, resp, 503)
			// Which filter is credited differs: the other plugin of the
			// failed VM fails the stream too while the reply is encoded.
			wantHeader(t, "details", resp.Details, "wasm_fail_stream")
			if len(h.Traps()) != 1 || h.Traps()[0].Filter != tc.panicIn {
				t.Fatalf("traps = %v, want one in %s", h.Traps(), tc.panicIn)
			}
			h.ClearLogs()
			h.Clock().Advance(2 * time.Second) // past the reload backoff (at most 1.5s)
			resp = h.Do(hosttest.GET("/"))
			wantStatus(t, resp, tc.status)
			if tc.status != 200 {
				wantHeader(t, "LocalReplyBy", resp.LocalReplyBy, tc.by)
				wantHeader(t, "details", resp.Details, "wasm_fail_stream")
			}
			for k, v := range tc.headers {
				wantHeader(t, k, resp.Upstream.Header(k), v)
			}
			for _, k := range tc.absent {
				if v := resp.Upstream.Header(k); v != "" {
					t.Errorf("%s = %q, want none (the filter is skipped)", k, v)
				}
			}
			wantLines(t, "plugin starts on worker 0 after the trap", workerLogs(h, 0, "plugin_start"), tc.restarted)
			// And the reloaded VM keeps serving.
			wantStatus(t, h.Do(hosttest.GET("/")), tc.status)
		})
	}
}

// TestSharedVMTicks: each root context of a shared VM has its own tick
// period (cpp-host keys the timer by root context id).
func TestSharedVMTicks(t *testing.T) {
	h := hosttest.New(t, hosttest.Chain(
		sharedVMFilter("a", "x", `,"tick_ms":100`),
		sharedVMFilter("b", "x", `,"tick_ms":250`),
	), hosttest.Workers(1))
	h.Clock().Advance(time.Second)
	a, b := 0, 0
	for _, l := range workerLogs(h, 0, "tick") {
		switch l {
		case "a: tick name=a root=1":
			a++
		case "b: tick name=b root=2":
			b++
		default:
			t.Errorf("unexpected tick line %q", l)
		}
	}
	// Periods run end to start on a clock that real time also moves, so
	// the last tick of each may fall just past the second.
	if a < 9 || a > 10 || b < 3 || b > 4 {
		t.Errorf("ticks in 1s: a (100ms) %d, b (250ms) %d; want 9-10 and 3-4", a, b)
	}
}
