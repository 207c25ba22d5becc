// Command concierge-gateway serves an Envoy bootstrap YAML with hosttest's
// proxy-wasm engine: real HTTP in front of the wasm filters, routes and
// clusters the YAML declares, for machines where Envoy itself cannot run.
//
//	go run ./hosttest/cmd/concierge-gateway -c envoy/local.yaml
//	go run ./hosttest/cmd/concierge-gateway -c envoy/envoy.yaml --mode validate
//
// Its flags follow Envoy's: -c, --concurrency, --log-level, --mode
// validate. What it emulates, warns about and refuses is described in
// hosttest/internal/gateway.
package main

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/concierge-wasm/concierge/hosttest/internal/gateway"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	os.Exit(gateway.Main(os.Args[1:], os.Stdout, os.Stderr, stop))
}
