// Command ratelimit-e2e shows rate-limit's global mode for real: it starts
// redis-server and Envoy's reference rate limit service (the `ratelimit`
// binary of github.com/envoyproxy/ratelimit) on loopback, then two
// gateway replicas (each its own proxy-wasm host, workers and shared data,
// as two Envoys are) serving build/rate-limit.wasm with global mode
// pointed at the service. A client alternating between the replicas is
// limited by the shared, Redis-backed count: 6 a minute in all, where each
// replica's local bucket alone (6 a minute) would admit 12.
//
// `make ratelimit-e2e` runs it when redis-server and ratelimit are on
// PATH. Every process it starts listens on 127.0.0.1 and is stopped when it
// ends.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/concierge-wasm/concierge/hosttest/internal/gateway"
)

const (
	redisPort    = "6391"
	rlsHTTPPort  = "9581"
	rlsGRPCPort  = "9582"
	rlsDebugPort = "9583"
	perMinute    = 6
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "ratelimit-e2e:", err)
		os.Exit(1)
	}
}

func run() error {
	for _, bin := range []string{"redis-server", "ratelimit"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%s is not on PATH: install redis-server (Debian: apt-get install redis-server) and build ratelimit from github.com/envoyproxy/ratelimit (go build -o ratelimit ./src/service_cmd)", bin)
		}
	}
	wasm, err := filepath.Abs(filepath.Join("build", "rate-limit.wasm"))
	if err != nil {
		return err
	}
	if _, err := os.Stat(wasm); err != nil {
		return fmt.Errorf("%s: run make build first", wasm)
	}
	dir, err := os.MkdirTemp("", "ratelimit-e2e")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	// The service's configuration: the filter's domain and the descriptor
	// it sends for the "ip" key.
	cfgDir := filepath.Join(dir, "ratelimit", "config")
	if err := os.MkdirAll(cfgDir, 0o755); err != nil {
		return err
	}
	svc := fmt.Sprintf("domain: concierge\ndescriptors:\n- key: remote_address\n  rate_limit: {unit: minute, requests_per_unit: %d}\n", perMinute)
	if err := os.WriteFile(filepath.Join(cfgDir, "config.yaml"), []byte(svc), 0o644); err != nil {
		return err
	}

	redis := exec.Command("redis-server", "--bind", "127.0.0.1", "--port", redisPort, "--save", "", "--appendonly", "no")
	redis.Stdout, redis.Stderr = io.Discard, os.Stderr
	if err := redis.Start(); err != nil {
		return err
	}
	defer stop(redis)
	if err := waitTCP("127.0.0.1:"+redisPort, 10*time.Second); err != nil {
		return fmt.Errorf("redis-server: %w", err)
	}

	rls := exec.Command("ratelimit")
	rls.Env = append(os.Environ(),
		"USE_STATSD=false", "LOG_LEVEL=warn",
		"REDIS_SOCKET_TYPE=tcp", "REDIS_URL=127.0.0.1:"+redisPort,
		"RUNTIME_ROOT="+dir, "RUNTIME_SUBDIRECTORY=ratelimit", "RUNTIME_WATCH_ROOT=false",
		"HOST=127.0.0.1", "PORT="+rlsHTTPPort,
		"GRPC_HOST=127.0.0.1", "GRPC_PORT="+rlsGRPCPort,
		"DEBUG_HOST=127.0.0.1", "DEBUG_PORT="+rlsDebugPort)
	rls.Stdout, rls.Stderr = os.Stderr, os.Stderr
	if err := rls.Start(); err != nil {
		return err
	}
	defer stop(rls)
	if err := waitHTTP("http://127.0.0.1:"+rlsHTTPPort+"/healthcheck", 20*time.Second); err != nil {
		return fmt.Errorf("ratelimit: %w", err)
	}

	app := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go app.Serve(ln)
	defer app.Close()

	var replicas []*gateway.Gateway
	for range 2 {
		g, err := startReplica(wasm, ln.Addr().(*net.TCPAddr).Port)
		if err != nil {
			return err
		}
		defer g.Close()
		replicas = append(replicas, g)
	}

	fmt.Printf("redis-server 127.0.0.1:%s, ratelimit 127.0.0.1:%s (domain concierge, remote_address: %d a minute)\n", redisPort, rlsHTTPPort, perMinute)
	fmt.Printf("two gateway replicas, each with a local bucket of %d a minute: %s and %s\n\n", perMinute, replicas[0].Addr("ingress"), replicas[1].Addr("ingress"))
	c := &http.Client{Timeout: 5 * time.Second}
	var got []int
	for i := range 2 * perMinute {
		url := "http://" + replicas[i%2].Addr("ingress") + "/api"
		resp, err := c.Get(url)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		fmt.Printf("  GET %-32s %d  retry-after=%q\n", url, resp.StatusCode, resp.Header.Get("retry-after"))
		got = append(got, resp.StatusCode)
	}
	ok := 0
	for _, s := range got {
		if s == 200 {
			ok++
		}
	}
	fmt.Printf("\n%d of %d admitted across both replicas (the shared limit is %d; local buckets alone would admit %d)\n", ok, len(got), perMinute, 2*perMinute)
	if ok != perMinute {
		return errors.New("the shared limit did not hold")
	}
	return nil
}

func startReplica(wasm string, appPort int) (*gateway.Gateway, error) {
	y := strings.NewReplacer("WASM", wasm, "APP_PORT", fmt.Sprint(appPort), "RLS_PORT", rlsHTTPPort, "PER_MINUTE", fmt.Sprint(perMinute)).Replace(bootstrap)
	bs, err := gateway.Parse([]byte(y))
	if err != nil {
		return nil, err
	}
	cfg, err := gateway.Compile(bs, gateway.Options{})
	if err != nil {
		return nil, err
	}
	cfg.Warnings = nil
	return gateway.Start(cfg, gateway.RunOptions{Workers: 2, Log: gateway.NewLogger(os.Stderr, gateway.LevelWarn)})
}

// bootstrap is one replica: rate-limit keyed on the client address, with a
// local bucket as large as the shared limit, and global mode asking the
// service (failure_mode deny, so a broken service shows as 503s).
const bootstrap = `
static_resources:
  listeners:
  - name: ingress
    address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: { prefix: / }
                route: { cluster: app }
          http_filters:
          - name: rate-limit
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: rate-limit
                root_id: rate-limit
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: '{"limits":[{"requests":PER_MINUTE,"per":"1m"}],"key":["ip"],"global":{"cluster":"ratelimit","domain":"concierge","timeout":"1s","failure_mode":"deny"}}'
                vm_config:
                  vm_id: rate-limit
                  runtime: envoy.wasm.runtime.v8
                  code: { local: { filename: "WASM" } }
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: app
    connect_timeout: 1s
    load_assignment:
      cluster_name: app
      endpoints:
      - lb_endpoints:
        - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: APP_PORT } } }
  - name: ratelimit
    connect_timeout: 1s
    load_assignment:
      cluster_name: ratelimit
      endpoints:
      - lb_endpoints:
        - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: RLS_PORT } } }
`

// waitTCP waits, bounded, until addr accepts connections.
func waitTCP(addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s not listening after %v", addr, limit)
}

// waitHTTP waits, bounded, until url answers 200.
func waitHTTP(url string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	c := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		if resp, err := c.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%s not healthy after %v", url, limit)
}

// stop ends a process this command started, and waits for it.
func stop(cmd *exec.Cmd) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		cmd.Process.Kill()
		<-done
	}
}
