// Command concierge-demo is `make run`: the loopback demo services that
// envoy/local.yaml points at (two users instances, orders, a flaky
// service, an identity provider with a JWKS) and concierge-gateway serving
// envoy/local.yaml in front of them on 127.0.0.1:8080. It prints a demo
// token and what to try.
//
//	go run ./hosttest/cmd/concierge-demo                  # services + gateway
//	go run ./hosttest/cmd/concierge-demo --services-only  # services alone, for `make envoy`
//	go run ./hosttest/cmd/concierge-demo --port-offset 1000  # every port + 1000 (9080, 10901, …)
//
// Run it from the repository root: local.yaml names build/<name>.wasm
// (--wasm-dir reads the modules from another folder). SIGINT or SIGTERM
// drains the requests in flight and exits 0.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/concierge-wasm/concierge/hosttest/internal/demo"
	"github.com/concierge-wasm/concierge/hosttest/internal/gateway"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, stop))
}

func run(args []string, stdout, stderr io.Writer, stop <-chan os.Signal) int {
	fs := flag.NewFlagSet("concierge-demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "envoy/local.yaml", "the bootstrap the gateway serves")
	servicesOnly := fs.Bool("services-only", false, "start the demo services only (for Envoy itself: make envoy)")
	concurrency := fs.Int("concurrency", 2, "gateway worker VMs per filter")
	logLevel := fs.String("log-level", "info", "gateway log level")
	offset := fs.Int("port-offset", envInt("CONCIERGE_PORT_OFFSET"), "add this to every port: the gateway (8080), admin (9901) and the demo services (env CONCIERGE_PORT_OFFSET)")
	wasmDir := fs.String("wasm-dir", "", "read every module from this folder (by its base name) instead of the path the bootstrap gives")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *offset < 0 || 9901+*offset > 65535 {
		fmt.Fprintf(stderr, "concierge-demo: --port-offset: must keep every port in 1..65535, got %d\n", *offset)
		return 2
	}
	level, err := gateway.ParseLevel(*logLevel)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	d, err := demo.Start(demo.LocalPorts.Shift(*offset))
	if err != nil {
		fmt.Fprintf(stderr, "concierge-demo: %v (is another demo running? --port-offset moves every port)\n", err)
		return 1
	}
	defer d.Close()
	var g *gateway.Gateway
	if !*servicesOnly {
		bs, err := gateway.LoadFile(*path)
		if err != nil {
			fmt.Fprintf(stderr, "concierge-demo: %v\n", err)
			return 1
		}
		demo.ShiftLoopbackPorts(bs, *offset)
		cfg, err := gateway.Compile(bs, gateway.Options{WasmDir: *wasmDir})
		if err != nil {
			fmt.Fprintf(stderr, "concierge-demo: %s: %v\n", *path, err)
			return 1
		}
		g, err = gateway.Start(cfg, gateway.RunOptions{Workers: *concurrency, Log: gateway.NewLogger(stderr, level)})
		if err != nil {
			fmt.Fprintf(stderr, "concierge-demo: %v\n", err)
			return 1
		}
	}
	token, err := d.Token("demo-user", []string{"reader"}, time.Hour)
	if err != nil {
		fmt.Fprintf(stderr, "concierge-demo: signing the demo token: %v\n", err)
		return 1
	}
	printGuide(stdout, d, token, *path, g != nil, *offset)
	sig := <-stop
	fmt.Fprintf(stdout, "\n%v: stopping\n", sig)
	status := 0
	if g != nil {
		fmt.Fprintf(stdout, "draining the gateway: requests in flight finish (up to %v)\n", drainTimeout)
		ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
		defer cancel()
		if err := g.Shutdown(ctx); err != nil {
			fmt.Fprintf(stderr, "concierge-demo: shutdown: %v\n", err)
			status = 1
		}
	}
	d.Close()
	fmt.Fprintln(stdout, "concierge demo stopped")
	return status
}

// drainTimeout bounds how long a stop waits for requests in flight.
const drainTimeout = 10 * time.Second

func envInt(name string) int {
	n, _ := strconv.Atoi(os.Getenv(name))
	return n
}

func printGuide(w io.Writer, d *demo.Demo, token, path string, gateway bool, offset int) {
	gw, admin := fmt.Sprintf("http://127.0.0.1:%d", 8080+offset), fmt.Sprintf("http://127.0.0.1:%d", 9901+offset)
	fmt.Fprintf(w, "\nconcierge demo services: users %s · orders %s · flaky %s · idp (JWKS) %s\n",
		strings.Join(d.Addrs["users"], " "), d.Addrs["orders"][0], d.Addrs["flaky"][0], d.Addrs["idp"][0])
	if gateway {
		fmt.Fprintf(w, "gateway: %s serving %s · admin %s (/ready /stats/prometheus /clusters)\n", gw, path, admin)
	} else {
		fmt.Fprintf(w, "services only: start Envoy (or concierge-gateway) with %s\n", path)
	}
	guide := fmt.Sprintf(`
A demo token (ES256, sub demo-user, roles reader, valid until %s):

  export TOKEN=%s

Try:
  curl -i http://127.0.0.1:8080/api/users/1                                     # 401: no token
  curl -i -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8080/api/users/1   # 200 + the identity headers users saw
  curl -i -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8080/api/orders/7  # /orders/7 upstream, JSON envelope with the request ID
  curl -i http://127.0.0.1:8080/public/status                                   # jwt-auth is off on this route
  curl -si http://127.0.0.1:8080/public/status | grep -i -e x-cache -e cache-status   # run twice: MISS, then HIT (response-cache)
  for i in 1 2 3 4 5 6; do curl -s -o /dev/null -w '%%{http_code} ' http://127.0.0.1:8080/public/status; done; echo   # rate-limit: 5 then 429
  for i in 1 2 3 4 5; do curl -s -o /dev/null -w '%%{http_code} ' -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8080/api/flaky; done; echo
                                                                                # 200 200 503 (flaky), then 503 503 from the open breaker
  curl -i -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8080/api/flaky     # the breaker's 503: Retry-After, {"error":"service unavailable","retryAfter":…}
  curl -s http://127.0.0.1:9901/stats/prometheus | grep concierge_

A demo partner API key (key-auth; consumer demo-partner, permission read):

  export KEY=%s

  curl -i -H "x-api-key: $KEY" http://127.0.0.1:8080/api/users/1                # 200 as the partner: x-consumer: demo-partner
  curl -i -X POST -H "x-api-key: $KEY" http://127.0.0.1:8080/api/users/1        # 403: the key may only read
  curl -i -H "x-api-key: wrong" http://127.0.0.1:8080/api/users/1               # 401 invalid API key

Ctrl-C stops everything.
`, time.Now().Add(time.Hour).UTC().Format("15:04 MST"), token, demo.PartnerKey)
	// The guide is written for the default ports; an offset moves them all.
	fmt.Fprint(w, strings.NewReplacer("http://127.0.0.1:8080", gw, "http://127.0.0.1:9901", admin).Replace(guide))
}
