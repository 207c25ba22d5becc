// Command concierge-demo is `make run`: the loopback demo services that
// envoy/local.yaml points at (two users instances, orders, a flaky
// service, an identity provider with a JWKS) and concierge-gateway serving
// envoy/local.yaml in front of them on 127.0.0.1:8080. It prints a demo
// token and what to try.
//
//	go run ./hosttest/cmd/concierge-demo                  # services + gateway
//	go run ./hosttest/cmd/concierge-demo --services-only  # services alone, for `make envoy`
//
// Run it from the repository root: local.yaml names build/<name>.wasm.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
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
	if err := fs.Parse(args); err != nil {
		return 2
	}
	level, err := gateway.ParseLevel(*logLevel)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	d, err := demo.Start(demo.LocalPorts)
	if err != nil {
		fmt.Fprintf(stderr, "concierge-demo: %v (is another demo running?)\n", err)
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
		cfg, err := gateway.Compile(bs, gateway.Options{})
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
	printGuide(stdout, d, token, *path, g != nil)
	<-stop
	if g != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := g.Shutdown(ctx); err != nil {
			fmt.Fprintf(stderr, "concierge-demo: shutdown: %v\n", err)
		}
	}
	return 0
}

func printGuide(w io.Writer, d *demo.Demo, token, path string, gateway bool) {
	fmt.Fprintf(w, "\nconcierge demo services: users %s · orders %s · flaky %s · idp (JWKS) %s\n",
		strings.Join(d.Addrs["users"], " "), d.Addrs["orders"][0], d.Addrs["flaky"][0], d.Addrs["idp"][0])
	if gateway {
		fmt.Fprintf(w, "gateway: http://127.0.0.1:8080 serving %s · admin http://127.0.0.1:9901 (/ready /stats/prometheus /clusters)\n", path)
	} else {
		fmt.Fprintf(w, "services only: start Envoy (or concierge-gateway) with %s\n", path)
	}
	fmt.Fprintf(w, `
A demo token (ES256, sub demo-user, roles reader, valid until %s):

  export TOKEN=%s

Try:
  curl -i http://127.0.0.1:8080/api/users/1                                     # 401: no token
  curl -i -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8080/api/users/1   # 200 + the identity headers users saw
  curl -i -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8080/api/orders/7  # /orders/7 upstream, JSON envelope with the request ID
  curl -i http://127.0.0.1:8080/public/status                                   # jwt-auth is off on this route
  curl -si http://127.0.0.1:8080/public/status | grep -i -e x-cache -e cache-status   # run twice: MISS, then HIT (response-cache)
  for i in 1 2 3; do curl -s -o /dev/null -w '%%{http_code}\n' -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8080/api/flaky; done
  curl -s http://127.0.0.1:9901/stats/prometheus | grep concierge_

Ctrl-C stops everything.
`, time.Now().Add(time.Hour).UTC().Format("15:04 MST"), token)
}
