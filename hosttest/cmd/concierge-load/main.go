// Command concierge-load measures what the filter pack costs: it serves
// envoy/local.yaml with concierge-gateway in front of the loopback demo
// services, once without filters, once with each filter alone and once
// with all of them, drives each with a closed-loop Go load generator
// (keep-alive connections, a fixed number of clients) and prints requests
// per second and latency percentiles. The ratio to "no filters" is the cost
// of the pack.
//
//	go run ./hosttest/cmd/concierge-load [-duration 3s] [-clients 16] [-concurrency 2]
//
// Everything runs in this one process on 127.0.0.1 (the load generator
// shares the CPU with the gateway), bounded by -duration and -max-requests
// per scenario. It reads build/<name>.wasm: run it through `make load`.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/concierge-wasm/concierge/hosttest/internal/demo"
	"github.com/concierge-wasm/concierge/hosttest/internal/engine"
	"github.com/concierge-wasm/concierge/hosttest/internal/gateway"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "concierge-load:", err)
		os.Exit(1)
	}
}

type result struct {
	name     string
	requests int
	errors   int
	elapsed  time.Duration
	lat      []time.Duration
	statuses map[int]int
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("concierge-load", flag.ContinueOnError)
	path := fs.String("c", "envoy/local.yaml", "the bootstrap to measure")
	wasmDir := fs.String("wasm-dir", "build", "where the .wasm modules are")
	duration := fs.Duration("duration", 3*time.Second, "measuring time per scenario")
	warmup := fs.Duration("warmup", 500*time.Millisecond, "unmeasured time before each scenario")
	clients := fs.Int("clients", 16, "concurrent clients (closed loop)")
	concurrency := fs.Int("concurrency", 2, "gateway worker VMs per filter")
	maxRequests := fs.Int("max-requests", 500000, "bound on requests per scenario")
	target := fs.String("path", "/api/users/1", "request path (sent with the demo token)")
	profile := fs.String("wasm-profile", "envoy-1.33", "the Envoy whose WASI the VMs reproduce: envoy-1.33 or envoy-latest")
	if err := fs.Parse(args); err != nil {
		return err
	}
	prof := engine.Envoy133
	switch *profile {
	case "envoy-1.33":
	case "envoy-latest":
		prof = engine.EnvoyLatest
	default:
		return fmt.Errorf("unknown -wasm-profile %q", *profile)
	}
	if *duration <= 0 || *duration > 5*time.Minute || *clients <= 0 || *clients > 1024 {
		return fmt.Errorf("-duration must be in (0, 5m] and -clients in [1, 1024]")
	}
	d, err := demo.Start(demo.Ports{Users: []int{0, 0}})
	if err != nil {
		return err
	}
	defer d.Close()
	token, err := d.Token("load-user", []string{"reader"}, time.Hour)
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(*path)
	if err != nil {
		return err
	}
	base, err := gateway.Parse([]byte(d.Rewrite(string(raw), "0", "0")))
	if err != nil {
		return err
	}
	all, err := wasmFilters(base)
	if err != nil {
		return err
	}
	scenarios := [][]string{nil}
	for _, f := range all {
		scenarios = append(scenarios, []string{f})
	}
	if len(all) > 1 {
		scenarios = append(scenarios, all)
	}
	// key-auth alone once more, with the demo partner's key instead of the
	// token: its key path rather than its pass-through (allow_missing).
	keyRow := -1
	if slices.Contains(all, "key-auth") {
		keyRow = len(scenarios)
		scenarios = append(scenarios, []string{"key-auth"})
	}
	fmt.Fprintf(stdout, "concierge-load: %s, GET %s with a demo token, %d clients, %v per scenario (after %v warm-up), %d gateway workers, %s WASI\n\n",
		*path, *target, *clients, *duration, *warmup, *concurrency, *profile)
	var results []result
	for i, keep := range scenarios {
		name := "no filters"
		switch {
		case len(keep) == len(all) && len(all) > 1:
			name = "all: " + strings.Join(keep, " + ")
		case len(keep) == 1:
			name = keep[0] + " alone"
		}
		cred := [2]string{"authorization", "Bearer " + token}
		if i == keyRow {
			name, cred = "key-auth alone, partner key", [2]string{"x-api-key", demo.PartnerKey}
		}
		bs, err := only(base, keep)
		if err != nil {
			return err
		}
		cfg, err := gateway.Compile(bs, gateway.Options{WasmDir: *wasmDir})
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		cfg.Warnings = nil
		g, err := gateway.Start(cfg, gateway.RunOptions{Workers: *concurrency, Profile: prof, Log: gateway.NewLogger(os.Stderr, gateway.LevelError)})
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		url := "http://" + g.Addr(cfg.Listeners[0].Name) + *target
		drive(url, cred, *clients, *warmup, 0)
		r := drive(url, cred, *clients, *duration, *maxRequests)
		r.name = name
		results = append(results, r)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		g.Shutdown(ctx)
		cancel()
	}
	report(stdout, results)
	return nil
}

// wasmFilters lists the wasm filters of the first connection manager.
func wasmFilters(bs *bootstrapv3.Bootstrap) ([]string, error) {
	h, _, err := hcm(bs)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range h.GetHttpFilters() {
		if strings.HasSuffix(f.GetTypedConfig().GetTypeUrl(), "envoy.extensions.filters.http.wasm.v3.Wasm") {
			out = append(out, f.GetName())
		}
	}
	return out, nil
}

func hcm(bs *bootstrapv3.Bootstrap) (*hcmv3.HttpConnectionManager, *anypb.Any, error) {
	ls := bs.GetStaticResources().GetListeners()
	if len(ls) == 0 || len(ls[0].GetFilterChains()) == 0 || len(ls[0].GetFilterChains()[0].GetFilters()) == 0 {
		return nil, nil, fmt.Errorf("no HTTP connection manager")
	}
	a := ls[0].GetFilterChains()[0].GetFilters()[0].GetTypedConfig()
	h := &hcmv3.HttpConnectionManager{}
	if err := a.UnmarshalTo(h); err != nil {
		return nil, nil, err
	}
	return h, a, nil
}

// only copies bs keeping the named wasm filters (and the router).
func only(bs *bootstrapv3.Bootstrap, keep []string) (*bootstrapv3.Bootstrap, error) {
	out := proto.Clone(bs).(*bootstrapv3.Bootstrap)
	h, a, err := hcm(out)
	if err != nil {
		return nil, err
	}
	var fs []*hcmv3.HttpFilter
	for _, f := range h.GetHttpFilters() {
		isWasm := strings.HasSuffix(f.GetTypedConfig().GetTypeUrl(), "envoy.extensions.filters.http.wasm.v3.Wasm")
		if !isWasm || slices.Contains(keep, f.GetName()) {
			fs = append(fs, f)
		}
	}
	h.HttpFilters = fs
	n, err := anypb.New(h)
	if err != nil {
		return nil, err
	}
	a.Value = n.Value
	return out, nil
}

// drive runs clients in a closed loop against url for d (and at most max
// requests when max > 0), each request carrying the credential header cred.
func drive(url string, cred [2]string, clients int, d time.Duration, max int) result {
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients, DisableCompression: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var count atomic.Int64
	stop := time.Now().Add(d)
	var mu sync.Mutex
	r := result{statuses: map[int]int{}}
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			statuses := map[int]int{}
			errs := 0
			for time.Now().Before(stop) && (max <= 0 || count.Add(1) <= int64(max)) {
				req, _ := http.NewRequest("GET", url, nil)
				req.Header.Set(cred[0], cred[1])
				t0 := time.Now()
				res, err := c.Do(req)
				if err != nil {
					errs++
					continue
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				lat = append(lat, time.Since(t0))
				statuses[res.StatusCode]++
				if res.StatusCode != http.StatusOK {
					errs++
				}
			}
			mu.Lock()
			r.lat = append(r.lat, lat...)
			r.errors += errs
			for k, v := range statuses {
				r.statuses[k] += v
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	r.elapsed = time.Since(start)
	r.requests = len(r.lat)
	slices.Sort(r.lat)
	return r
}

func pct(lat []time.Duration, p float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	i := int(p * float64(len(lat)-1))
	return lat[i]
}

func report(w io.Writer, rs []result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\treq/s\tvs no filters\tp50\tp90\tp99\tmax\tnon-200\t")
	var baseRPS float64
	for i, r := range rs {
		rps := float64(r.requests) / r.elapsed.Seconds()
		if i == 0 {
			baseRPS = rps
		}
		ratio := "1.00x"
		if i > 0 && baseRPS > 0 {
			ratio = fmt.Sprintf("%.2fx", rps/baseRPS)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%s\t%s\t%s\t%d\t\n", r.name, rps, ratio,
			round(pct(r.lat, .50)), round(pct(r.lat, .90)), round(pct(r.lat, .99)), round(pct(r.lat, 1)), r.errors)
	}
	tw.Flush()
	for _, r := range rs {
		if r.errors == 0 {
			continue
		}
		var parts []string
		for code, n := range r.statuses {
			if code != http.StatusOK {
				parts = append(parts, fmt.Sprintf("%d× %d", n, code))
			}
		}
		slices.Sort(parts)
		fmt.Fprintf(w, "\n%s: %d answers were not 200 (%s); its figures do not measure the filter working. See the gateway log above.\n", r.name, r.errors, strings.Join(parts, ", "))
	}
}

func round(d time.Duration) string {
	switch {
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%dµs", d.Microseconds())
	}
}
