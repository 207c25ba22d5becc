// Command concierge-load measures what the filter pack costs: it serves
// envoy/local.yaml with concierge-gateway in front of the loopback demo
// services, once without filters, once with each filter alone and once
// with all of them, drives each with a closed-loop Go load generator
// (keep-alive connections, a fixed number of clients) and prints requests
// per second and latency percentiles. The ratio to "no filters" is the cost
// of the pack; the ratio to the baseline (a plain reverse proxy to the same
// services: Go's httputil.ReverseProxy in this process, and nginx when it
// is on PATH) is the cost of the gateway itself.
//
//	go run ./hosttest/cmd/concierge-load [-duration 3s] [-clients 16] [-concurrency 2] [-rounds 3]
//
// Scenarios run in interleaved rounds (every scenario once, then again,
// -rounds times), so that a load spike on a shared machine lands on all of
// them; the report gives each one's median req/s with the min–max over the
// rounds, and latency percentiles over every round's requests.
// -concurrency takes a list (1,2,4) to show how the gateway scales with
// its workers.
//
// Everything runs in this one process on 127.0.0.1 (the load generator
// shares the CPU with the gateway), bounded by -duration and -max-requests
// per scenario and round. It reads build/<name>.wasm: run it through
// `make load`.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
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
	cpu      time.Duration // the process's CPU time while driving (gateway, proxy and load generator)
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
	concurrency := fs.String("concurrency", "2", "gateway workers (VMs per filter): a count or a list such as 1,2,4")
	rounds := fs.Int("rounds", 3, "interleaved rounds: every scenario is measured once per round")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run (gateway and load generator) to this file")
	maxRequests := fs.Int("max-requests", 500000, "bound on requests per scenario")
	target := fs.String("path", "/api/users/1", "request path (sent with the demo token)")
	scenarioFlag := fs.String("scenarios", "", `filter sets to measure instead of the default rows, ";"-separated, each "none" or filter names joined by ","; e.g. "none;request-id;jwt-auth;request-id,jwt-auth"`)
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
	if *rounds < 1 || *rounds > 20 {
		return fmt.Errorf("-rounds must be in [1, 20], got %d", *rounds)
	}
	workerCounts, err := parseWorkers(*concurrency)
	if err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
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
	if *scenarioFlag != "" {
		if scenarios, err = parseScenarios(*scenarioFlag, all); err != nil {
			return err
		}
	} else if slices.Contains(all, "key-auth") {
		keyRow = len(scenarios)
		scenarios = append(scenarios, []string{"key-auth"})
	}
	fmt.Fprintf(stdout, "concierge-load: %s, GET %s with a demo token, %d clients, %v per scenario and round (after %v warm-up), %d interleaved rounds, gateway workers %s, %s WASI\n\n",
		*path, *target, *clients, *duration, *warmup, *rounds, *concurrency, *profile)
	bearer := [2]string{"authorization", "Bearer " + token}
	var rows []*row
	rows = append(rows, baselines(d.Addrs["users"], bearer, *clients, slices.Max(workerCounts))...)
	for i, keep := range scenarios {
		name := "no filters"
		switch {
		case len(keep) == len(all) && len(all) > 1:
			name = "all: " + strings.Join(keep, " + ")
		case len(keep) == 1:
			name = keep[0] + " alone"
		case len(keep) > 1:
			name = strings.Join(keep, " + ")
		}
		cred := bearer
		if i == keyRow {
			name, cred = "key-auth alone, partner key", [2]string{"x-api-key", demo.PartnerKey}
		}
		bs, err := only(base, keep)
		if err != nil {
			return err
		}
		for _, workers := range workerCounts {
			rows = append(rows, &row{name: name, workers: workers, noFilters: len(keep) == 0, cred: cred, start: func() (string, func(), error) {
				cfg, err := gateway.Compile(bs, gateway.Options{WasmDir: *wasmDir})
				if err != nil {
					return "", nil, fmt.Errorf("%s: %w", name, err)
				}
				cfg.Warnings = nil
				g, err := gateway.Start(cfg, gateway.RunOptions{Workers: workers, Profile: prof, Log: gateway.NewLogger(os.Stderr, gateway.LevelError)})
				if err != nil {
					return "", nil, fmt.Errorf("%s: %w", name, err)
				}
				stop := func() {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					g.Shutdown(ctx)
					cancel()
				}
				return "http://" + g.Addr(cfg.Listeners[0].Name), stop, nil
			}})
		}
	}
	// Each round measures every row once; the order rotates so that no
	// row always runs right after the same neighbour.
	for round := 0; round < *rounds; round++ {
		for i := range rows {
			r := rows[(i+round)%len(rows)]
			addr, stop, err := r.start()
			if err != nil {
				return err
			}
			url := addr + *target
			drive(url, r.cred, *clients, *warmup, 0)
			r.rounds = append(r.rounds, drive(url, r.cred, *clients, *duration, *maxRequests))
			stop()
		}
	}
	report(stdout, rows)
	return nil
}

// row is one line of the report: a scenario on a number of gateway
// workers (0 for a baseline proxy), measured once per round.
type row struct {
	name      string
	workers   int
	baseline  bool
	noFilters bool
	cred      [2]string // the credential header every request carries
	start     func() (addr string, stop func(), err error)
	rounds    []result
}

// parseWorkers reads -concurrency: one count or a comma-separated list.
func parseWorkers(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 64 {
			return nil, fmt.Errorf("-concurrency %q: want worker counts in [1, 64], comma-separated", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// parseScenarios reads -scenarios against the bootstrap's wasm filters.
func parseScenarios(s string, all []string) ([][]string, error) {
	var out [][]string
	for _, set := range strings.Split(s, ";") {
		set = strings.TrimSpace(set)
		if set == "none" {
			out = append(out, nil)
			continue
		}
		var keep []string
		for _, f := range strings.Split(set, ",") {
			f = strings.TrimSpace(f)
			if !slices.Contains(all, f) {
				return nil, fmt.Errorf("-scenarios %q: %q is not a wasm filter of the bootstrap (%s)", s, f, strings.Join(all, ", "))
			}
			keep = append(keep, f)
		}
		out = append(out, keep)
	}
	return out, nil
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
	start, cpu0 := time.Now(), processCPU()
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
	r.elapsed, r.cpu = time.Since(start), processCPU()-cpu0
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

func (r result) rps() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.requests) / r.elapsed.Seconds()
}

// summary is a row over its rounds: median and range of req/s, latency
// percentiles over every round's requests.
type summary struct {
	median, lo, hi float64
	cpuPerReq      time.Duration // median over the rounds
	lat            []time.Duration
	errors         int
	statuses       map[int]int
}

func summarize(r *row) summary {
	s := summary{statuses: map[int]int{}}
	var rps []float64
	var cpu []time.Duration
	for _, x := range r.rounds {
		rps = append(rps, x.rps())
		if x.requests > 0 {
			cpu = append(cpu, x.cpu/time.Duration(x.requests))
		}
		s.lat = append(s.lat, x.lat...)
		s.errors += x.errors
		for k, v := range x.statuses {
			s.statuses[k] += v
		}
	}
	slices.Sort(rps)
	slices.Sort(s.lat)
	slices.Sort(cpu)
	if len(cpu) > 0 {
		s.cpuPerReq = cpu[len(cpu)/2]
	}
	if n := len(rps); n > 0 {
		s.lo, s.hi = rps[0], rps[n-1]
		s.median = rps[n/2]
		if n%2 == 0 {
			s.median = (rps[n/2-1] + rps[n/2]) / 2
		}
	}
	return s
}

func report(w io.Writer, rows []*row) {
	sums := make([]summary, len(rows))
	var base float64               // the first baseline's median
	noFilters := map[int]summary{} // by worker count
	for i, r := range rows {
		sums[i] = summarize(r)
		if r.baseline && base == 0 {
			base = sums[i].median
		}
		if r.noFilters {
			noFilters[r.workers] = sums[i]
		}
	}
	ratio := func(a, b float64) string {
		if b <= 0 {
			return "-"
		}
		return fmt.Sprintf("%.2fx", a/b)
	}
	overlap := false
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tworkers\treq/s (median)\tmin–max\tvs baseline\tvs no filters\tCPU/req\tp50\tp90\tp99\tmax\tnon-200\t")
	for i, r := range rows {
		s := sums[i]
		workers, vsNone := "-", "-"
		if !r.baseline {
			workers = strconv.Itoa(r.workers)
			if nf, ok := noFilters[r.workers]; ok {
				vsNone = ratio(s.median, nf.median)
				// A filter cannot make a request cheaper: when its range
				// reaches past no filters', the difference is noise.
				if !r.noFilters && s.hi >= nf.lo {
					vsNone += " ≈"
					overlap = true
				}
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.0f–%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t\n", r.name, workers, s.median, s.lo, s.hi,
			ratio(s.median, base), vsNone, round(s.cpuPerReq), round(pct(s.lat, .50)), round(pct(s.lat, .90)), round(pct(s.lat, .99)), round(pct(s.lat, 1)), s.errors)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nCPU/req: this process's CPU time per request, median over the rounds: gateway (or baseline proxy), demo services and load generator together, so rows compare by difference. On a shared machine it moves less than req/s.")
	if overlap {
		fmt.Fprintln(w, "\n≈: the row's req/s range overlaps the no-filter row's over the rounds: the difference is within this run's noise (more -rounds, a longer -duration or a quieter machine tell them apart).")
	}
	for i, r := range rows {
		s := sums[i]
		if s.errors == 0 {
			continue
		}
		var parts []string
		for code, n := range s.statuses {
			if code != http.StatusOK {
				parts = append(parts, fmt.Sprintf("%d× %d", n, code))
			}
		}
		slices.Sort(parts)
		fmt.Fprintf(w, "\n%s: %d answers were not 200 (%s); its figures do not measure the filter working. See the gateway log above.\n", r.name, s.errors, strings.Join(parts, ", "))
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
