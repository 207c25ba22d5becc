package engine

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/concierge-wasm/concierge/hosttest/internal/abi"
	"github.com/tetratelabs/wazero/api"
	"google.golang.org/protobuf/proto"
)

// Directions of the filter chain: decode runs the request through the
// filters in order, encode runs the response through them in reverse.
const (
	dec = 0
	enc = 1
)

// Where a filter stopped iteration.
const (
	stHeaders = iota
	stBody
	stTrailers
)

// Request is what the client sends, pseudo-headers included.
type Request struct {
	Headers  []abi.Pair
	Body     [][]byte // chunks, in arrival order
	Trailers []abi.Pair
	// Disabled names filters switched off for this route
	// (typed_per_filter_config FilterConfig{disabled: true}).
	Disabled map[string]bool
	// Attributes are extra Envoy attributes for proxy_get_property, keyed
	// by dotted path ("xds.route_name"); they override computed ones.
	Attributes map[string][]byte
	// Messages are message-valued attributes keyed by dotted path
	// ("xds.route_metadata"): the path below them walks the message as
	// Envoy's CEL view does (see propmsg.go).
	Messages map[string]proto.Message
	// Protocol is request.protocol ("HTTP/1.0", "HTTP/1.1", "HTTP/2");
	// empty means HTTP/1.1.
	Protocol    string
	Source      string // downstream address, default 127.0.0.1:50000
	Destination string // listener address, default 127.0.0.1:8080
	// Timeout is the route timeout on the host clock; 0 means none.
	Timeout time.Duration
	// Upstream, if set, replaces the host's upstream for this request.
	Upstream http.Handler
	// Sink, if set, receives the response as it is encoded; the Result
	// then keeps no body.
	Sink Sink
	// BufferLimit, if set, replaces the host's for this request (the
	// listener's per_connection_buffer_limit_bytes).
	BufferLimit int
	// Chain is the filter chain the stream runs (Options.Chains).
	Chain int
}

// UpstreamRequest is what the upstream received.
type UpstreamRequest struct {
	Headers  []abi.Pair
	Body     []byte
	Trailers []abi.Pair
}

// Result is what the client received.
type Result struct {
	Status   int
	Headers  []abi.Pair
	Body     []byte
	Chunks   int // body frames the client received
	Trailers []abi.Pair
	// LocalReplyBy names the filter that answered locally ("router" for
	// Envoy's own replies such as a route timeout); empty when the
	// response came from the upstream.
	LocalReplyBy string
	// Details is Envoy's response code details (%RESPONSE_CODE_DETAILS%).
	Details  string
	Upstream *UpstreamRequest // nil when the request never reached it
	Reset    bool             // the stream was reset instead of answered
	Flags    uint64           // Envoy's response flags (Flag* bits)
	Worker   int
}

// filterStream is one filter's view of one stream: its context id and its
// iteration state in each direction.
type filterStream struct {
	s       *Stream
	vm      *VM
	index   int
	ctxID   uint32
	created bool
	skipped bool // disabled for the route, or a fail-open filter whose VM failed
	dead    bool // its VM failed during this stream: later callbacks are skipped

	dir           [2]dirState
	mapOpen       [2]bool // headers map of that direction is reachable
	trailOpen     [2]bool
	inBody        [2]bool
	bodyEOS       [2]bool
	accessLog     bool
	inCallback    bool
	addedTrailers [2]bool
	closeAsked    bool
	touched       bool
	local         *localReply
	plug          *plugin // its root context's plugin, in vm
}

type dirState struct {
	passedHeaders   bool
	stopped         bool
	stopAt          int
	buffering       bool
	buf             []byte
	held            []byte
	heldData        bool
	heldEOS         bool
	heldTrailers    bool
	pendingContinue bool
}

type localReply struct {
	status  int
	body    []byte
	headers []abi.Pair
	details string
	by      string
}

// Stream is one HTTP request/response exchange on one worker.
type Stream struct {
	host *Host
	w    *worker
	id   uint64
	req  Request

	fs    []*filterStream
	order [2][]*filterStream

	headers  [2]*headerMap
	trailers [2]*headerMap
	hdrEOS   [2]bool
	aborted  [2]bool

	started       time.Time
	encodeStarted bool
	sentHeaders   bool
	finished      bool
	upstreamReq   *UpstreamRequest
	upstreamSpace UpstreamRequest // what upstreamReq points to, allocated with the stream
	upstreamAsked bool
	timeout       *timer
	cancelUp      context.CancelFunc
	pipe          *bodyPipe
	fromUpstream  bool
	filterState   map[string][]byte
	remoteDone    bool // the client has sent the whole request (Envoy's remoteDecodeComplete)
	reqBytes      int  // request body bytes from the client (request.size)
	respBytes     int  // response body bytes to the client (response.size)
	// flags are Envoy's response flags (response.flags); upstreamHost and
	// transportFailure are what the router reported.
	flags            uint64
	upstreamHost     string
	transportFailure string

	result Result
	done   chan struct{}
	// Room for the filter states of a short chain, allocated with the
	// stream.
	fsSpace    [2]filterStream
	orderSpace [4]*filterStream
	// Room for the request headers and the upstream's response headers,
	// each made once per stream.
	headerSpace [2]smallHeaderMap
	stuck       string
	flow        [2]flowGauge
}

// NewStream creates a stream on the next worker; nothing runs until the
// client events are sent.
func (h *Host) NewStream(req Request) *Stream {
	w := h.pickWorker()
	s := &Stream{host: h, w: w, id: h.streams.Add(1), req: req, done: make(chan struct{})}
	s.flow[dec].init()
	s.flow[enc].init()
	// A host closing with the stream open frees whoever waits on its flow.
	w.track(s)
	s.result.Worker = w.index
	if s.req.Source == "" {
		s.req.Source = "127.0.0.1:50000"
	}
	if s.req.Destination == "" {
		s.req.Destination = "127.0.0.1:8080"
	}
	return s
}

// Do sends the whole request and waits for the response, at most wait
// (real time). A stream still open then is reset, and ok is false.
//
// The events are queued to the worker in order without waiting for each
// (the worker runs them as SendHeaders, SendData and SendTrailers would):
// the caller then waits once, for the response.
func (s *Stream) Do(wait time.Duration) (Result, bool) {
	eos := len(s.req.Body) == 0 && len(s.req.Trailers) == 0
	s.w.post(func() { s.startEvent(eos) })
	for i, c := range s.req.Body {
		s.w.post(s.dataEvent(c, i == len(s.req.Body)-1 && len(s.req.Trailers) == 0))
	}
	if len(s.req.Trailers) > 0 {
		trailers := s.req.Trailers
		s.w.post(func() { s.trailersEvent(trailers) })
	}
	return s.Wait(wait)
}

// SendHeaders starts the stream with the request headers. Like every
// Send, it returns once the worker has processed the event, so a test
// that then advances the clock knows the filters have run.
func (s *Stream) SendHeaders() {
	s.Start(len(s.req.Body) == 0 && len(s.req.Trailers) == 0)
}

// Start sends the request headers, saying whether the request ends with
// them; body frames and trailers follow through SendData and SendTrailers.
func (s *Stream) Start(endOfStream bool) {
	s.w.call(func() { s.startEvent(endOfStream) })
}

func (s *Stream) startEvent(endOfStream bool) {
	s.remoteDone = endOfStream
	s.start(endOfStream)
}

// SendData sends one request body frame.
func (s *Stream) SendData(chunk []byte, eos bool) { s.w.call(s.dataEvent(chunk, eos)) }

// dataEvent is a request body frame as the worker takes it; the chunk is
// copied, since filters may keep or change what they are given.
func (s *Stream) dataEvent(chunk []byte, eos bool) func() {
	c := append([]byte(nil), chunk...)
	return func() {
		s.reqBytes += len(c)
		s.remoteDone = s.remoteDone || eos
		if !s.finished && !s.aborted[dec] {
			s.data(dec, 0, c, eos)
		}
	}
}

// SendTrailers ends the request with the trailers given in the Request.
func (s *Stream) SendTrailers() { s.SendTrailerPairs(s.req.Trailers) }

// SendTrailerPairs ends the request with trailers learnt as it streamed.
func (s *Stream) SendTrailerPairs(trailers []abi.Pair) {
	s.w.call(func() { s.trailersEvent(trailers) })
}

func (s *Stream) trailersEvent(trailers []abi.Pair) {
	s.remoteDone = true
	if !s.finished && !s.aborted[dec] {
		s.trailers[dec] = newHeaderMap(trailers)
		s.runTrailers(dec, 0)
	}
}

// Reset resets the stream, as a client hanging up does: the filters get
// their access-log and teardown callbacks, and response.flags has DC.
// A worker stuck inside a callback cannot reset anything: after
// stuckWait the caller goes on (ok false) and the reset happens if it ever
// frees.
func (s *Stream) Reset(reason string) (Result, bool) {
	if !s.w.callWithin(func() { s.clientReset(reason) }, stuckWait) {
		return s.stuckResult(), false
	}
	return s.result, true
}

func (s *Stream) clientReset(reason string) {
	if !s.finished {
		s.flags |= FlagDownstreamConnectionTermination
	}
	s.reset(reason)
}

// waitTimers recycles Wait's timers: a timer per request was two
// allocations on every request that was not done at once. Since Go 1.23 a
// stopped timer's channel holds no stale tick, so Reset is safe.
var waitTimers = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}}

// Wait waits for the response; after wait (real time) it resets the
// stream, as a client giving up would, and reports ok=false.
func (s *Stream) Wait(wait time.Duration) (Result, bool) {
	select {
	case <-s.done: // often done already: no timer then
		return s.result, true
	default:
	}
	t := waitTimers.Get().(*time.Timer)
	t.Reset(wait)
	select {
	case <-s.done:
		t.Stop()
		waitTimers.Put(t)
		return s.result, true
	case <-s.host.ctx.Done():
		t.Stop()
		waitTimers.Put(t)
		return s.result, false
	case <-t.C:
		waitTimers.Put(t) // fired and drained: ready for the next Reset
	}
	// A callback that never returns holds its worker, as it would an Envoy
	// worker thread; then the stream cannot even be reset.
	if !s.w.callWithin(func() { s.stuck = s.describe() }, stuckWait) {
		s.stuck = fmt.Sprintf("worker %d is stuck inside a callback (%s): a filter callback that never returns blocks an Envoy worker", s.w.index, s.w.running())
		return s.stuckResult(), false
	}
	s.w.callWithin(func() { s.clientReset("client gave up waiting") }, stuckWait)
	select {
	case <-s.done:
		return s.result, false
	case <-s.host.ctx.Done():
	case <-time.After(stuckWait):
	}
	return s.stuckResult(), false
}

// stuckResult stands for the Result of a stream whose worker may still
// write it: nothing of it can be read safely.
func (s *Stream) stuckResult() Result {
	return Result{Reset: true, Details: "worker stuck", Worker: s.w.index}
}

// Stuck says where the stream was held when Wait gave up.
func (s *Stream) Stuck() string { return s.stuck }

// Done is closed when the stream has finished.
func (s *Stream) Done() <-chan struct{} { return s.done }

// Result is the outcome so far (complete once Done is closed).
func (s *Stream) Result() Result { return s.result }

// Describe says where each direction is stopped, for "stream stuck"
// messages.
func (s *Stream) Describe() string {
	var out string
	if !s.w.callWithin(func() { out = s.describe() }, stuckWait) {
		return fmt.Sprintf("worker %d is stuck inside a callback (%s)", s.w.index, s.w.running())
	}
	return out
}

func (s *Stream) describe() string {
	var out string
	func() {
		var parts []string
		for d, name := range []string{"request", "response"} {
			for _, f := range s.order[d] {
				st := f.dir[d]
				if st.stopped {
					parts = append(parts, fmt.Sprintf("%s paused by filter %q at %s", name, f.plug.cfg.Name, [...]string{"headers", "body", "trailers"}[st.stopAt]))
				} else if st.buffering {
					parts = append(parts, fmt.Sprintf("%s body buffered by filter %q", name, f.plug.cfg.Name))
				}
			}
		}
		if len(parts) == 0 {
			switch {
			case s.upstreamAsked && !s.encodeStarted:
				parts = append(parts, "waiting for the upstream")
			default:
				parts = append(parts, "no filter holds it")
			}
		}
		out = strings.Join(parts, "; ")
	}()
	return out
}

func (s *Stream) start(eos bool) {
	h := s.host
	s.started = h.clock.Now()
	// The filters' states and both orders: with the stream for a short
	// chain, else one allocation each.
	chain := h.chain(s.req.Chain)
	n := len(chain)
	var states []filterStream
	var order []*filterStream
	if n <= len(s.fsSpace) {
		states, order = s.fsSpace[:n], s.orderSpace[:2*n]
	} else {
		states, order = make([]filterStream, n), make([]*filterStream, 2*n)
	}
	s.fs, s.order[enc] = order[:n:n], order[n:]
	for k, i := range chain {
		p := h.reloadIfNeeded(s.w, i)
		f := &states[k]
		*f = filterStream{s: s, vm: p.vm, plug: p, index: k}
		if s.req.Disabled[p.cfg.Name] || (p.vm.failed && p.cfg.FailurePolicy == FailOpen) {
			f.skipped = true
		}
		s.fs[k] = f
		s.order[enc][n-1-k] = f
	}
	s.order[dec] = s.fs
	s.headers[dec] = newHeaderMapIn(&s.headerSpace[dec], s.req.Headers)
	s.hdrEOS[dec] = eos
	s.runHeaders(dec, 0)
}

// reloadIfNeeded re-creates a failed VM under FAIL_RELOAD, as Envoy's
// PluginConfig::maybeReloadHandleIfNeeded does: only when at least the
// reload backoff has passed since the VM was loaded (or since the last
// reload attempt), the backoff being reload_config.backoff.base_interval
// (1s by default) with Envoy's lower-bound jitter, [base, 1.5×base). The
// time of an attempt counts whether or not it succeeds, so a module that
// traps on every start is retried at that pace, never in a loop.
//
// It works per plugin, as Envoy's does: when plugins share the VM, each
// FAIL_RELOAD plugin moves on its own next stream, the first into a fresh
// VM and the others into that one (cpp-host's getOrCreateThreadLocalPlugin
// finds it by vm_key), each getting a new root context, on_vm_start and
// on_configure. A FAIL_CLOSED or FAIL_OPEN plugin of the same VM stays on
// the failed one and keeps its own policy.
func (h *Host) reloadIfNeeded(w *worker, i int) *plugin {
	p := w.plugins[i]
	vm := p.vm
	if !vm.failed || p.cfg.FailurePolicy != FailReload {
		return p
	}
	now := h.clock.Now()
	if now.Sub(p.loadedAt) < reloadInterval(p.cfg) {
		return p
	}
	p.loadedAt = now
	var fresh *plugin
	var err error
	msg := "FAIL_RELOAD: the VM failed with a runtime error and was reloaded"
	if live := w.liveVM(h.keys[i]); live != nil {
		fresh, err = live.startPlugin(&plugin{vm: live, filter: i, cfg: p.cfg})
		if err == nil {
			msg = fmt.Sprintf("FAIL_RELOAD: the VM failed with a runtime error; this plugin joined the reloaded VM as root context %d", fresh.rootID)
		}
	} else {
		_, fresh, err = h.newVM(w, i)
	}
	if err != nil {
		h.log(LogEntry{Time: time.Now(), Level: LevelError, Filter: p.cfg.Name, Worker: w.index,
			Message: "FAIL_RELOAD: reloading the failed VM failed: " + err.Error()})
		return p
	}
	h.log(LogEntry{Time: time.Now(), Level: LevelInfo, Filter: p.cfg.Name, Worker: w.index, Message: msg})
	vm.retire()
	w.plugins[i] = fresh
	return fresh
}

// DefaultReloadBackoff is Envoy's reload_config.backoff.base_interval
// default.
const DefaultReloadBackoff = time.Second

// reloadInterval is Envoy's JitteredLowerBoundBackOffStrategy: a random
// interval in [base, 1.5×base).
func reloadInterval(cfg *FilterConfig) time.Duration {
	base := cfg.ReloadBackoff
	if base <= 0 {
		base = DefaultReloadBackoff
	}
	// Not the guest's random source: a reload must not shift what a
	// seeded random_get returns.
	return base + time.Duration(mrand.Int64N(int64(base/2)+1))
}

// retire closes a replaced VM's module once no stream uses it any more, so
// that its linear memory is freed (Envoy frees a VM with its last handle).
func (vm *VM) retire() {
	if vm.retired {
		return
	}
	vm.retired = true
	if len(vm.streams) == 0 {
		vm.mod.Close(context.Background())
	}
}

func (f *filterStream) name() string { return f.plug.cfg.Name }

// enter makes sure the filter's context exists before a callback; false
// means skip the filter (or the stream has been answered for it).
func (s *Stream) enter(f *filterStream) bool {
	if f.skipped || f.dead {
		return false
	}
	vm := f.vm
	if vm.failed {
		if f.plug.cfg.FailurePolicy == FailOpen {
			f.skipped = true
			return false
		}
		// A failed VM under fail-closed answers every stream with 503
		// (Envoy: a Context with a null wasm fails the stream).
		f.dead = true
		s.sendLocalReply(&localReply{status: 503, details: "wasm_fail_stream", by: f.name()})
		return false
	}
	if f.created {
		return true
	}
	f.ctxID = vm.newContextID()
	vm.streams[f.ctxID] = f
	f.created = true
	vm.plug, vm.active, vm.conn, vm.activeID = f.plug, f, nil, f.ctxID
	_, ok := vm.call(vm.fn.contextCreate, exContextCreate, uint64(f.ctxID), uint64(f.plug.rootID))
	vm.enterRoot(f.plug)
	if !ok {
		return s.onTrap(f)
	}
	return true
}

// invoke runs one stream callback of f.
func (s *Stream) invoke(f *filterStream, fn api.Function, ex export, args ...uint64) (abi.Action, bool) {
	if fn == nil {
		return abi.Continue, true
	}
	vm := f.vm
	vm.plug, vm.active, vm.conn, vm.activeID = f.plug, f, nil, f.ctxID
	f.inCallback = true
	r, ok := vm.call(fn, ex, args...)
	f.inCallback = false
	vm.enterRoot(f.plug)
	if len(vm.touched) > 0 {
		// Actions on other streams requested from this callback run once it
		// has returned, as Envoy defers them.
		s.w.post(vm.flushTouched)
	}
	return abi.Action(uint32(r)), ok
}

// onTrap handles a guest trap in f's callback: fail-open continues without
// the filter, anything else answers 503 wasm_fail_stream. It reports
// whether iteration goes on.
func (s *Stream) onTrap(f *filterStream) bool {
	f.dead = true
	if f.plug.cfg.FailurePolicy == FailOpen {
		return true
	}
	s.sendLocalReply(&localReply{status: 503, details: "wasm_fail_stream", by: f.name()})
	return false
}

// afterCallback applies what f asked for during its callback: a local
// reply stops iteration whatever the callback returned.
func (s *Stream) afterCallback(f *filterStream, d int) (stop bool) {
	if f.closeAsked {
		f.closeAsked = false
		s.reset("wasm_close_stream")
		return true
	}
	if f.local != nil {
		lr := f.local
		f.local = nil
		f.dir[0].pendingContinue, f.dir[1].pendingContinue = false, false
		s.sendLocalReply(lr)
		return true
	}
	if other := 1 - d; f.dir[other].pendingContinue {
		s.w.post(func() { s.runDeferred(f) })
	}
	return s.finished || s.aborted[d]
}

func (s *Stream) runDeferred(f *filterStream) {
	if s.finished {
		return
	}
	if f.closeAsked {
		f.closeAsked = false
		s.reset("wasm_close_stream")
		return
	}
	if f.local != nil {
		lr := f.local
		f.local = nil
		s.sendLocalReply(lr)
		return
	}
	for d := dec; d <= enc; d++ {
		if f.dir[d].pendingContinue {
			f.dir[d].pendingContinue = false
			s.resume(f, d)
		}
	}
}

func (s *Stream) pos(f *filterStream, d int) int {
	if d == dec {
		return f.index
	}
	return len(s.fs) - 1 - f.index
}

func (vm *VM) callbacks(d int) (headers, body, trailers api.Function) {
	if d == dec {
		return vm.fn.reqHeaders, vm.fn.reqBody, vm.fn.reqTrailers
	}
	return vm.fn.respHeaders, vm.fn.respBody, vm.fn.respTrailers
}

var cbExports = [2][3]export{
	{exReqHeaders, exReqBody, exReqTrailers},
	{exRespHeaders, exRespBody, exRespTrailers},
}

func boolArg(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

func (s *Stream) runHeaders(d, from int) {
	fs := s.order[d]
	for k := from; k < len(fs); k++ {
		if s.finished || s.aborted[d] {
			return
		}
		f := fs[k]
		if !s.enter(f) {
			if s.finished || s.aborted[d] {
				return
			}
			continue
		}
		st := &f.dir[d]
		f.mapOpen[d] = true
		fn, _, _ := f.vm.callbacks(d)
		act, ok := s.invoke(f, fn, cbExports[d][0], uint64(f.ctxID), uint64(len(s.headers[d].pairs)), boolArg(s.hdrEOS[d]))
		if !ok {
			f.mapOpen[d] = false
			if s.onTrap(f) {
				continue
			}
			return
		}
		if s.afterCallback(f, d) {
			return
		}
		if act != abi.Continue && !st.pendingContinue {
			st.stopped, st.stopAt = true, stHeaders
			return
		}
		st.pendingContinue = false
		f.mapOpen[d] = false
		st.passedHeaders = true
	}
	s.terminalHeaders(d)
}

func (s *Stream) data(d, from int, data []byte, eos bool) {
	fs := s.order[d]
	for k := from; k < len(fs); k++ {
		if s.finished || s.aborted[d] {
			return
		}
		f := fs[k]
		if f.skipped || f.dead || !f.created {
			continue
		}
		st := &f.dir[d]
		if st.stopped {
			st.held = append(st.held, data...)
			s.flow[d].add(len(data))
			st.heldData = true
			st.heldEOS = st.heldEOS || eos
			return
		}
		if st.buffering {
			// Envoy adds the chunk to the filter's buffer, and the buffer
			// going over the limit ends the stream, before the filter is
			// called.
			st.buf = append(st.buf, data...)
			if len(st.buf) > s.bufferLimit() {
				s.bodyTooLarge(d)
				return
			}
		} else {
			st.buf = data
		}
		f.inBody[d], f.bodyEOS[d] = true, eos
		_, fn, _ := f.vm.callbacks(d)
		act, ok := s.invoke(f, fn, cbExports[d][1], uint64(f.ctxID), uint64(len(st.buf)), boolArg(eos))
		f.inBody[d] = false
		if !ok {
			if s.onTrap(f) {
				data, st.buf, st.buffering = st.buf, nil, false
				continue
			}
			return
		}
		if s.afterCallback(f, d) {
			return
		}
		if act != abi.Continue && !st.pendingContinue {
			if len(st.buf) > s.bufferLimit() { // the chunk itself is over
				s.bodyTooLarge(d)
				return
			}
			st.buffering = true
			if eos {
				st.stopped, st.stopAt = true, stBody
			}
			return
		}
		st.pendingContinue = false
		data, st.buf, st.buffering = st.buf, nil, false
		if f.addedTrailers[d] {
			// Trailers added at end of stream (Envoy addDecodedTrailers /
			// addEncodedTrailers) follow the data to the later filters.
			f.addedTrailers[d] = false
			s.data(d, k+1, data, false)
			s.runTrailers(d, k+1)
			return
		}
	}
	s.terminalData(d, data, eos)
}

func (s *Stream) runTrailers(d, from int) {
	fs := s.order[d]
	for k := from; k < len(fs); k++ {
		if s.finished || s.aborted[d] {
			return
		}
		f := fs[k]
		if f.skipped || f.dead || !f.created {
			continue
		}
		st := &f.dir[d]
		if st.stopped {
			st.heldTrailers = true
			return
		}
		f.trailOpen[d] = true
		_, _, fn := f.vm.callbacks(d)
		act, ok := s.invoke(f, fn, cbExports[d][2], uint64(f.ctxID), uint64(len(s.trailers[d].pairs)))
		if !ok {
			f.trailOpen[d] = false
			if s.onTrap(f) {
				continue
			}
			return
		}
		if s.afterCallback(f, d) {
			return
		}
		if act != abi.Continue && !st.pendingContinue {
			st.stopped, st.stopAt = true, stTrailers
			return
		}
		st.pendingContinue = false
		f.trailOpen[d] = false
		if !s.flushBuffered(f, d, k) {
			return
		}
	}
	s.terminalTrailers(d)
}

// flushBuffered passes on what f buffered before trailers follow it.
func (s *Stream) flushBuffered(f *filterStream, d, k int) bool {
	st := &f.dir[d]
	if !st.buffering {
		return true
	}
	buf := st.buf
	st.buf, st.buffering = nil, false
	if len(buf) > 0 {
		s.data(d, k+1, buf, false)
	}
	return !s.finished && !s.aborted[d]
}

// resume is proxy_continue_stream taking effect for f in direction d.
func (s *Stream) resume(f *filterStream, d int) {
	if s.finished || s.aborted[d] {
		return
	}
	st := &f.dir[d]
	k := s.pos(f, d)
	switch {
	case st.stopped && st.stopAt == stHeaders:
		st.stopped = false
		f.mapOpen[d] = false
		st.passedHeaders = true
		s.runHeaders(d, k+1)
		if st.heldData {
			held, eos := st.held, st.heldEOS
			st.held, st.heldData, st.heldEOS = nil, false, false
			s.flow[d].add(-len(held))
			s.data(d, k, held, eos)
		}
		if st.heldTrailers {
			st.heldTrailers = false
			s.runTrailers(d, k)
		}
	case st.stopped && st.stopAt == stBody:
		st.stopped = false
		buf := st.buf
		st.buf, st.buffering = nil, false
		s.data(d, k+1, buf, true)
	case st.stopped && st.stopAt == stTrailers:
		st.stopped = false
		f.trailOpen[d] = false
		if s.flushBuffered(f, d, k) {
			s.runTrailers(d, k+1)
		}
	case st.buffering:
		buf := st.buf
		st.buf, st.buffering = nil, false
		s.data(d, k+1, buf, false)
	}
}

// Terminals: the router (decode) and the client (encode).

func (s *Stream) terminalHeaders(d int) {
	if d == dec {
		s.upstreamSpace = UpstreamRequest{Headers: s.headers[dec].clone()}
		s.upstreamReq = &s.upstreamSpace
		s.callUpstream()
		if s.hdrEOS[dec] {
			s.requestEnded()
		}
		return
	}
	s.emitHeaders(s.headers[enc].clone(), s.hdrEOS[enc])
	if s.hdrEOS[enc] {
		s.finish()
	}
}

func (s *Stream) terminalData(d int, data []byte, eos bool) {
	if d == dec {
		if s.req.Sink == nil {
			s.upstreamReq.Body = append(s.upstreamReq.Body, data...)
		}
		if s.pipe != nil {
			s.pipe.write(data)
		}
		if eos {
			s.requestEnded()
		}
		return
	}
	s.emitData(data, eos)
	if eos {
		s.finish()
	}
}

func (s *Stream) terminalTrailers(d int) {
	if d == dec {
		s.upstreamReq.Trailers = s.trailers[dec].clone()
		s.requestEnded()
		return
	}
	s.emitTrailers(s.trailers[enc].clone())
	s.finish()
}

func headerValue(pairs []abi.Pair, key string) string {
	for _, p := range pairs {
		if p.Key == key {
			return p.Value
		}
	}
	return ""
}

// sendLocalReply is Envoy's sendLocalReply: before any response exists it
// runs through every encoder filter (the sender included); once the
// upstream response is being encoded it goes straight to the client
// (sendDirectLocalReply); once headers reached the client, the stream is
// reset.
func (s *Stream) sendLocalReply(lr *localReply) {
	if s.finished {
		return
	}
	if s.sentHeaders {
		s.reset("local reply after the response headers were sent")
		return
	}
	s.aborted[dec] = true
	if s.pipe != nil {
		s.pipe.close(nil, true)
	}
	if s.cancelUp != nil {
		s.cancelUp()
	}
	hs := []abi.Pair{{Key: ":status", Value: strconv.Itoa(lr.status)}}
	hasType := false
	for _, p := range lr.headers {
		k := strings.ToLower(p.Key)
		if k == "content-type" {
			hasType = true
		}
		hs = append(hs, abi.Pair{Key: k, Value: p.Value})
	}
	if len(lr.body) > 0 {
		if !hasType {
			hs = append(hs, abi.Pair{Key: "content-type", Value: "text/plain"})
		}
		hs = append(hs, abi.Pair{Key: "content-length", Value: strconv.Itoa(len(lr.body))})
	}
	s.result.LocalReplyBy, s.result.Details = lr.by, lr.details
	if s.encodeStarted {
		s.aborted[enc] = true
		// The direct reply replaces the response: response.code and the
		// access-log phase see it, not the upstream's.
		s.headers[enc] = newHeaderMap(hs)
		s.trailers[enc] = nil
		s.emitHeaders(hs, len(lr.body) == 0)
		if len(lr.body) > 0 {
			s.emitData(append([]byte(nil), lr.body...), true)
		}
		s.finish()
		return
	}
	s.encodeStarted = true
	s.headers[enc] = newHeaderMap(hs)
	s.hdrEOS[enc] = len(lr.body) == 0
	s.runHeaders(enc, 0)
	if len(lr.body) > 0 {
		s.data(enc, 0, append([]byte(nil), lr.body...), true)
	}
}

func (s *Stream) bufferLimit() int {
	switch {
	case s.req.BufferLimit > 0:
		return s.req.BufferLimit
	case s.host.opts.BufferLimit > 0:
		return s.host.opts.BufferLimit
	}
	return DefaultBufferLimit
}

// bodyTooLarge is Envoy's filter manager finding a buffered body over the
// limit: 413 for a request; 500 for a response whose headers have not
// reached the client, a reset for one whose have.
func (s *Stream) bodyTooLarge(d int) {
	if d == dec {
		s.sendLocalReply(&localReply{status: 413, body: []byte("Payload Too Large"), details: "request_payload_too_large", by: "connection_manager"})
		return
	}
	if s.sentHeaders {
		s.reset("response_payload_too_large")
		return
	}
	s.sendLocalReply(&localReply{status: 500, body: []byte("Internal Server Error"), details: "response_payload_too_large", by: "connection_manager"})
}

func (s *Stream) reset(reason string) {
	if s.finished {
		return
	}
	if s.req.Sink != nil {
		s.req.Sink.Reset(reason)
	}
	s.result.Reset = true
	if s.result.Details == "" || s.result.Details == "via_upstream" {
		s.result.Details = reason
	}
	s.finish()
}

// finish ends the stream: Envoy's HCM runs the access-log phase
// (proxy_on_log) for every filter, then destroys them (proxy_on_done,
// proxy_on_delete).
func (s *Stream) finish() {
	if s.finished {
		return
	}
	s.finished = true
	s.result.Flags = s.flags
	s.endFlow()
	s.w.untrack(s)
	s.aborted = [2]bool{true, true}
	s.host.clock.cancel(s.timeout)
	if s.pipe != nil {
		s.pipe.close(nil, true)
	}
	if s.cancelUp != nil {
		s.cancelUp()
	}
	s.result.Upstream = s.upstreamReq
	if !s.upstreamAsked {
		s.result.Upstream = nil
	}
	for _, f := range s.fs {
		if f.created && !f.vm.failed && f.vm.fn.log != nil {
			f.accessLog = true
			if _, ok := s.invoke(f, f.vm.fn.log, exLog, uint64(f.ctxID)); !ok {
				f.dead = true
			}
			f.accessLog = false
		}
	}
	for _, f := range s.fs {
		if !f.created {
			continue
		}
		if !f.vm.failed && f.vm.fn.done != nil {
			s.invoke(f, f.vm.fn.done, exDone, uint64(f.ctxID))
		}
		if !f.vm.failed && f.vm.fn.delete != nil {
			s.invoke(f, f.vm.fn.delete, exDelete, uint64(f.ctxID))
		}
		delete(f.vm.streams, f.ctxID)
		if f.vm.retired && len(f.vm.streams) == 0 {
			f.vm.mod.Close(context.Background())
		}
	}
	close(s.done)
}
