// Command concierge-cachetests runs the public HTTP cache test suite
// (npm http-cache-tests, the suite behind cache-tests.fyi) against
// response-cache behind the local gateway, and prints pass counts by test
// kind beside the results the package publishes for other caches.
//
//	make cache-tests     (or: go run ./hosttest/cmd/concierge-cachetests)
//
// It installs the pinned package into a temporary folder with npm, starts
// the suite's origin server bound to 127.0.0.1, serves a bootstrap with
// response-cache (configuration -config, default "{}") in front of it, and
// runs the suite's CLI against the gateway. Node.js and npm must be on
// PATH. Not part of `make test`: it needs the npm registry.
package main

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/concierge-wasm/concierge/hosttest/internal/gateway"
)

// suite is the pinned package.
const suite = "http-cache-tests@0.4.5"

// loopback.mjs makes the suite's server listen on 127.0.0.1 only (its own
// code binds every interface).
//
//go:embed loopback.mjs
var loopback []byte

// score.mjs counts passes per test kind as the suite's display code does
// (lib/display.mjs determineTestResult, dependencies honoured).
//
//go:embed score.mjs
var score []byte

const bootstrap = `
static_resources:
  listeners:
  - name: ingress
    address:
      socket_address: { address: 127.0.0.1, port_value: 0 }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress_http
          route_config:
            name: all
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: { prefix: / }
                route: { cluster: origin, timeout: 30s }
          http_filters:
          - name: response-cache
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: response-cache
                root_id: response-cache
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: %q
                vm_config:
                  vm_id: response-cache
                  runtime: envoy.wasm.runtime.v8
                  code:
                    local: { filename: %s }
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: origin
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: origin
      endpoints:
      - lb_endpoints:
        - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: %d } } }
`

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "concierge-cachetests:", err)
		os.Exit(1)
	}
}

func run() error {
	wasm := flag.String("wasm", "build/response-cache.wasm", "the response-cache module (make build)")
	cfg := flag.String("config", "{}", "response-cache configuration (JSON)")
	keep := flag.String("results", "", "also write the suite's raw results (JSON) to this file")
	flag.Parse()
	module, err := filepath.Abs(*wasm)
	if err != nil {
		return err
	}
	if _, err := os.Stat(module); err != nil {
		return fmt.Errorf("%w (run make build first)", err)
	}
	dir, err := os.MkdirTemp("", "concierge-cachetests-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	pkg, err := install(dir)
	if err != nil {
		return err
	}
	for name, b := range map[string][]byte{"loopback.mjs": loopback, "score.mjs": score} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}

	// The suite's origin, on a free loopback port.
	port, err := freePort()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	server := exec.CommandContext(ctx, "node", "--import", filepath.Join(dir, "loopback.mjs"), "server/server.mjs")
	server.Dir = pkg
	server.Env = append(os.Environ(), "npm_config_port="+strconv.Itoa(port), "npm_config_protocol=http",
		"npm_package_config_protocol=http", "npm_config_pidfile="+filepath.Join(dir, "server.pid"))
	server.Stdout, server.Stderr = os.Stderr, os.Stderr
	if err := server.Start(); err != nil {
		return fmt.Errorf("starting the suite's server: %w", err)
	}
	defer server.Wait()         //nolint:errcheck // killed by cancel
	defer server.Process.Kill() //nolint:errcheck
	if err := waitHTTP(fmt.Sprintf("http://127.0.0.1:%d/", port), 20*time.Second); err != nil {
		return fmt.Errorf("the suite's server: %w", err)
	}

	bs, err := gateway.Parse([]byte(fmt.Sprintf(bootstrap, *cfg, module, port)))
	if err != nil {
		return err
	}
	gc, err := gateway.Compile(bs, gateway.Options{})
	if err != nil {
		return err
	}
	gc.Warnings = nil
	g, err := gateway.Start(gc, gateway.RunOptions{Workers: 2, Log: gateway.NewLogger(os.Stderr, gateway.LevelError)})
	if err != nil {
		return err
	}
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		g.Shutdown(sctx) //nolint:errcheck
	}()
	base := "http://" + g.Addr("ingress")

	fmt.Printf("concierge-cachetests: %s against response-cache %s (config %s) at %s\n\n", suite, *wasm, *cfg, base)
	runCtx, runCancel := context.WithTimeout(ctx, 10*time.Minute)
	defer runCancel()
	cli := exec.CommandContext(runCtx, "node", "--no-warnings", "cli.mjs")
	cli.Dir = pkg
	cli.Env = append(os.Environ(), "npm_config_base="+base, "npm_package_config_id=", "npm_config_id=")
	var out bytes.Buffer
	cli.Stdout, cli.Stderr = &out, os.Stderr
	if err := cli.Run(); err != nil {
		return fmt.Errorf("the suite's CLI: %w", err)
	}
	results := filepath.Join(dir, "results.json")
	if err := os.WriteFile(results, out.Bytes(), 0o644); err != nil {
		return err
	}
	if *keep != "" {
		if err := os.WriteFile(*keep, out.Bytes(), 0o644); err != nil {
			return err
		}
	}
	sc := exec.CommandContext(ctx, "node", "--no-warnings", filepath.Join(dir, "score.mjs"), pkg, results)
	sc.Stdout, sc.Stderr = os.Stdout, os.Stderr
	return sc.Run()
}

// install puts the pinned suite and its runtime dependencies under dir.
func install(dir string) (string, error) {
	pack := exec.Command("npm", "pack", "--silent", suite)
	pack.Dir = dir
	pack.Stderr = os.Stderr
	name, err := pack.Output()
	if err != nil {
		return "", fmt.Errorf("npm pack %s: %w", suite, err)
	}
	tgz := strings.TrimSpace(string(name))
	if err := exec.Command("tar", "-xzf", filepath.Join(dir, tgz), "-C", dir).Run(); err != nil {
		return "", fmt.Errorf("unpacking %s: %w", tgz, err)
	}
	pkg := filepath.Join(dir, "package")
	inst := exec.Command("npm", "install", "--omit=dev", "--no-audit", "--no-fund", "--silent")
	inst.Dir = pkg
	inst.Stdout, inst.Stderr = os.Stderr, os.Stderr
	if err := inst.Run(); err != nil {
		return "", fmt.Errorf("npm install in %s: %w", pkg, err)
	}
	return pkg, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitHTTP(url string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("not answering at " + url)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
