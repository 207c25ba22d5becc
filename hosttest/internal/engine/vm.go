package engine

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// phase is what the VM is doing, for Envoy's restricted-capability windows.
type phase int

const (
	phaseInit   phase = iota // _initialize: Go runtime init and init() functions
	phaseMalloc              // proxy_on_memory_allocate
	phaseNormal
)

type vmCtxKey struct{}

// VM is one instance of a module on one thread. Envoy shares it between
// every plugin whose vm_config matches (vm_id, code, vm configuration; here
// also the environment variables): each such plugin is a root context in
// it (plugin), and Go globals are shared between them.
type VM struct {
	host   *Host
	w      *worker
	base   *FilterConfig // the VM-level fields (vm_id, code, vm configuration, env) of every plugin in it
	mod    api.Module
	mem    api.Memory
	ctx    context.Context
	stack  []uint64
	nested [][]uint64 // stacks for guest calls made from host calls, by depth

	fn struct {
		malloc, contextCreate, vmStart, configure, tick, queueReady,
		reqHeaders, reqBody, reqTrailers, respHeaders, respBody, respTrailers,
		callResponse, log, done, delete api.Function
	}

	phase    phase
	depth    int
	callback string // the export being run, for trap messages
	nextID   uint32
	plugins  []*plugin // root contexts in creation order
	plug     *plugin   // the plugin whose context the host calls act on
	activeID uint32
	active   *filterStream // stream context the host calls act on, if any
	streams  map[uint32]*filterStream
	conn     *connFilter // connection context the host calls act on, if any (conn.go)
	conns    map[uint32]*connFilter
	net      netExports
	touched  []*filterStream // streams with deferred actions from a root callback

	failed      bool
	retired     bool // replaced by a reload: closed once its last stream is gone
	configOpen  bool
	calls       map[uint32]*callout
	callResp    *calloutResult
	metricIDs   map[uint32]*metric
	metricNames map[string]uint32
	nextMetric  uint32
	asleep      time.Duration // first wait a poll_oneoff asked for in this callback
	key         vmKey         // what plugins must match to share this VM (last: cold)
}

// plugin is one filter's root context in a VM (Envoy's PluginHandle on one
// thread): what host calls made from it or from its stream contexts see as
// plugin_name, root_id, configuration, tick and failure policy.
type plugin struct {
	vm     *VM
	filter int
	cfg    *FilterConfig
	rootID uint32
	// loadedAt is when this plugin, or the last reload attempt for it,
	// started, on the host clock (Envoy's per-plugin last_load).
	loadedAt   time.Time
	tickPeriod time.Duration
	tickTimer  *timer
	// labels name this plugin's running callbacks for "worker is stuck"
	// messages, built on first use so that the hot path neither allocates
	// nor looks anything up.
	labels [numExports]*string
}

// vmKey is Envoy's vm_key (vm_id, vm configuration, code) plus the
// environment variables: plugins with equal keys share a VM per thread.
type vmKey struct {
	vmID, vmConfig, env string
	code                [sha256.Size]byte
}

// VMKey is what filters of one Host must share to run in one VM per
// thread: vm_id, code, VM configuration and environment. Keys compare
// with ==; computing one hashes the module, so callers keep it.
type VMKey struct{ k vmKey }

// VMKeyOf is cfg's VMKey.
func VMKeyOf(cfg *FilterConfig) VMKey { return VMKey{keyOf(cfg)} }

func keyOf(cfg *FilterConfig) vmKey {
	// Sorted: the gateway reads environment variables from a map.
	vars := append([]EnvVar(nil), cfg.Env...)
	sort.Slice(vars, func(i, j int) bool { return vars[i].Key < vars[j].Key })
	var env strings.Builder
	for _, e := range vars {
		fmt.Fprintf(&env, "%q=%q\n", e.Key, e.Value)
	}
	return vmKey{vmID: cfg.VMID, vmConfig: string(cfg.VMConfiguration), env: env.String(), code: sha256.Sum256(cfg.Wasm)}
}

// newVM instantiates filter's module on w, runs _initialize and starts the
// filter's root context in it (startPlugin).
func (h *Host) newVM(w *worker, filter int) (_ *VM, _ *plugin, err error) {
	cfg := &h.opts.Filters[filter]
	vm := &VM{host: h, w: w, key: h.keys[filter], base: cfg, stack: make([]uint64, 8),
		streams: map[uint32]*filterStream{}, conns: map[uint32]*connFilter{}, calls: map[uint32]*callout{},
		metricIDs: map[uint32]*metric{}, metricNames: map[string]uint32{}}
	// Until its root context exists, what the module logs while it
	// initializes is the first plugin's.
	vm.plug = &plugin{vm: vm, filter: filter, cfg: cfg}
	vm.ctx = context.WithValue(h.ctx, vmCtxKey{}, vm)
	// No WASI config of wazero's own: our wasi_snapshot_preview1 module
	// answers instead, as Envoy's does. _initialize is called by hand so
	// the restricted window can be enforced around it.
	mod, err := h.runtime.InstantiateModule(vm.ctx, h.modules[filter],
		wazero.NewModuleConfig().WithName("").WithStartFunctions())
	if err != nil {
		return nil, nil, fmt.Errorf("hosttest: instantiating %s: %w", cfg.Name, err)
	}
	vm.mod, vm.mem = mod, mod.Memory()
	defer func() {
		if err != nil {
			// A VM that refused to start is never used: free its memory
			// (it matters when FAIL_RELOAD retries one again and again).
			vm.host.clock.cancel(vm.plug.tickTimer)
			mod.Close(context.Background())
		}
	}()
	f := mod.ExportedFunction
	vm.fn.malloc = f("proxy_on_memory_allocate")
	if vm.fn.malloc == nil {
		vm.fn.malloc = f("malloc")
	}
	vm.fn.contextCreate = f("proxy_on_context_create")
	vm.fn.vmStart = f("proxy_on_vm_start")
	vm.fn.configure = f("proxy_on_configure")
	vm.fn.tick = f("proxy_on_tick")
	vm.fn.queueReady = f("proxy_on_queue_ready")
	vm.fn.reqHeaders = f("proxy_on_request_headers")
	vm.fn.reqBody = f("proxy_on_request_body")
	vm.fn.reqTrailers = f("proxy_on_request_trailers")
	vm.fn.respHeaders = f("proxy_on_response_headers")
	vm.fn.respBody = f("proxy_on_response_body")
	vm.fn.respTrailers = f("proxy_on_response_trailers")
	vm.fn.callResponse = f("proxy_on_http_call_response")
	vm.fn.log = f("proxy_on_log")
	vm.fn.done = f("proxy_on_done")
	vm.fn.delete = f("proxy_on_delete")
	vm.lookupNetworkExports()
	if vm.fn.malloc == nil {
		return nil, nil, fmt.Errorf("hosttest: %s exports no proxy_on_memory_allocate", cfg.Name)
	}

	vm.phase = phaseInit
	for _, ex := range []export{exInitialize, exStart} {
		if init := f(exportNames[ex]); init != nil {
			if _, ok := vm.call(init, ex); !ok {
				return nil, nil, h.refusal(w, cfg, "_initialize (Go runtime init and init() functions) trapped")
			}
			break
		}
	}
	vm.phase = phaseNormal
	p, err := vm.startPlugin(vm.plug)
	if err != nil {
		return nil, nil, err
	}
	return vm, p, nil
}

// startPlugin creates p's root context in vm, as cpp-host's
// WasmBase::start and configure do for each plugin of a VM:
// on_context_create and on_vm_start (with the VM's configuration) for the
// new root context, then on_configure with the plugin's configuration.
// Root context ids follow creation order: the VM's first plugin has 1.
func (vm *VM) startPlugin(p *plugin) (*plugin, error) {
	h := vm.host
	p.loadedAt = h.clock.Now()
	p.rootID = vm.newContextID()
	vm.plugins = append(vm.plugins, p)
	refuse := func(reason string) (*plugin, error) {
		h.clock.cancel(p.tickTimer)
		vm.plugins = vm.plugins[:len(vm.plugins)-1]
		return nil, h.refusal(vm.w, p.cfg, reason)
	}
	vm.enterRoot(p)
	if _, ok := vm.call(vm.fn.contextCreate, exContextCreate, uint64(p.rootID), 0); !ok {
		return refuse("proxy_on_context_create for the root context trapped")
	}
	if vm.fn.vmStart != nil {
		r, ok := vm.call(vm.fn.vmStart, exVMStart, uint64(p.rootID), uint64(len(vm.base.VMConfiguration)))
		if !ok {
			return refuse("proxy_on_vm_start trapped")
		}
		if uint32(r) == 0 {
			return refuse("proxy_on_vm_start returned false: the VM configuration was refused")
		}
	}
	if vm.fn.configure != nil {
		vm.configOpen = true
		r, ok := vm.call(vm.fn.configure, exConfigure, uint64(p.rootID), uint64(len(p.cfg.Configuration)))
		vm.configOpen = false
		if !ok {
			return refuse("proxy_on_configure trapped")
		}
		if uint32(r) == 0 {
			return refuse("proxy_on_configure returned false: the plugin configuration was refused")
		}
	}
	vm.flushTouched()
	return p, nil
}

// enterRoot makes p's root context the one host calls act on.
func (vm *VM) enterRoot(p *plugin) {
	vm.plug, vm.active, vm.conn, vm.activeID = p, nil, nil, p.rootID
}

// rootPlugin is the plugin whose root context has id, if any.
func (vm *VM) rootPlugin(id uint32) *plugin {
	for _, p := range vm.plugins {
		if p.rootID == id {
			return p
		}
	}
	return nil
}

// ConfigError is a filter refusing to start; it carries the plugin's logs,
// which is where a plugin says why.
type ConfigError struct {
	Filter string
	Reason string
	Logs   []LogEntry
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "hosttest: filter %q refused to start: %s", e.Filter, e.Reason)
	if len(e.Logs) == 0 {
		b.WriteString(" (the plugin logged nothing)")
	}
	for _, l := range e.Logs {
		fmt.Fprintf(&b, "\n  [%s] %s", l.Level, l.Message)
	}
	return b.String()
}

func (h *Host) refusal(w *worker, cfg *FilterConfig, reason string) error {
	var logs []LogEntry
	for _, l := range h.Logs() {
		if l.Filter == cfg.Name && l.Worker == w.index {
			logs = append(logs, l)
		}
	}
	return &ConfigError{Filter: cfg.Name, Reason: reason, Logs: logs}
}

// export is a guest callback the host runs; exportNames spells it.
type export uint8

const (
	exMalloc export = iota
	exInitialize
	exStart
	exContextCreate
	exVMStart
	exConfigure
	exTick
	exQueueReady
	exReqHeaders
	exReqBody
	exReqTrailers
	exRespHeaders
	exRespBody
	exRespTrailers
	exCallResponse
	exLog
	exDone
	exDelete
	exNewConnection
	exDownstreamData
	exUpstreamData
	exDownstreamClose
	exUpstreamClose
	numExports
)

// exportNames are the names callbacks go by in messages (the allocator is
// proxy_on_memory_allocate even when the module exports it as malloc).
var exportNames = [numExports]string{
	exMalloc:          "proxy_on_memory_allocate",
	exInitialize:      "_initialize",
	exStart:           "_start",
	exContextCreate:   "proxy_on_context_create",
	exVMStart:         "proxy_on_vm_start",
	exConfigure:       "proxy_on_configure",
	exTick:            "proxy_on_tick",
	exQueueReady:      "proxy_on_queue_ready",
	exReqHeaders:      "proxy_on_request_headers",
	exReqBody:         "proxy_on_request_body",
	exReqTrailers:     "proxy_on_request_trailers",
	exRespHeaders:     "proxy_on_response_headers",
	exRespBody:        "proxy_on_response_body",
	exRespTrailers:    "proxy_on_response_trailers",
	exCallResponse:    "proxy_on_http_call_response",
	exLog:             "proxy_on_log",
	exDone:            "proxy_on_done",
	exDelete:          "proxy_on_delete",
	exNewConnection:   "proxy_on_new_connection",
	exDownstreamData:  "proxy_on_downstream_data",
	exUpstreamData:    "proxy_on_upstream_data",
	exDownstreamClose: "proxy_on_downstream_connection_close",
	exUpstreamClose:   "proxy_on_upstream_connection_close",
}

// label names a running callback for "worker is stuck" messages.
func (p *plugin) label(ex export) *string {
	if l := p.labels[ex]; l != nil {
		return l
	}
	l := p.cfg.Name + ": " + exportNames[ex]
	p.labels[ex] = &l
	return &l
}

func (vm *VM) newContextID() uint32 {
	vm.nextID++
	return vm.nextID
}

// call runs a guest export. ok is false when the guest trapped; the VM is
// then failed for good, as Envoy marks it FailState::RuntimeError.
//
// No defer and no allocation here: it runs for every callback and for
// every proxy_on_memory_allocate a host call makes. wazero turns a panic
// in a host function into an error from CallWithStack, so the state
// restored after the call is always restored.
func (vm *VM) call(fn api.Function, ex export, args ...uint64) (uint64, bool) {
	if vm.failed {
		return 0, false
	}
	name := exportNames[ex]
	prev := vm.callback
	vm.callback = name
	// Host calls re-enter the guest (malloc) while an outer call is running,
	// so each nesting depth has its own stack buffer, kept for reuse.
	outer := vm.depth == 0
	var stack []uint64
	if outer {
		stack = vm.stack[:cap(vm.stack)]
		vm.asleep = 0
		vm.w.current.Store(vm.plug.label(ex))
	} else {
		for len(vm.nested) < vm.depth {
			vm.nested = append(vm.nested, make([]uint64, 8))
		}
		stack = vm.nested[vm.depth-1]
	}
	vm.depth++
	copy(stack, args)
	err := fn.CallWithStack(vm.ctx, stack)
	vm.depth--
	vm.callback = prev
	if outer {
		vm.w.current.Store(nil)
	}
	if err != nil {
		vm.fail(name, err)
		return 0, false
	}
	if outer && vm.asleep > 0 {
		vm.host.noteBlocking(vm, name, vm.asleep)
		vm.asleep = 0
	}
	return stack[0], true
}

func (vm *VM) fail(callback string, err error) {
	vm.failed = true
	var exit interface{ ExitCode() uint32 }
	if errors.As(err, &exit) {
		err = fmt.Errorf("proc_exit(%d): %w", exit.ExitCode(), err)
	}
	vm.host.mu.Lock()
	vm.host.traps = append(vm.host.traps, Trap{Filter: vm.plug.cfg.Name, Worker: vm.w.index, Callback: callback, Err: err})
	vm.host.mu.Unlock()
	vm.host.log(LogEntry{Time: time.Now(), Level: LevelCritical, Filter: vm.plug.cfg.Name, Worker: vm.w.index,
		Message: fmt.Sprintf("Function: %s failed: %v", callback, err)})
	// The whole VM is gone: every root context's tick with it.
	for _, p := range vm.plugins {
		vm.host.clock.cancel(p.tickTimer)
	}
}

// malloc asks the guest for size bytes. Size 0 is never requested: the Go
// SDK's allocator panics on it, and Envoy returns (0, 0) for empty data.
func (vm *VM) malloc(size uint32) (uint32, bool) {
	prev := vm.phase
	vm.phase = phaseMalloc
	r, ok := vm.call(vm.fn.malloc, exMalloc, uint64(size))
	vm.phase = prev
	return uint32(r), ok
}

// copyOut returns data to the guest through (ptrPtr, sizePtr).
func (vm *VM) copyOut(data []byte, ptrPtr, sizePtr uint32) bool {
	if len(data) == 0 {
		return vm.mem.WriteUint32Le(ptrPtr, 0) && vm.mem.WriteUint32Le(sizePtr, 0)
	}
	p, ok := vm.malloc(uint32(len(data)))
	if !ok || p == 0 {
		return false
	}
	// The allocation may have grown memory; Write goes through the current
	// memory, never a stale view.
	return vm.mem.Write(p, data) && vm.mem.WriteUint32Le(ptrPtr, p) && vm.mem.WriteUint32Le(sizePtr, uint32(len(data)))
}

// copyOutString is copyOut for a string, copied straight into the guest's
// allocation with no intermediate []byte.
func (vm *VM) copyOutString(data string, ptrPtr, sizePtr uint32) bool {
	if len(data) == 0 {
		return vm.mem.WriteUint32Le(ptrPtr, 0) && vm.mem.WriteUint32Le(sizePtr, 0)
	}
	p, ok := vm.malloc(uint32(len(data)))
	if !ok || p == 0 {
		return false
	}
	// A view taken after the allocation: it cannot be stale.
	dst, ok := vm.mem.Read(p, uint32(len(data)))
	if !ok {
		return false
	}
	copy(dst, data)
	return vm.mem.WriteUint32Le(ptrPtr, p) && vm.mem.WriteUint32Le(sizePtr, uint32(len(data)))
}

// view returns guest memory without copying. It is valid only until the
// guest next runs (a malloc may grow memory and detach it), so callers
// use it before any call back into the guest and never keep it.
func (vm *VM) view(ptr, size uint32) ([]byte, bool) {
	if size == 0 {
		return nil, true
	}
	return vm.mem.Read(ptr, size)
}

// read copies guest memory; a copy, because a later malloc may grow memory
// and detach any view.
func (vm *VM) read(ptr, size uint32) ([]byte, bool) {
	if size == 0 {
		return nil, true
	}
	b, ok := vm.mem.Read(ptr, size)
	if !ok {
		return nil, false
	}
	return append([]byte(nil), b...), true
}

func (vm *VM) readString(ptr, size uint32) (string, bool) {
	if size == 0 {
		return "", true
	}
	b, ok := vm.mem.Read(ptr, size)
	if !ok {
		return "", false
	}
	return string(b), true
}

// Root-context callbacks, always on the VM's worker goroutine.

// setTick sets p's root context's tick period: each root context of a VM
// has its own timer (cpp-host's setTimerPeriod by root context id).
func (p *plugin) setTick(period time.Duration) {
	p.vm.host.clock.cancel(p.tickTimer)
	p.tickTimer = nil
	p.tickPeriod = period
	if period > 0 {
		p.armTick()
	}
}

// armTick schedules the next tick one period after now: Envoy re-arms the
// timer after on_tick returns, so periods are measured end to start.
func (p *plugin) armTick() {
	vm := p.vm
	period := p.tickPeriod
	var t *timer
	t = vm.host.clock.afterFunc(period, vm.w, func() {
		if vm.failed || p.tickTimer != t {
			return
		}
		vm.enterRoot(p)
		if vm.fn.tick != nil {
			vm.call(vm.fn.tick, exTick, uint64(p.rootID))
		}
		vm.flushTouched()
		if p.tickTimer == t && !vm.failed {
			p.armTick()
		}
	})
	p.tickTimer = t
}

func (p *plugin) onQueueReady(id uint32) {
	vm := p.vm
	if vm.failed || vm.fn.queueReady == nil {
		return
	}
	vm.enterRoot(p)
	vm.call(vm.fn.queueReady, exQueueReady, uint64(p.rootID), uint64(id))
	vm.flushTouched()
}

// flushTouched runs the deferred stream actions (continue, local reply)
// that a root callback requested after switching to a stream context.
func (vm *VM) flushTouched() {
	p := vm.plug
	for len(vm.touched) > 0 {
		f := vm.touched[0]
		vm.touched = vm.touched[1:]
		f.touched = false
		f.s.runDeferred(f)
	}
	vm.enterRoot(p)
}
