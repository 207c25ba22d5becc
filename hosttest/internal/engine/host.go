// Package engine is hosttest's proxy-wasm host: wazero VMs per worker,
// Envoy's host calls and WASI, the HTTP filter chain, shared data, queues,
// metrics, timers and callouts. The public hosttest package and the local
// gateway are thin layers over it.
package engine

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"google.golang.org/protobuf/proto"

	"github.com/concierge-wasm/concierge/hosttest/internal/build"
)

// Profile selects which Envoy's WASI behaviour the host reproduces.
type Profile int

const (
	// Envoy133 is Envoy 1.33 up to the proxy-wasm-cpp-host of early 2026:
	// poll_oneoff answers ENOSYS, so time.Sleep and a GC that polls crash
	// the VM; only the WASI functions that host registered exist.
	Envoy133 Profile = iota
	// EnvoyLatest is cpp-host after PR #533 (April 2026): poll_oneoff
	// reports 0 events without sleeping and every WASI function exists.
	EnvoyLatest
)

func (p Profile) String() string {
	if p == EnvoyLatest {
		return "envoy-latest"
	}
	return "envoy-1.33"
}

// FailurePolicy is Envoy's PluginConfig failure_policy.
type FailurePolicy int

const (
	FailClosed FailurePolicy = iota // FAIL_CLOSED: every later stream gets 503
	FailOpen                        // FAIL_IGNORE / fail_open: the filter is skipped
	FailReload                      // FAIL_RELOAD: the VM is re-created on the next stream
)

// EnvVar is one vm_config.environment_variables entry.
type EnvVar struct{ Key, Value string }

// FilterConfig is one wasm filter of the chain: Envoy's PluginConfig and
// VmConfig as far as a guest can observe them.
type FilterConfig struct {
	Name            string // how the host and tests tell the filter apart (unique)
	PluginName      string // what plugin_name reads: Envoy's config.name, maybe empty
	RootID          string
	VMID            string
	Configuration   []byte
	VMConfiguration []byte
	Env             []EnvVar
	FailurePolicy   FailurePolicy
	// ReloadBackoff is reload_config.backoff.base_interval for FailReload;
	// 0 means DefaultReloadBackoff.
	ReloadBackoff time.Duration
	Wasm          []byte
	WasmName      string // file name, for messages
	// MainThreadOnly starts this filter's root context on the main thread
	// only, in a host that also has workers: an Envoy WasmService with
	// singleton: true beside listeners' filters. It joins the main
	// thread's VM of its vm_config and may be in no chain.
	MainThreadOnly bool
}

// Cluster answers proxy_http_call for one cluster name.
type Cluster struct {
	Handler http.Handler // called in its own goroutine
	// Address, instead of Handler, sends the call to a real server
	// ("127.0.0.1:9000").
	Address string
}

// Options configures a Host.
type Options struct {
	Filters []FilterConfig
	// Chains, if set, are the filter chains streams and connections run
	// (Request.Chain, ConnInfo.Chain), each a list of indexes into Filters
	// in chain order: Envoy's listeners, whose filters all share the
	// server's worker threads, so filters of different chains with one
	// vm_config share a VM per thread. A filter may be in no chain (a
	// WasmService: root context only). Nil means one chain of every
	// filter that is not MainThreadOnly.
	Chains  [][]int
	Workers int // worker threads, each with its own VMs; 0 means 2
	Profile Profile
	// Seed makes random_get reproducible; nil means crypto/rand.
	Seed *uint64
	// Clusters known to proxy_http_call.
	Clusters map[string]Cluster
	// Upstream answers requests that reach the router.
	Upstream http.Handler
	// LogSink, if set, receives every log line as it is written.
	LogSink func(LogEntry)
	// RecordCalls keeps a record of every host call.
	RecordCalls bool
	// MaxLogs bounds the kept log lines (oldest dropped); 0 means 100000.
	MaxLogs int
	// CacheDir holds wazero's compilation cache; empty means the default.
	CacheDir string
	// BufferLimit bounds a body a filter buffers (StopIterationAndBuffer),
	// as Envoy's per_connection_buffer_limit_bytes does; 0 means Envoy's
	// default, 1 MiB.
	BufferLimit int
	// Node is the bootstrap's node (an envoy.config.core.v3.Node), served
	// as xds.node; nil: NOT_FOUND.
	Node proto.Message
	// UpstreamHost, if set, describes the endpoint the router picked
	// (cluster name and address as the router reported them).
	UpstreamHost func(cluster, address string) (UpstreamHostInfo, bool)
	// ClusterEndpoints, if set, counts a cluster's endpoints, healthy or
	// not (upstream.num_endpoints, Envoy's membership_total).
	ClusterEndpoints func(cluster string) (int, bool)
}

// UpstreamHostInfo is what the filters read of the endpoint the router
// picked, as envoy.config.core.v3 messages: its Metadata
// (xds.upstream_host_metadata), Locality (upstream.locality) and its
// locality group's LocalityMetadata (xds.upstream_host_locality_metadata).
// None may be nil.
type UpstreamHostInfo struct {
	Metadata, Locality, LocalityMetadata proto.Message
}

// DefaultBufferLimit is Envoy's per_connection_buffer_limit_bytes default.
const DefaultBufferLimit = 1 << 20

// LogEntry is one line a plugin logged (proxy_log, or stdout/stderr).
type LogEntry struct {
	Time    time.Time
	Level   LogLevel
	Filter  string
	Worker  int // -1: main thread
	Message string
}

// LogLevel is proxy-wasm's log level.
type LogLevel int

const (
	LevelTrace LogLevel = iota
	LevelDebug
	LevelInfo
	LevelWarn
	LevelError
	LevelCritical
)

var levelNames = [...]string{"trace", "debug", "info", "warn", "error", "critical"}

func (l LogLevel) String() string {
	if l >= 0 && int(l) < len(levelNames) {
		return levelNames[l]
	}
	return fmt.Sprintf("level%d", int(l))
}

// HostCall is one recorded host call.
type HostCall struct {
	Filter  string
	Worker  int
	Context uint32
	Name    string
	Status  uint32
}

// Trap is a guest failure: the VM that trapped and why.
type Trap struct {
	Filter   string
	Worker   int
	Callback string
	Err      error
}

func (t Trap) String() string {
	return fmt.Sprintf("filter %q (worker %d) trapped in %s: %v", t.Filter, t.Worker, t.Callback, t.Err)
}

// Host is a running proxy-wasm host: a main thread and N workers, each with
// one VM per distinct vm_config of the filters (filters whose vm_config
// matches share it, each a root context of its own), sharing one store of
// shared data, queues and metrics.
type Host struct {
	opts    Options
	runtime wazero.Runtime
	modules []wazero.CompiledModule
	keys    []vmKey // by filter: filters with equal keys share a VM per thread
	chains  [][]int // Options.Chains, or the default one
	clock   *Clock
	main    *worker
	workers []*worker
	next    atomic.Uint64
	streams atomic.Uint64
	// handlers runs the upstream handlers of streams.
	handlers *handlerPool

	randMu sync.Mutex
	rand   io.Reader

	shared  *sharedStore
	queues  *queueStore
	metrics metricStore

	mu       sync.Mutex
	logs     []LogEntry
	dropped  int
	calls    []HostCall
	traps    []Trap
	blocking []string
	callSeq  uint32
	closed   bool
	ctx      context.Context
	cancel   context.CancelFunc

	removedPropsWarned sync.Map // "filter\x00property": warned once
}

var (
	cacheOnce sync.Once
	cache     wazero.CompilationCache
)

// compilationCache is shared by every Host in the process (and on disk
// between processes): compiling a Go module costs about a second, a cache
// hit tens of milliseconds.
func compilationCache(dir string) wazero.CompilationCache {
	cacheOnce.Do(func() {
		if dir == "" {
			dir = filepath.Join(build.CacheRoot(), "wazero")
		}
		c, err := wazero.NewCompilationCacheWithDir(dir)
		if err != nil {
			c = wazero.NewCompilationCache()
		}
		cache = c
	})
	return cache
}

// Envoy caps a wasm VM's memory at 1 GiB (PROXY_WASM_HOST_MAX_WASM_MEMORY_SIZE_BYTES).
const maxMemoryPages = 1 << 14

// Start compiles the filters, creates the VMs and starts every filter's
// root context (on_vm_start, on_configure) on the main thread and each
// worker. A filter that refuses its configuration fails Start with the
// reason and the plugin's logs, as Envoy refuses to start.
func Start(opts Options) (*Host, error) {
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	if opts.MaxLogs <= 0 {
		opts.MaxLogs = 100000
	}
	h := &Host{opts: opts}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.handlers = newHandlerPool(h.ctx)
	h.clock = NewClock()
	h.shared, h.queues = &sharedStore{}, newQueueStore()
	h.shared.init()
	h.metrics.init()
	if opts.Seed != nil {
		h.rand = mrand.NewChaCha8(seedBytes(*opts.Seed))
	} else {
		h.rand = rand.Reader
	}
	cfg := wazero.NewRuntimeConfigCompiler().
		WithCompilationCache(compilationCache(opts.CacheDir)).
		WithMemoryLimitPages(maxMemoryPages)
	h.runtime = wazero.NewRuntimeWithConfig(h.ctx, cfg)
	if err := h.instantiateHostModules(); err != nil {
		h.runtime.Close(h.ctx)
		return nil, err
	}
	seen := map[string]bool{}
	for i := range h.opts.Filters {
		f := &h.opts.Filters[i]
		if f.Name == "" {
			f.Name = fmt.Sprintf("filter%d", i)
		}
		if seen[f.Name] {
			h.Close()
			return nil, fmt.Errorf("hosttest: two filters named %q; give each a distinct name", f.Name)
		}
		seen[f.Name] = true
		m, err := h.runtime.CompileModule(h.ctx, f.Wasm)
		if err != nil {
			h.Close()
			return nil, fmt.Errorf("hosttest: compiling %s (%s): %w", f.Name, f.WasmName, err)
		}
		if err := checkExports(m); err != nil {
			h.Close()
			return nil, fmt.Errorf("hosttest: %s (%s) is not a proxy-wasm module: %w", f.Name, f.WasmName, err)
		}
		h.modules = append(h.modules, m)
		h.keys = append(h.keys, keyOf(f))
	}
	if err := h.initChains(); err != nil {
		h.Close()
		return nil, err
	}
	h.main = newWorker(h, -1)
	for i := 0; i < opts.Workers; i++ {
		h.workers = append(h.workers, newWorker(h, i))
	}
	// The main thread starts first, as Envoy's canary and main-thread VMs do;
	// a refusal there stops everything before any worker starts.
	for _, w := range append([]*worker{h.main}, h.workers...) {
		var err error
		w.call(func() { err = h.startWorkerVMs(w) })
		if err != nil {
			h.Close()
			return nil, err
		}
	}
	return h, nil
}

// initChains checks Options.Chains, or makes the one default chain.
func (h *Host) initChains() error {
	fs := h.opts.Filters
	if h.opts.Chains == nil {
		var all []int
		for i := range fs {
			if !fs[i].MainThreadOnly {
				all = append(all, i)
			}
		}
		h.chains = [][]int{all}
		return nil
	}
	for c, chain := range h.opts.Chains {
		seen := map[int]bool{}
		for _, i := range chain {
			switch {
			case i < 0 || i >= len(fs):
				return fmt.Errorf("hosttest: chain %d names filter %d; there are %d", c, i, len(fs))
			case fs[i].MainThreadOnly:
				return fmt.Errorf("hosttest: chain %d has filter %q, which runs on the main thread only", c, fs[i].Name)
			case seen[i]:
				return fmt.Errorf("hosttest: chain %d has filter %q twice", c, fs[i].Name)
			}
			seen[i] = true
		}
	}
	h.chains = h.opts.Chains
	return nil
}

// chain is the filters of chain c, in order.
func (h *Host) chain(c int) []int {
	if c < 0 || c >= len(h.chains) {
		return nil
	}
	return h.chains[c]
}

func seedBytes(seed uint64) [32]byte {
	return sha256.Sum256(fmt.Appendf(nil, "hosttest-seed-%d", seed))
}

func checkExports(m wazero.CompiledModule) error {
	exports := m.ExportedFunctions()
	if _, ok := exports["proxy_on_context_create"]; !ok {
		return errors.New("it exports no proxy_on_context_create")
	}
	if _, ok := exports["proxy_abi_version_0_2_0"]; ok {
		return nil
	}
	if _, ok := exports["proxy_abi_version_0_2_1"]; ok {
		return nil
	}
	return errors.New("it exports no proxy_abi_version_0_2_0 or _0_2_1 marker")
}

// startWorkerVMs starts every filter's root context on w, in chain order:
// a filter whose vm_config matches an earlier one's joins that filter's VM
// as one more root context, as Envoy's getOrCreateThreadLocalPlugin does.
func (h *Host) startWorkerVMs(w *worker) error {
	w.plugins = make([]*plugin, len(h.opts.Filters))
	for i := range h.opts.Filters {
		if w.index >= 0 && h.opts.Filters[i].MainThreadOnly {
			continue
		}
		if vm := w.liveVM(h.keys[i]); vm != nil {
			p, err := vm.startPlugin(&plugin{vm: vm, filter: i, cfg: &h.opts.Filters[i]})
			if err != nil {
				return err
			}
			w.plugins[i] = p
			continue
		}
		_, p, err := h.newVM(w, i)
		if err != nil {
			return err
		}
		w.plugins[i] = p
	}
	return nil
}

// SharesVMWith reports, for each filter, the index of the earlier filter
// whose VM it shares (its vm_config matches: vm_id, code, vm configuration
// and environment), or -1 when it has a VM of its own.
func (h *Host) SharesVMWith() []int {
	out := make([]int, len(h.keys))
	for i := range h.keys {
		out[i] = -1
		for j := 0; j < i; j++ {
			if h.keys[j] == h.keys[i] {
				out[i] = j
				break
			}
		}
	}
	return out
}

// VMShare is where one filter's root context lives on one thread.
type VMShare struct {
	// First is the earliest filter (by index) in the same VM: the filter
	// itself when it is the VM's first, -1 when the filter has no root
	// context on this thread (a singleton service, on a worker).
	First  int
	RootID uint32 // its root context id in that VM
}

// VMShares reports, for each filter, which VM it is in on the main thread
// (worker -1) or on a worker, as running now.
func (h *Host) VMShares(worker int) []VMShare {
	w := h.main
	if worker >= 0 {
		if worker >= len(h.workers) {
			return nil
		}
		w = h.workers[worker]
	}
	out := make([]VMShare, len(h.opts.Filters))
	w.call(func() {
		for i, p := range w.plugins {
			out[i] = VMShare{First: -1}
			if p == nil {
				continue
			}
			out[i] = VMShare{First: i, RootID: p.rootID}
			for j := 0; j < i; j++ {
				if q := w.plugins[j]; q != nil && q.vm == p.vm {
					out[i].First = j
					break
				}
			}
		}
	})
	return out
}

// Close stops every worker and frees the VMs. In-flight streams are
// dropped; their Wait returns.
func (h *Host) Close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	h.mu.Unlock()
	h.cancel()
	for _, w := range append([]*worker{h.main}, h.workers...) {
		if w != nil {
			w.endOpenFlows()
		}
	}
	h.clock.close()
	for _, w := range append([]*worker{h.main}, h.workers...) {
		if w != nil {
			w.close()
		}
	}
	h.cancel()
	h.runtime.Close(context.Background())
}

// Clock is the host's clock.
func (h *Host) Clock() *Clock { return h.clock }

// Workers is the number of worker threads.
func (h *Host) Workers() int { return len(h.workers) }

// Filters lists the configured filter names in chain order.
func (h *Host) Filters() []string {
	names := make([]string, len(h.opts.Filters))
	for i, f := range h.opts.Filters {
		names[i] = f.Name
	}
	return names
}

func (h *Host) filterIndex(name string) int {
	for i, f := range h.opts.Filters {
		if f.Name == name {
			return i
		}
	}
	return -1
}

// ReadRandom reads from the host's random source (seeded in tests).
func (h *Host) ReadRandom(p []byte) error { return h.readRandom(p) }

func (h *Host) readRandom(p []byte) error {
	h.randMu.Lock()
	defer h.randMu.Unlock()
	_, err := io.ReadFull(h.rand, p)
	return err
}

func (h *Host) log(e LogEntry) {
	if h.opts.LogSink != nil {
		h.opts.LogSink(e)
	}
	h.mu.Lock()
	if len(h.logs) >= h.opts.MaxLogs {
		drop := len(h.logs) / 4
		h.logs = append(h.logs[:0], h.logs[drop:]...)
		h.dropped += drop
	}
	h.logs = append(h.logs, e)
	h.mu.Unlock()
}

// Logs returns a copy of the kept log lines.
func (h *Host) Logs() []LogEntry {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]LogEntry(nil), h.logs...)
}

// ClearLogs forgets the kept log lines.
func (h *Host) ClearLogs() {
	h.mu.Lock()
	h.logs = nil
	h.mu.Unlock()
}

// Calls returns the recorded host calls (Options.RecordCalls).
func (h *Host) Calls() []HostCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]HostCall(nil), h.calls...)
}

// ClearCalls forgets the recorded host calls.
func (h *Host) ClearCalls() {
	h.mu.Lock()
	h.calls = nil
	h.mu.Unlock()
}

// Traps returns every guest trap so far.
func (h *Host) Traps() []Trap {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Trap(nil), h.traps...)
}

func (h *Host) record(vm *VM, name string, status uint32) {
	if !h.opts.RecordCalls {
		return
	}
	h.mu.Lock()
	h.calls = append(h.calls, HostCall{Filter: vm.plug.cfg.Name, Worker: vm.w.index, Context: vm.activeID, Name: name, Status: status})
	h.mu.Unlock()
}

// MemoryBytes reports the linear-memory size of every VM of a filter:
// index 0 is the main thread, then the workers. Filters sharing a VM
// report the same memory.
func (h *Host) MemoryBytes(filter string) []uint64 {
	i := h.filterIndex(filter)
	if i < 0 {
		return nil
	}
	var out []uint64
	for _, w := range append([]*worker{h.main}, h.workers...) {
		var n uint64
		w.call(func() {
			// A failed VM a FAIL_CLOSED plugin stays on may be closed
			// already (its FAIL_RELOAD neighbours moved on): nothing held.
			if p := w.plugins[i]; p != nil && p.vm.mod != nil && !p.vm.mod.IsClosed() {
				n = uint64(p.vm.mod.Memory().Size())
			}
		})
		out = append(out, n)
	}
	return out
}

// pickWorker spreads streams round-robin, as Envoy's listener balances
// connections across workers.
func (h *Host) pickWorker() *worker {
	n := h.next.Add(1)
	return h.workers[int(n-1)%len(h.workers)]
}
