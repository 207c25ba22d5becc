// Command sdk-examples runs the proxy-wasm Go SDK's own end-to-end tests
// against concierge-gateway instead of Envoy: every example of the SDK is
// built with the standard toolchain and served with its envoy.yaml
// unmodified, and the SDK's e2e tests (which start "envoy" from PATH and
// check its log and answers) decide pass or fail.
//
//	make sdk-examples SDK=/path/to/proxy-wasm-go-sdk   # a git clone
//
// The SDK is not a dependency of this repository: its examples are nested
// modules without versions, so the Go module proxy does not serve them
// (RATIONALE.md, "Plugins written for Envoy by others"). Bring a clone.
//
// The tests run in a private network namespace (`unshare -rn`, Linux user
// namespaces): loopback only, httpbin.org resolved to 127.0.0.1 where a
// small stand-in answers on port 80, so nothing leaves the machine. The
// examples are built into the clone (main.wasm beside each main.go, where
// their envoy.yaml looks), as the SDK's own Makefile does.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

func main() {
	sdk := flag.String("sdk", "", "a clone of github.com/proxy-wasm/proxy-wasm-go-sdk")
	run := flag.String("run", "", "only the e2e tests matching this regexp (go test -run)")
	inside := flag.Bool("inside-namespace", false, "internal: the part that runs in the private network namespace")
	flag.Parse()
	if *sdk == "" {
		fmt.Fprintln(os.Stderr, "sdk-examples: -sdk DIR is required (a clone of github.com/proxy-wasm/proxy-wasm-go-sdk)")
		os.Exit(2)
	}
	var err error
	if *inside {
		err = runInside(*sdk, *run)
	} else {
		err = prepare(*sdk, *run)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sdk-examples:", err)
		os.Exit(1)
	}
}

// prepare builds the gateway and the examples, then runs the tests in a
// private network namespace.
func prepare(sdk, run string) error {
	sdk, err := filepath.Abs(sdk)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(sdk, "e2e")); err != nil {
		return fmt.Errorf("%s has no e2e folder: is it a clone of the SDK?", sdk)
	}
	work, err := os.MkdirTemp("", "sdk-examples-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	bin := filepath.Join(work, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		return err
	}
	fmt.Println("== building concierge-gateway (as envoy on PATH for the SDK's tests)")
	if err := goCmd("", nil, "build", "-o", filepath.Join(bin, "envoy"), "github.com/concierge-wasm/concierge/hosttest/cmd/concierge-gateway"); err != nil {
		return err
	}
	// An example is a folder with a main.go, one level down (helloworld)
	// or two (the sender and receiver of shared_queue).
	examples, _ := filepath.Glob(filepath.Join(sdk, "examples", "*", "main.go"))
	nested, _ := filepath.Glob(filepath.Join(sdk, "examples", "*", "*", "main.go"))
	examples = append(examples, nested...)
	if len(examples) == 0 {
		return errors.New("no examples/*/main.go in the clone")
	}
	var broken []string
	for _, m := range examples {
		dir := filepath.Dir(m)
		name, _ := filepath.Rel(filepath.Join(sdk, "examples"), dir)
		fmt.Println("== building example", name)
		if err := goCmd(dir, []string{"GOOS=wasip1", "GOARCH=wasm"}, "build", "-buildmode=c-shared", "-o", "main.wasm", "."); err != nil {
			broken = append(broken, name)
		}
	}
	if len(broken) > 0 {
		fmt.Println("examples that did not build (their tests will fail):", strings.Join(broken, ", "))
	}
	// The namespace has no network: fetch and compile the tests' own
	// dependencies first.
	fmt.Println("== compiling the SDK's e2e tests")
	if err := goCmd(sdk, nil, "test", "-count=1", "-run", "^$", "./e2e/..."); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	args := []string{"-rnm", self, "-inside-namespace", "-sdk", sdk}
	if run != "" {
		args = append(args, "-run", run)
	}
	cmd := exec.Command("unshare", args...)
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	fmt.Println("== running the SDK's e2e tests in a private network namespace")
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("unshare -rnm (Linux user namespaces needed): %w", err)
	}
	return nil
}

// runInside brings loopback up, points httpbin.org at it, serves the
// stand-in and runs the SDK's e2e tests.
func runInside(sdk, run string) error {
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return fmt.Errorf("ip link set lo up: %v: %s", err, out)
	}
	hosts, err := os.CreateTemp("", "hosts-")
	if err != nil {
		return err
	}
	defer os.Remove(hosts.Name())
	fmt.Fprintln(hosts, "127.0.0.1 localhost httpbin.org")
	fmt.Fprintln(hosts, "::1 localhost")
	hosts.Close()
	if err := syscall.Mount(hosts.Name(), "/etc/hosts", "", syscall.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind-mounting a hosts file: %w", err)
	}
	go func() {
		err := http.ListenAndServe("127.0.0.1:80", http.HandlerFunc(httpbin))
		fmt.Fprintln(os.Stderr, "sdk-examples: httpbin stand-in:", err)
	}()
	args := []string{"test", "-count=1", "-v", "-timeout", "20m", "./e2e/..."}
	if run != "" {
		args = append(args, "-run", run)
	}
	err = goCmd(sdk, nil, args...)
	summary(err)
	return nil
}

// httpbin answers what the examples ask httpbin.org for (a JSON echo).
func httpbin(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("content-type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"uuid": "0b0c5e9e-0000-4000-8000-000000000000", "path": r.URL.Path, "headers": r.Header})
}

func summary(err error) {
	if err != nil {
		fmt.Println("== some of the SDK's e2e tests failed against concierge-gateway (above: --- FAIL lines)")
		return
	}
	fmt.Println("== every SDK e2e test passed against concierge-gateway")
}

func goCmd(dir string, env []string, args ...string) error {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	return cmd.Run()
}
