package gateway

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/concierge-wasm/concierge/hosttest/internal/engine"
)

// TestEnvoyCommandLinesRun: the command lines scripts and test suites give
// Envoy (the proxy-wasm Go SDK's end-to-end tests among them) start the
// gateway too.
func TestEnvoyCommandLinesRun(t *testing.T) {
	mod := module(t, "hosttest/testdata/probe")
	path := filepath.Join(t.TempDir(), "envoy.yaml")
	if err := os.WriteFile(path, []byte(bootstrap(wasmFilter("probe", mod, `{"name":"probe"}`), oneRoute, oneCluster(""))), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"--base-id", "1", "--concurrency", "1", "--component-log-level", "wasm:trace", "-c", path},
		{"-c", path, "-l", "debug", "--log-format", "[%Y-%m-%d %T.%e][%t][%l][%n] %v", "--log-format-escaped", "--disable-hot-restart"},
		{"--config-path", path, "--service-cluster", "front", "--service-node", "node-1", "--service-zone", "z1", "--drain-time-s", "1", "--parent-shutdown-time-s", "2", "--use-dynamic-base-id", "--restart-epoch", "0"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := Main(append(args, "--mode", "validate"), &out, &errb, nil); code != 0 {
				t.Fatalf("exit %d, want 0\n%s%s", code, out.String(), errb.String())
			}
		})
	}
}

// TestComponentLogLevels: --component-log-level raises or lowers one
// component against --log-level, as in Envoy; a component Envoy does not
// have is refused.
func TestComponentLogLevels(t *testing.T) {
	var buf bytes.Buffer
	l := NewLogger(&buf, LevelError)
	if err := l.SetComponentLevels("wasm:trace,upstream:off"); err != nil {
		t.Fatal(err)
	}
	l.Debugf("wasm", "w")
	l.Infof("main", "m")
	l.Errorf("upstream", "u")
	l.Errorf("config", "c")
	got := buf.String()
	for want, present := range map[string]bool{"[debug][wasm] w": true, "[main] m": false, "[upstream] u": false, "[error][config] c": true} {
		if strings.Contains(got, want) != present {
			t.Errorf("log %q: contains %q = %v, want %v", got, want, !present, present)
		}
	}
	for _, bad := range []string{"wsam:trace", "wasm", "wasm:loud"} {
		if err := l.SetComponentLevels(bad); err == nil {
			t.Errorf("SetComponentLevels(%q) = nil, want an error", bad)
		}
	}
	var out, errb bytes.Buffer
	if code := Main([]string{"-c", "x.yaml", "--component-log-level", "wsam:trace"}, &out, &errb, nil); code != 2 || !strings.Contains(errb.String(), `invalid component specified "wsam"`) {
		t.Errorf("Main with a misspelt component: exit %d, stderr %q; want 2 naming it", code, errb.String())
	}
}

// TestServiceNodeOverridesTheBootstrap: --service-node and
// --service-cluster replace the bootstrap's node id and cluster.
func TestServiceNodeOverridesTheBootstrap(t *testing.T) {
	bs, err := Parse([]byte("node: { id: from-file, cluster: file-cluster }\n" + bootstrap("", oneRoute, oneCluster(""))))
	if err != nil {
		t.Fatal(err)
	}
	overrideNode(bs, "node-1", "", "z1")
	if bs.GetNode().GetId() != "node-1" || bs.GetNode().GetCluster() != "file-cluster" || bs.GetNode().GetLocality().GetZone() != "z1" {
		t.Errorf("node = %v, want id node-1, cluster file-cluster, zone z1", bs.GetNode())
	}
}

// TestWasmLogPrefix: a plugin's lines carry Envoy's prefix, each of
// config.name, root_id and vm_id only when set.
func TestWasmLogPrefix(t *testing.T) {
	for _, tc := range []struct{ name, root, vm, want string }{
		{"jwt-auth", "jwt-auth", "jwt-auth", "wasm log jwt-auth jwt-auth jwt-auth"},
		{"", "", "", "wasm log"},
		{"http_headers", "", "", "wasm log http_headers"},
		{"", "my_root", "vm.sentinel", "wasm log my_root vm.sentinel"},
	} {
		if got := wasmLogPrefix(tc.name, tc.root, tc.vm); got != tc.want {
			t.Errorf("wasmLogPrefix(%q, %q, %q) = %q, want %q", tc.name, tc.root, tc.vm, got, tc.want)
		}
	}
	var buf bytes.Buffer
	NewLogger(&buf, LevelInfo).plugin(engine.LogEntry{Level: engine.LevelInfo, Message: "hello"}, wasmLogPrefix("", "", ""))
	if !strings.HasSuffix(buf.String(), "[info][wasm] wasm log: hello\n") {
		t.Errorf("plugin line = %q, want Envoy's \"wasm log: hello\"", buf.String())
	}
}
