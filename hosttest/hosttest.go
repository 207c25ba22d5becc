// Package hosttest runs compiled proxy-wasm filters inside go test, on a
// host that behaves as Envoy does: one VM per worker plus the main thread
// (filters of a Chain with the same vm_config share it, see Chain),
// Envoy's host calls and WASI, the HTTP filter chain with pauses, local
// replies and body buffering up to Envoy's buffer limit, shared data with
// Envoy's CAS rules, queues, metrics, tick timers and HTTP callouts, all on
// a clock the test controls.
//
//	h := hosttest.New(t, hosttest.Plugin("plugins/rate-limit"), hosttest.Config(`{...}`))
//	resp := h.Do(hosttest.GET("/api/users/1").Header("x-user", "a"))
//	if resp.Status != 429 { ... }
//
// The semantics and their sources are in RATIONALE.md
// at the repository root.
package hosttest

import (
	"errors"
	"fmt"

	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/concierge-wasm/concierge/hosttest/internal/abi"
	"github.com/concierge-wasm/concierge/hosttest/internal/build"
	"github.com/concierge-wasm/concierge/hosttest/internal/engine"
)

// Pair is one header or trailer; order and duplicates are kept.
type Pair = abi.Pair

// Profile chooses which Envoy's WASI the host reproduces.
type Profile = engine.Profile

const (
	// Envoy133 (the default) is Envoy 1.33 until cpp-host's April 2026
	// change: poll_oneoff fails, so a plugin that sleeps crashes.
	Envoy133 = engine.Envoy133
	// EnvoyLatest reports no events from poll_oneoff without sleeping.
	EnvoyLatest = engine.EnvoyLatest
)

// FailurePolicy is Envoy's failure_policy for a filter whose VM trapped.
type FailurePolicy = engine.FailurePolicy

const (
	FailClosed = engine.FailClosed
	FailOpen   = engine.FailOpen
	FailReload = engine.FailReload
)

// Filter is one filter of a chain.
type Filter struct {
	Name          string // defaults to the plugin folder or file name
	Plugin        string // a plugin folder (built and cached) or a .wasm file
	Wasm          []byte // the module itself, instead of Plugin
	Config        string // plugin configuration (JSON for concierge filters)
	VMConfig      string
	RootID        string
	VMID          string
	Env           map[string]string // vm_config.environment_variables
	FailurePolicy FailurePolicy
	// ReloadBackoff is reload_config.backoff.base_interval for FailReload
	// (default 1s): a failed VM is reloaded once this much, jittered up to
	// 1.5×, has passed since it was loaded or last reloaded.
	ReloadBackoff time.Duration
}

type settings struct {
	filters    []Filter
	single     Filter
	services   []Filter // Singleton (service.go)
	opts       engine.Options
	allowTraps bool
	verbose    bool
	genReqID   bool
	doTimeout  time.Duration
	upstream   http.Handler
	clusters   map[string]engine.Cluster
	errs       []error
	seed       uint64
	realRandom bool
}

// Option configures a Host.
type Option func(*settings)

// Plugin sets the plugin of a one-filter host: a folder with a Go plugin
// (built with the standard toolchain and cached by content) or a .wasm.
func Plugin(path string) Option { return func(s *settings) { s.single.Plugin = path } }

// Wasm sets the module of a one-filter host from bytes.
func Wasm(module []byte) Option { return func(s *settings) { s.single.Wasm = module } }

// Config sets the plugin configuration of a one-filter host.
func Config(json string) Option { return func(s *settings) { s.single.Config = json } }

// VMConfig sets the VM configuration of a one-filter host.
func VMConfig(c string) Option { return func(s *settings) { s.single.VMConfig = c } }

// Env sets a vm_config environment variable of a one-filter host.
func Env(key, value string) Option {
	return func(s *settings) {
		if s.single.Env == nil {
			s.single.Env = map[string]string{}
		}
		s.single.Env[key] = value
	}
}

// Name names the filter of a one-filter host (plugin_name).
func Name(name string) Option { return func(s *settings) { s.single.Name = name } }

// RootID sets the root_id of a one-filter host.
func RootID(id string) Option { return func(s *settings) { s.single.RootID = id } }

// VMID sets the vm_id of a one-filter host (the shared-data namespace).
func VMID(id string) Option { return func(s *settings) { s.single.VMID = id } }

// Failure sets the failure policy of a one-filter host.
func Failure(p FailurePolicy) Option { return func(s *settings) { s.single.FailurePolicy = p } }

// Chain runs several filters in order, as Envoy's http_filters list.
//
// Filters whose VMID, module (by content), VMConfig and Env are identical
// share one VM per thread, as Envoy's plugins with the same vm_config do:
// each is a root context of that VM, with ids 1, 2, … in chain order, its
// own Config, RootID, tick period and FailurePolicy, and Go globals are
// shared between them. on_vm_start runs once per root context (as
// cpp-host's ContextBase::onStart does). A trap fails the shared VM for
// all of them; each then follows its own FailurePolicy, FAIL_RELOAD ones
// moving together into one fresh VM. Give filters different VMIDs to keep
// their VMs apart.
func Chain(filters ...Filter) Option {
	return func(s *settings) { s.filters = append(s.filters, filters...) }
}

// Workers sets the number of worker threads (default 2); each has its own
// VMs (one per distinct vm_config of the chain), as does the main thread.
func Workers(n int) Option { return func(s *settings) { s.opts.Workers = n } }

// WithProfile picks the Envoy WASI profile (default Envoy133).
func WithProfile(p Profile) Option { return func(s *settings) { s.opts.Profile = p } }

// Seed makes random_get reproducible (the default seed is 1).
func Seed(seed uint64) Option { return func(s *settings) { s.seed = seed } }

// RealRandom uses crypto/rand for random_get.
func RealRandom() Option { return func(s *settings) { s.realRandom = true } }

// Upstream answers the requests the filters let through. It is called as
// soon as the request headers have passed the filters and reads the body as
// it arrives. The default upstream reads the whole request, then answers
// 200 with body "ok".
func Upstream(h http.Handler) Option { return func(s *settings) { s.upstream = h } }

// UpstreamFunc is Upstream with a function.
func UpstreamFunc(f func(http.ResponseWriter, *http.Request)) Option {
	return Upstream(http.HandlerFunc(f))
}

// Cluster makes a cluster name known to proxy_http_call, answered by h.
func Cluster(name string, h http.Handler) Option {
	return func(s *settings) { s.clusters[name] = engine.Cluster{Handler: h} }
}

// ClusterAddress makes a cluster name known to proxy_http_call, sent to a
// real server at addr ("127.0.0.1:9000").
func ClusterAddress(name, addr string) Option {
	return func(s *settings) { s.clusters[name] = engine.Cluster{Address: addr} }
}

// RecordCalls keeps every host call for Host.Calls.
func RecordCalls() Option { return func(s *settings) { s.opts.RecordCalls = true } }

// AllowTraps stops guest traps and blocking calls from failing the test,
// for tests that provoke them on purpose.
func AllowTraps() Option { return func(s *settings) { s.allowTraps = true } }

// Verbose echoes every plugin log line to t.Log.
func Verbose() Option { return func(s *settings) { s.verbose = true } }

// GenerateRequestID adds an x-request-id to requests that lack one, as
// Envoy's HTTP connection manager does by default (generate_request_id).
func GenerateRequestID() Option { return func(s *settings) { s.genReqID = true } }

// BufferLimit sets Envoy's buffer limit (per_connection_buffer_limit_bytes,
// default 1 MiB): a filter that buffers a longer request body gets the
// client a 413, a longer response body a 500 (or a reset once the
// response headers have gone out).
func BufferLimit(bytes int) Option { return func(s *settings) { s.opts.BufferLimit = bytes } }

// DoTimeout bounds how long Do waits in real time (default 10s).
func DoTimeout(d time.Duration) Option { return func(s *settings) { s.doTimeout = d } }

var (
	builderOnce sync.Once
	builder     *build.Builder
)

func sharedBuilder() *build.Builder {
	builderOnce.Do(func() { builder = build.New(build.DefaultCacheDir()) })
	return builder
}

// Build builds a plugin folder into a cached .wasm and returns its path.
func Build(dir string) (string, error) { return sharedBuilder().Build(dir) }

func loadModule(f Filter) ([]byte, string, error) {
	if f.Wasm != nil {
		return f.Wasm, "bytes", nil
	}
	if f.Plugin == "" {
		return nil, "", errors.New("hosttest: a filter needs Plugin (a folder or .wasm) or Wasm")
	}
	if strings.HasSuffix(f.Plugin, ".wasm") {
		b, err := os.ReadFile(f.Plugin)
		if err != nil {
			return nil, "", fmt.Errorf("hosttest: %w (build it with: make build, or %s)", err, build.Command)
		}
		return b, f.Plugin, nil
	}
	path, err := sharedBuilder().Build(f.Plugin)
	if err != nil {
		return nil, "", err
	}
	b, err := os.ReadFile(path)
	return b, path, err
}

func (s *settings) engineOptions() (engine.Options, error) {
	filters := s.filters
	if s.single.Plugin != "" || s.single.Wasm != nil {
		filters = append([]Filter{s.single}, filters...)
	} else if !reflect.DeepEqual(s.single, Filter{}) {
		return engine.Options{}, errors.New("hosttest: Config, VMConfig, Env, Name, RootID, VMID and Failure configure the filter given by Plugin or Wasm; with Chain, set them on each Filter")
	}
	if len(filters) == 0 {
		return engine.Options{}, errors.New("hosttest: no plugin given (use Plugin, Wasm or Chain)")
	}
	o := s.opts
	if o.Node == nil {
		o.Node = &corev3.Node{UserAgentName: "envoy"} // Envoy always has one
	}
	for _, f := range filters {
		fc, err := filterConfig(f)
		if err != nil {
			return o, err
		}
		o.Filters = append(o.Filters, fc)
	}
	// Services after the filters, in no chain (MainThreadOnly): Envoy
	// creates bootstrap extensions' VMs once the listeners are configured
	// (onServerInitialized), so a singleton is a later root context of the
	// main thread's VM it shares with filters.
	for _, f := range s.services {
		fc, err := filterConfig(f)
		if err != nil {
			return o, err
		}
		fc.MainThreadOnly = true
		o.Filters = append(o.Filters, fc)
	}
	if !s.realRandom {
		seed := s.seed
		o.Seed = &seed
	}
	o.Clusters = s.clusters
	o.Upstream = s.upstream
	if o.Upstream == nil {
		// Like most servers, the default upstream reads the whole request
		// before answering, so the request's trailers and body always reach it.
		o.Upstream = &engine.FixedResponse{Status: http.StatusOK, Body: []byte("ok")}
	}
	return o, nil
}

func sortEnv(env []engine.EnvVar) {
	for i := 1; i < len(env); i++ {
		for j := i; j > 0 && env[j].Key < env[j-1].Key; j-- {
			env[j], env[j-1] = env[j-1], env[j]
		}
	}
}

// Host is a running proxy-wasm host with its filters loaded.
type Host struct {
	t        testing.TB
	e        *engine.Host
	s        *settings
	clock    *Clock
	reported int
}

func newSettings(opts []Option) *settings {
	s := &settings{clusters: map[string]engine.Cluster{}, seed: 1, doTimeout: 10 * time.Second}
	for _, o := range opts {
		o(s)
	}
	return s
}

// New starts a host for a test. A plugin that fails to build or refuses
// its configuration fails the test with the plugin's logs; the host is
// closed by t.Cleanup, which also fails the test if a guest trapped or
// tried to sleep (unless AllowTraps).
func New(t testing.TB, opts ...Option) *Host {
	t.Helper()
	s := newSettings(opts)
	if s.verbose {
		s.opts.LogSink = func(e engine.LogEntry) { t.Logf("[%s][%s/%d] %s", e.Level, e.Filter, e.Worker, e.Message) }
	}
	h, err := start(s)
	if err != nil {
		t.Fatal(err)
	}
	h.t = t
	t.Cleanup(func() {
		h.checkFailures()
		h.Close()
	})
	return h
}

// Start starts a host outside a test (the local gateway uses it). The
// caller must Close it.
func Start(opts ...Option) (*Host, error) { return start(newSettings(opts)) }

func start(s *settings) (*Host, error) {
	o, err := s.engineOptions()
	if err != nil {
		return nil, err
	}
	e, err := engine.Start(o)
	if err != nil {
		return nil, err
	}
	return &Host{e: e, s: s, clock: &Clock{c: e.Clock()}}, nil
}

func (h *Host) checkFailures() {
	if h.t == nil || h.s.allowTraps {
		return
	}
	h.t.Helper()
	for _, tr := range h.e.Traps() {
		h.t.Errorf("hosttest: %s\n%s", tr, h.logsOf(tr.Filter, tr.Worker))
	}
	for _, b := range h.e.Blocking() {
		h.t.Errorf("hosttest: %s", b)
	}
}

// logsOf renders the last lines one VM logged: enough to see a panic,
// not the whole history of a long test.
func (h *Host) logsOf(filter string, worker int) string {
	const tail = 60
	var lines []string
	for _, l := range h.Logs() {
		if l.Filter == filter && l.Worker == worker {
			lines = append(lines, fmt.Sprintf("  [%s] %s", l.Level, l.Message))
		}
	}
	if len(lines) > tail {
		lines = append([]string{fmt.Sprintf("  … %d earlier lines", len(lines)-tail)}, lines[len(lines)-tail:]...)
	}
	return strings.Join(lines, "\n")
}

// Close stops the host. New's cleanup calls it.
func (h *Host) Close() {
	h.e.Close()
}

// Clock is the host clock: real time plus what the test added.
func (h *Host) Clock() *Clock { return h.clock }

// Do sends a whole request through the filter chain to the upstream and
// returns what the client received. A stream that does not complete in
// DoTimeout (real time) is reset and fails the test, naming the filter
// that holds it.
func (h *Host) Do(r *Request) *Response {
	if h.t != nil {
		h.t.Helper()
	}
	s := h.engineStream(r)
	res, ok := s.Do(h.s.doTimeout)
	if !ok && h.t != nil {
		h.t.Errorf("hosttest: %s %s did not complete within %v: %s", r.method, r.path, h.s.doTimeout, s.Stuck())
	}
	return newResponse(res)
}

// Stream starts a stream for step-by-step driving.
func (h *Host) Stream(r *Request) *Stream {
	return &Stream{h: h, s: h.engineStream(r), r: r}
}

func (h *Host) engineStream(r *Request) *engine.Stream {
	er := r.engineRequest()
	if h.s.genReqID && headerValue(er.Headers, "x-request-id") == "" {
		er.Headers = append(er.Headers, Pair{Key: "x-request-id", Value: pseudoUUID(h.e)})
	}
	return h.e.NewStream(er)
}

// Metric returns a counter's or gauge's value, summed over every VM, and
// whether it is defined.
func (h *Host) Metric(name string) (int64, bool) {
	m, ok := h.e.Metric(name)
	return m.Value, ok
}

// Histogram returns a histogram's samples.
func (h *Host) Histogram(name string) ([]uint64, bool) {
	m, ok := h.e.Metric(name)
	return m.Samples, ok && m.Type == "histogram"
}

// Metrics returns every metric, sorted by name.
func (h *Host) Metrics() []engine.MetricValue { return h.e.Metrics() }

// Log is one line a plugin logged.
type Log = engine.LogEntry

// Logs returns the log lines so far, Singleton services' included; with
// services, once the main thread has run what was posted to it (what the
// filters enqueued has been consumed).
func (h *Host) Logs() []Log {
	if len(h.s.services) > 0 {
		h.e.Sync()
	}
	return h.e.Logs()
}

// LogsContaining returns the messages that contain substr.
func (h *Host) LogsContaining(substr string) []string {
	var out []string
	for _, l := range h.Logs() {
		if strings.Contains(l.Message, substr) {
			out = append(out, l.Message)
		}
	}
	return out
}

// ClearLogs forgets the log lines so far.
func (h *Host) ClearLogs() {
	h.e.ClearLogs()
}

// Call is one recorded host call (RecordCalls).
type Call = engine.HostCall

// Calls returns the recorded host calls.
func (h *Host) Calls() []Call { return h.e.Calls() }

// ClearCalls forgets the recorded host calls.
func (h *Host) ClearCalls() { h.e.ClearCalls() }

// Traps lists guest traps so far.
func (h *Host) Traps() []engine.Trap { return h.e.Traps() }

// Blocking lists the times a plugin tried to sleep.
func (h *Host) Blocking() []string { return h.e.Blocking() }

// MemoryBytes is the linear memory of each VM of a filter: the main
// thread's first, then each worker's.
func (h *Host) MemoryBytes(filter string) []uint64 { return h.e.MemoryBytes(filter) }

// Filters lists the filter names in chain order (Singleton services not
// included).
func (h *Host) Filters() []string {
	all := h.e.Filters()
	return all[:len(all)-len(h.s.services)]
}

// SharedData is the shared-data store of one vm_id.
func (h *Host) SharedData(vmID string) *SharedData { return &SharedData{h: h.e, vmID: vmID} }

// SharedData reads and writes one vm_id's shared data as a guest would.
type SharedData struct {
	h    *engine.Host
	vmID string
}

// Get returns a key's value and CAS.
func (d *SharedData) Get(key string) (value []byte, cas uint32, ok bool) {
	return d.h.SharedGet(d.vmID, key)
}

// Set writes a key with Envoy's CAS rules and reports false on mismatch.
func (d *SharedData) Set(key string, value []byte, cas uint32) bool {
	return d.h.SharedSet(d.vmID, key, value, cas)
}

// Keys lists the keys, sorted.
func (d *SharedData) Keys() []string { return d.h.SharedKeys(d.vmID) }

// Bytes is the total size of keys and values.
func (d *SharedData) Bytes() int { return d.h.SharedBytes(d.vmID) }

// Clock is the host clock.
type Clock struct{ c *engine.Clock }

// Now is the wall clock the plugins see.
func (c *Clock) Now() time.Time { return c.c.Now() }

// Advance moves time forward by d as if it had passed: tick timers, callout
// timeouts and route timeouts due in between fire, in order, before it
// returns.
func (c *Clock) Advance(d time.Duration) { c.c.Advance(d) }

// filterConfig is a Filter as the engine takes it: the module loaded (built
// if a folder) and the name defaulted.
func filterConfig(f Filter) (engine.FilterConfig, error) {
	var fc engine.FilterConfig
	wasm, name, err := loadModule(f)
	if err != nil {
		return fc, err
	}
	fc = engine.FilterConfig{Name: f.Name, RootID: f.RootID, VMID: f.VMID, Configuration: []byte(f.Config),
		VMConfiguration: []byte(f.VMConfig), FailurePolicy: f.FailurePolicy, ReloadBackoff: f.ReloadBackoff, Wasm: wasm, WasmName: name}
	if fc.Name == "" {
		fc.Name = strings.TrimSuffix(filepath.Base(filepath.Clean(f.Plugin)), ".wasm")
		if f.Plugin == "" || fc.Name == "." {
			abs, _ := filepath.Abs(f.Plugin)
			fc.Name = filepath.Base(abs)
		}
	}
	fc.PluginName = fc.Name
	for k, v := range f.Env {
		fc.Env = append(fc.Env, engine.EnvVar{Key: k, Value: v})
	}
	sortEnv(fc.Env)
	return fc, nil
}
