package hosttest_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/concierge-wasm/concierge/hosttest"
	"github.com/concierge-wasm/concierge/hosttest/internal/engine"
)

func TestLoadFromFolderWasmFileAndBytes(t *testing.T) {
	path, err := hosttest.Build("testdata/noop")
	if err != nil {
		t.Fatal(err)
	}
	wasm, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for name, opt := range map[string]hosttest.Option{
		"folder": hosttest.Plugin("testdata/noop"),
		"file":   hosttest.Plugin(path),
		"bytes":  hosttest.Wasm(wasm),
	} {
		t.Run(name, func(t *testing.T) {
			h := hosttest.New(t, opt)
			wantStatus(t, h.Do(hosttest.GET("/")), 200)
		})
	}
}

func TestMissingWasmNamesTheBuildCommand(t *testing.T) {
	_, err := hosttest.Start(hosttest.Plugin("testdata/does-not-exist.wasm"))
	if err == nil || !strings.Contains(err.Error(), "go build -buildmode=c-shared") {
		t.Errorf("Start(missing .wasm) error = %v, want one naming the build command", err)
	}
}

func TestNotAProxyWasmModule(t *testing.T) {
	// The smallest valid wasm module: magic and version only.
	_, err := hosttest.Start(hosttest.Wasm([]byte("\x00asm\x01\x00\x00\x00")))
	if err == nil || !strings.Contains(err.Error(), "not a proxy-wasm module") {
		t.Errorf("Start(empty module) error = %v", err)
	}
}

// Envoy starts the root context in the main-thread VM and in each worker
// VM, so on_vm_start runs once per VM.
func TestOneVMPerWorkerPlusMain(t *testing.T) {
	for _, workers := range []int{1, 2, 4} {
		h := probeHost(t, "", hosttest.Workers(workers))
		if got := len(h.LogsContaining("plugin_start name=p")); got != workers+1 {
			t.Errorf("Workers(%d): plugin started %d times, want %d", workers, got, workers+1)
		}
		if got := len(h.MemoryBytes("p")); got != workers+1 {
			t.Errorf("Workers(%d): %d VMs, want %d", workers, got, workers+1)
		}
	}
}

func TestVMConfigurationAndEnvironment(t *testing.T) {
	h := hosttest.New(t, hosttest.Plugin(probeDir), hosttest.Name("p"), hosttest.Config(`{"name":"p"}`),
		hosttest.VMConfig("vm-settings"), hosttest.Env("GOGC", "50"), hosttest.Env("REGION", "eu"))
	if !containsLog(h, "vm_start config=vm-settings") {
		t.Errorf("VM configuration not passed to on_vm_start: %v", h.LogsContaining("vm_start"))
	}
	resp := h.Do(hosttest.GET("/").Header("x-p", "env:REGION"))
	wantHeader(t, "env REGION", resp.Upstream.Header("x-p-env"), "eu")
	resp = h.Do(hosttest.GET("/").Header("x-p", "env:HOME"))
	wantHeader(t, "env HOME (not in vm_config)", resp.Upstream.Header("x-p-env"), "")
}

func TestRefusedConfigurationIsAnErrorWithLogs(t *testing.T) {
	_, err := hosttest.Start(hosttest.Plugin(probeDir), hosttest.Config(`{"name":"p","fail_start":true}`))
	var ce *engine.ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("Start with fail_start = %v, want a ConfigError", err)
	}
	if !strings.Contains(err.Error(), "proxy_on_configure returned false") || !strings.Contains(err.Error(), "refusing config") {
		t.Errorf("error %q should say on_configure refused and carry the plugin's log line", err)
	}
	_, err = hosttest.Start(hosttest.Plugin(probeDir), hosttest.Config(`{not json`))
	if err == nil || !strings.Contains(err.Error(), "invalid config") {
		t.Errorf("Start with broken JSON = %v", err)
	}
}

// In Envoy only logging works while the module initialises: a Go init()
// that defines a metric gets INTERNAL_FAILURE, the SDK panics, and the
// plugin never loads.
func TestRestrictedCallsDuringInit(t *testing.T) {
	_, err := hosttest.Start(hosttest.Plugin("testdata/badinit"))
	if err == nil {
		t.Fatal("badinit loaded; Envoy refuses host calls other than logging during _initialize")
	}
	for _, want := range []string{"_initialize", "internal failure", "SetSharedData during init"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}

func TestDuplicateFilterNamesRefused(t *testing.T) {
	_, err := hosttest.Start(hosttest.Chain(probeFilter("a", ""), probeFilter("a", "")))
	if err == nil || !strings.Contains(err.Error(), `two filters named "a"`) {
		t.Errorf("err = %v", err)
	}
}
