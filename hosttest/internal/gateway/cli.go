package gateway

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/concierge-wasm/concierge/hosttest/internal/engine"
)

// Main is concierge-gateway's command line, shaped after Envoy's so that
// scripts carry over:
//
//	concierge-gateway -c envoy/local.yaml [--concurrency N] [--log-level info] [--mode serve|validate]
//
// In serve mode it runs until stop delivers (SIGINT or SIGTERM), then
// stops accepting connections and finishes the requests in flight (at
// most --drain-time-s). It returns the process exit code.
func Main(args []string, stdout, stderr io.Writer, stop <-chan os.Signal) int {
	fs := flag.NewFlagSet("concierge-gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var path string
	fs.StringVar(&path, "c", "", "Envoy bootstrap YAML to serve")
	fs.StringVar(&path, "config-path", "", "same as -c")
	concurrency := fs.Int("concurrency", 2, "worker threads, each with its own VMs")
	logLevel := fs.String("log-level", "info", "trace, debug, info, warning, error, critical or off")
	fs.StringVar(logLevel, "l", "info", "same as --log-level")
	mode := fs.String("mode", "serve", "serve, or validate: check the configuration and start every filter with it, then exit 0 or 1")
	profile := fs.String("wasm-profile", "envoy-1.33", "the Envoy whose WASI the VMs reproduce: envoy-1.33 or envoy-latest")
	wasmDir := fs.String("wasm-dir", "", "read every wasm module from DIR/<file name> instead of its filename (check envoy.yaml's production paths against build/)")
	drain := fs.Int("drain-time-s", 30, "seconds to finish in-flight requests on shutdown")
	componentLevels := fs.String("component-log-level", "", "per-component levels, as Envoy's: wasm:trace,upstream:debug")
	serviceNode := fs.String("service-node", "", "node.id, over the bootstrap's (xds.node and node properties)")
	serviceCluster := fs.String("service-cluster", "", "node.cluster, over the bootstrap's")
	serviceZone := fs.String("service-zone", "", "node.locality.zone, over the bootstrap's")
	logPath := fs.String("log-path", "", "write the log to this file instead of stderr")
	// Envoy's flags that tune what the gateway does not have (hot restart,
	// spdlog patterns): accepted so that scripts written for Envoy run,
	// and without effect.
	fs.Int("base-id", 0, "accepted for Envoy's command lines; no effect (hot restart)")
	fs.Bool("use-dynamic-base-id", false, "accepted; no effect (hot restart)")
	fs.Bool("disable-hot-restart", false, "accepted; no effect (hot restart)")
	fs.Int("parent-shutdown-time-s", 0, "accepted; no effect (hot restart)")
	fs.Int("restart-epoch", 0, "accepted; no effect (hot restart)")
	fs.String("log-format", "", "accepted; no effect: lines keep the format [time][level][component] message")
	fs.Bool("log-format-escaped", false, "accepted; no effect")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if path == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: concierge-gateway -c FILE [--concurrency N] [--log-level LEVEL] [--mode serve|validate]")
		return 2
	}
	level, err := ParseLevel(*logLevel)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	var prof engine.Profile
	switch *profile {
	case "envoy-1.33":
		prof = engine.Envoy133
	case "envoy-latest":
		prof = engine.EnvoyLatest
	default:
		fmt.Fprintf(stderr, "unknown --wasm-profile %q (envoy-1.33 or envoy-latest)\n", *profile)
		return 2
	}
	if *mode != "serve" && *mode != "validate" {
		fmt.Fprintf(stderr, "unknown --mode %q (serve or validate)\n", *mode)
		return 2
	}
	logw := stderr
	if *logPath != "" {
		f, err := os.OpenFile(*logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			fmt.Fprintf(stderr, "--log-path: %v\n", err)
			return 2
		}
		defer f.Close()
		logw = f
	}
	log := NewLogger(logw, level)
	if *componentLevels != "" {
		if err := log.SetComponentLevels(*componentLevels); err != nil {
			fmt.Fprintf(stderr, "--component-log-level: %v\n", err)
			return 2
		}
	}
	bs, err := LoadFile(path)
	if err != nil {
		fmt.Fprintf(stderr, "error initializing configuration '%s': %v\n", path, err)
		return 1
	}
	overrideNode(bs, *serviceNode, *serviceCluster, *serviceZone)
	cfg, err := Compile(bs, Options{WasmDir: *wasmDir})
	if err != nil {
		for _, w := range cfg.Warnings {
			log.Warnf("config", "%s", w)
		}
		fmt.Fprintf(stderr, "error initializing configuration '%s': %v\n", path, err)
		return 1
	}
	ro := RunOptions{Workers: *concurrency, Profile: prof, Log: log, ValidateOnly: *mode == "validate"}
	if *mode == "validate" {
		ro.Log = NewLogger(logw, max(level, LevelError)) // warnings are in the summary
		g, err := Start(cfg, ro)
		if err != nil {
			fmt.Fprintf(stderr, "error initializing configuration '%s': %v\n", path, err)
			return 1
		}
		defer g.Close()
		fmt.Fprint(stdout, g.Describe())
		fmt.Fprintf(stdout, "configuration '%s' OK\n", path)
		return 0
	}
	g, err := Start(cfg, ro)
	if err != nil {
		fmt.Fprintf(stderr, "error initializing configuration '%s': %v\n", path, err)
		return 1
	}
	log.Infof("main", "all clusters initialized; serving %s", path)
	select {
	case sig := <-stop:
		log.Infof("main", "caught %v: draining (at most %ds)", sig, *drain)
	case <-g.Quit():
		log.Infof("main", "/quitquitquit: draining (at most %ds)", *drain)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(*drain)*time.Second)
	defer cancel()
	if err := g.Shutdown(ctx); err != nil {
		log.Warnf("main", "shutdown: %v", err)
		return 1
	}
	log.Infof("main", "exiting")
	return 0
}

// overrideNode applies --service-node, --service-cluster and --service-zone
// as Envoy does: each one set replaces the bootstrap's value.
func overrideNode(bs *bootstrapv3.Bootstrap, id, cluster, zone string) {
	if id == "" && cluster == "" && zone == "" {
		return
	}
	if bs.Node == nil {
		bs.Node = &corev3.Node{}
	}
	if id != "" {
		bs.Node.Id = id
	}
	if cluster != "" {
		bs.Node.Cluster = cluster
	}
	if zone != "" {
		if bs.Node.Locality == nil {
			bs.Node.Locality = &corev3.Locality{}
		}
		bs.Node.Locality.Zone = zone
	}
}
