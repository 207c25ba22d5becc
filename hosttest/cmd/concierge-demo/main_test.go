package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/concierge-wasm/concierge/hosttest"
)

// TestCtrlCDrainsAndExitsZero runs the demo as `make run` does, with every
// filter in envoy/local.yaml, and stops it as Ctrl-C does: it says that it
// drains, ends with a final line, and exits 0, so a clean stop does not look
// like a failure.
func TestCtrlCDrainsAndExitsZero(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "concierge-demo")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	wasmDir := builtPlugins(t)
	// An offset far from the defaults, so a demo someone runs meanwhile
	// does not collide with the test.
	offset := 20000 + os.Getpid()%5000
	cmd := exec.Command(bin, "--port-offset", fmt.Sprint(offset), "--wasm-dir", wasmDir, "--log-level", "warn")
	cmd.Dir = filepath.Join("..", "..", "..")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })

	lines := make(chan string, 256)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	gw := fmt.Sprintf("http://127.0.0.1:%d", 8080+offset)
	var out strings.Builder
	waitFor := func(want string) {
		t.Helper()
		deadline := time.After(2 * time.Minute)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("demo output ended before %q:\n%s\nstderr:\n%s", want, out.String(), stderr.String())
				}
				out.WriteString(l + "\n")
				if strings.Contains(l, want) {
					return
				}
			case <-deadline:
				t.Fatalf("no %q from the demo within 2 minutes:\n%s\nstderr:\n%s", want, out.String(), stderr.String())
			}
		}
	}
	waitFor("Ctrl-C stops everything")
	if !strings.Contains(out.String(), gw) {
		t.Errorf("the guide does not name the moved gateway %s:\n%s", gw, out.String())
	}
	resp, err := http.Get(gw + "/public/status")
	if err != nil {
		t.Fatalf("GET %s/public/status: %v", gw, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET /public/status = %d, want 200", resp.StatusCode)
	}

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	waitFor("draining the gateway")
	waitFor("concierge demo stopped")
	for range lines {
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("demo after SIGINT: %v, want exit status 0\nstderr:\n%s", err, stderr.String())
	}
}

// builtPlugins builds every plugin and returns a folder holding each as
// <name>.wasm, the names envoy/local.yaml gives them.
func builtPlugins(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	plugins, err := filepath.Glob(filepath.Join("..", "..", "..", "plugins", "*", "main.go"))
	if err != nil || len(plugins) == 0 {
		t.Fatalf("no plugins found (%v)", err)
	}
	for _, main := range plugins {
		name := filepath.Base(filepath.Dir(main))
		path, err := hosttest.Build(filepath.Dir(main))
		if err != nil {
			t.Fatalf("building %s: %v", name, err)
		}
		if err := os.Symlink(path, filepath.Join(dir, name+".wasm")); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
