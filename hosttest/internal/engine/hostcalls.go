package engine

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/binary"
	"io"
	"math"
	"strings"
	"time"
	"unicode"

	"github.com/concierge-wasm/concierge/hosttest/internal/abi"
	"github.com/tetratelabs/wazero/api"
)

const (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

func vmFrom(ctx context.Context) *VM { return ctx.Value(vmCtxKey{}).(*VM) }

func u32(v uint64) uint32 { return uint32(v) }

// hostFn is a proxy-wasm host function: it returns the proxy_status_t.
type hostFn func(vm *VM, stack []uint64) abi.Status

func (h *Host) instantiateHostModules() error {
	b := h.runtime.NewHostModuleBuilder("env")
	def := func(name string, params []api.ValueType, fn hostFn) {
		isLog := name == "proxy_log"
		b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, _ api.Module, stack []uint64) {
			vm := vmFrom(ctx)
			var st abi.Status
			// Envoy refuses every proxy_* call but logging while the module
			// initialises and while it allocates (cpp-host exports.cc).
			if vm.phase != phaseNormal && !isLog {
				vm.host.log(LogEntry{Time: time.Now(), Level: LevelError, Filter: vm.plug.cfg.Name, Worker: vm.w.index,
					Message: "Attempted call to restricted proxy-wasm capability: " + name})
				st = abi.InternalFailure
			} else {
				st = fn(vm, stack)
			}
			vm.host.record(vm, name, uint32(st))
			stack[0] = uint64(st)
		}), params, []api.ValueType{i32}).Export(name)
	}
	p := func(n int) []api.ValueType {
		out := make([]api.ValueType, n)
		for i := range out {
			out[i] = i32
		}
		return out
	}

	def("proxy_log", p(3), hcLog)
	def("proxy_get_log_level", p(1), func(vm *VM, s []uint64) abi.Status {
		return okIf(vm.mem.WriteUint32Le(u32(s[0]), uint32(LevelInfo)))
	})
	def("proxy_get_current_time_nanoseconds", p(1), func(vm *VM, s []uint64) abi.Status {
		return okIf(vm.mem.WriteUint64Le(u32(s[0]), uint64(vm.host.clock.Now().UnixNano())))
	})
	def("proxy_set_tick_period_milliseconds", p(1), func(vm *VM, s []uint64) abi.Status {
		vm.plug.setTick(time.Duration(u32(s[0])) * time.Millisecond)
		return abi.OK
	})
	def("proxy_get_buffer_bytes", p(5), hcGetBuffer)
	def("proxy_set_buffer_bytes", p(5), hcSetBuffer)
	def("proxy_get_buffer_status", p(3), func(vm *VM, s []uint64) abi.Status {
		buf, _, st := vm.buffer(abi.BufferType(u32(s[0])))
		if st != abi.OK {
			return st
		}
		return okIf(vm.mem.WriteUint32Le(u32(s[1]), uint32(len(*buf))) && vm.mem.WriteUint32Le(u32(s[2]), 0))
	})
	def("proxy_get_header_map_pairs", p(3), hcGetMapPairs)
	def("proxy_set_header_map_pairs", p(3), hcSetMapPairs)
	def("proxy_get_header_map_value", p(5), hcGetMapValue)
	def("proxy_add_header_map_value", p(5), func(vm *VM, s []uint64) abi.Status { return hcEditMap(vm, s, mapAdd) })
	def("proxy_replace_header_map_value", p(5), func(vm *VM, s []uint64) abi.Status { return hcEditMap(vm, s, mapReplace) })
	def("proxy_remove_header_map_value", p(3), func(vm *VM, s []uint64) abi.Status { return hcEditMap(vm, s, mapRemove) })
	def("proxy_get_header_map_size", p(2), func(vm *VM, s []uint64) abi.Status {
		m, st := vm.headerMap(abi.MapType(u32(s[0])), false)
		if st != abi.OK {
			return st
		}
		n := 0
		if m != nil {
			n = m.byteSize()
		}
		return okIf(vm.mem.WriteUint32Le(u32(s[1]), uint32(n)))
	})
	def("proxy_continue_stream", p(1), hcContinueStream)
	def("proxy_close_stream", p(1), hcCloseStream)
	def("proxy_send_local_response", p(8), hcSendLocalResponse)
	def("proxy_get_status", p(3), hcGetStatus)
	def("proxy_http_call", p(10), hcHttpCall)
	def("proxy_set_shared_data", p(5), hcSetShared)
	def("proxy_get_shared_data", p(5), hcGetShared)
	def("proxy_register_shared_queue", p(3), hcRegisterQueue)
	def("proxy_resolve_shared_queue", p(5), hcResolveQueue)
	def("proxy_enqueue_shared_queue", p(3), hcEnqueue)
	def("proxy_dequeue_shared_queue", p(3), hcDequeue)
	def("proxy_define_metric", p(4), hcDefineMetric)
	def("proxy_increment_metric", []api.ValueType{i32, i64}, hcIncrementMetric)
	def("proxy_record_metric", []api.ValueType{i32, i64}, hcRecordMetric)
	def("proxy_get_metric", p(2), hcGetMetric)
	def("proxy_get_property", p(4), hcGetProperty)
	def("proxy_set_property", p(4), hcSetProperty)
	def("proxy_set_effective_context", p(1), hcSetEffectiveContext)
	def("proxy_done", nil, func(*VM, []uint64) abi.Status { return abi.NotFound })
	def("proxy_call_foreign_function", p(6), hcForeign)
	// gRPC exists in Envoy but hosttest has no gRPC upstreams: a module
	// importing it links, and its calls say so.
	for name, n := range map[string]int{"proxy_grpc_call": 12, "proxy_grpc_stream": 9, "proxy_grpc_send": 4, "proxy_grpc_cancel": 1, "proxy_grpc_close": 1} {
		def(name, p(n), func(*VM, []uint64) abi.Status { return abi.Unimplemented })
	}
	if _, err := b.Instantiate(h.ctx); err != nil {
		return err
	}
	return h.instantiateWASI()
}

func okIf(ok bool) abi.Status {
	if ok {
		return abi.OK
	}
	return abi.InvalidMemoryAccess
}

func hcLog(vm *VM, s []uint64) abi.Status {
	level := u32(s[0])
	if level > uint32(LevelCritical) {
		return abi.BadArgument
	}
	msg, ok := vm.readString(u32(s[1]), u32(s[2]))
	if !ok {
		return abi.InvalidMemoryAccess
	}
	vm.host.log(LogEntry{Time: time.Now(), Level: LogLevel(level), Filter: vm.plug.cfg.Name, Worker: vm.w.index, Message: msg})
	return abi.OK
}

// buffer finds a buffer the active context can reach.
func (vm *VM) buffer(t abi.BufferType) (buf *[]byte, writable bool, st abi.Status) {
	switch t {
	case abi.RequestBody, abi.ResponseBody:
		d := dec
		if t == abi.ResponseBody {
			d = enc
		}
		f := vm.active
		if f == nil || !(f.inBody[d] || f.dir[d].buffering) {
			return nil, false, abi.NotFound
		}
		return &f.dir[d].buf, true, abi.OK
	case abi.CallResponseBody:
		if vm.callResp == nil {
			return nil, false, abi.NotFound
		}
		return &vm.callResp.body, false, abi.OK
	case abi.VMConfiguration:
		c := vm.base.VMConfiguration
		return &c, false, abi.OK
	case abi.PluginConfiguration:
		if !vm.configOpen {
			return nil, false, abi.NotFound
		}
		c := vm.plug.cfg.Configuration
		return &c, false, abi.OK
	case abi.DownstreamData, abi.UpstreamData:
		return vm.connBuffer(t)
	case abi.GrpcCallMessage, abi.CallData:
		return nil, false, abi.NotFound
	}
	return nil, false, abi.BadArgument
}

func hcGetBuffer(vm *VM, s []uint64) abi.Status {
	buf, _, st := vm.buffer(abi.BufferType(u32(s[0])))
	if st != abi.OK {
		return st
	}
	start, max := uint64(u32(s[1])), uint64(u32(s[2]))
	if start+max > math.MaxUint32 {
		return abi.BadArgument
	}
	b := *buf
	if start >= uint64(len(b)) {
		return okIf(vm.copyOut(nil, u32(s[3]), u32(s[4])))
	}
	end := min(start+max, uint64(len(b)))
	return okIf(vm.copyOut(b[start:end], u32(s[3]), u32(s[4])))
}

// hcSetBuffer: (0,0) prepends, (0, >=len) replaces, start >= len appends;
// anything else is BAD_ARGUMENT, as in Envoy's Buffer::copyFrom rules.
func hcSetBuffer(vm *VM, s []uint64) abi.Status {
	buf, writable, st := vm.buffer(abi.BufferType(u32(s[0])))
	if st != abi.OK {
		return st
	}
	if !writable {
		return abi.BadArgument
	}
	start, size := u32(s[1]), u32(s[2])
	data, ok := vm.read(u32(s[3]), u32(s[4]))
	if !ok {
		return abi.InvalidMemoryAccess
	}
	b := *buf
	switch {
	case start == 0 && size == 0:
		*buf = append(data, b...)
	case start == 0 && int(size) >= len(b):
		*buf = data
	case int(start) >= len(b):
		*buf = append(append([]byte(nil), b...), data...)
	default:
		return abi.BadArgument
	}
	return abi.OK
}

// headerMap finds a header map the active context can reach. A nil map
// with OK means "exists but empty" (e.g. no trailers in the log phase).
func (vm *VM) headerMap(t abi.MapType, write bool) (*headerMap, abi.Status) {
	switch t {
	case abi.CallResponseHeaders, abi.CallResponseTrailers:
		if vm.callResp == nil || write {
			return nil, abi.BadArgument
		}
		if t == abi.CallResponseHeaders {
			return &headerMap{pairs: vm.callResp.headers}, abi.OK
		}
		return &headerMap{pairs: vm.callResp.trailers}, abi.OK
	case abi.RequestHeaders, abi.RequestTrailers, abi.ResponseHeaders, abi.ResponseTrailers:
	default:
		return nil, abi.BadArgument
	}
	f := vm.active
	if f == nil {
		return nil, abi.BadArgument
	}
	s := f.s
	d := dec
	if t == abi.ResponseHeaders || t == abi.ResponseTrailers {
		d = enc
	}
	trailers := t == abi.RequestTrailers || t == abi.ResponseTrailers
	if f.accessLog {
		if write {
			return nil, abi.BadArgument
		}
		if trailers {
			return s.trailers[d], abi.OK
		}
		return s.headers[d], abi.OK
	}
	if !trailers {
		if f.mapOpen[d] && s.headers[d] != nil {
			return s.headers[d], abi.OK
		}
		return nil, abi.BadArgument
	}
	if f.trailOpen[d] && s.trailers[d] != nil {
		return s.trailers[d], abi.OK
	}
	// At end of stream a body callback may add trailers that did not exist.
	if f.inBody[d] && f.bodyEOS[d] && write {
		if s.trailers[d] == nil {
			s.trailers[d] = &headerMap{}
		}
		f.addedTrailers[d] = true
		return s.trailers[d], abi.OK
	}
	return nil, abi.BadArgument
}

func hcGetMapPairs(vm *VM, s []uint64) abi.Status {
	m, st := vm.headerMap(abi.MapType(u32(s[0])), false)
	if st != abi.OK || m == nil {
		return okIf(vm.copyOut(nil, u32(s[1]), u32(s[2])))
	}
	return okIf(vm.copyOut(abi.EncodePairs(m.pairs), u32(s[1]), u32(s[2])))
}

func hcSetMapPairs(vm *VM, s []uint64) abi.Status {
	m, st := vm.headerMap(abi.MapType(u32(s[0])), true)
	if st != abi.OK {
		return st
	}
	data, ok := vm.read(u32(s[1]), u32(s[2]))
	if !ok {
		return abi.InvalidMemoryAccess
	}
	pairs, _ := abi.DecodePairs(data) // malformed input is an empty map, as in Envoy
	m.pairs = m.pairs[:0]
	for _, p := range pairs {
		m.add(strings.ToLower(p.Key), p.Value)
	}
	return abi.OK
}

func hcGetMapValue(vm *VM, s []uint64) abi.Status {
	t := abi.MapType(u32(s[0]))
	m, st := vm.headerMap(t, false)
	if st != abi.OK {
		return st
	}
	if m == nil {
		return abi.NotFound
	}
	key, ok := vm.view(u32(s[1]), u32(s[2]))
	if !ok {
		return abi.InvalidMemoryAccess
	}
	var v string
	var found bool
	if asciiKey(key) {
		v, found = m.getASCII(key)
	} else {
		v, found = m.get(strings.ToLower(string(key)))
	}
	if !found {
		return abi.NotFound
	}
	return okIf(vm.copyOutString(v, u32(s[3]), u32(s[4])))
}

type mapEdit int

const (
	mapAdd mapEdit = iota
	mapReplace
	mapRemove
)

func hcEditMap(vm *VM, s []uint64, op mapEdit) abi.Status {
	m, st := vm.headerMap(abi.MapType(u32(s[0])), true)
	if st != abi.OK {
		return st
	}
	key, ok := vm.view(u32(s[1]), u32(s[2]))
	if !ok {
		return abi.InvalidMemoryAccess
	}
	if op == mapRemove {
		if asciiKey(key) {
			m.removeASCII(key)
		} else {
			m.remove(strings.ToLower(string(key)))
		}
		return abi.OK
	}
	val, ok := vm.view(u32(s[3]), u32(s[4]))
	if !ok {
		return abi.InvalidMemoryAccess
	}
	k, v := keyValue(key, val)
	if op == mapAdd {
		m.add(k, v)
	} else {
		m.replace(k, v)
	}
	return abi.OK
}

// touch queues a deferred action on f when it was requested from outside
// f's own callback (a tick, a callout response, another stream).
func (vm *VM) touch(f *filterStream) {
	if f.inCallback || f.touched {
		return
	}
	f.touched = true
	vm.touched = append(vm.touched, f)
}

func hcContinueStream(vm *VM, s []uint64) abi.Status {
	t := abi.StreamType(u32(s[0]))
	switch t {
	case abi.StreamRequest, abi.StreamResponse:
	case abi.StreamDownstream:
		return vm.connContinue()
	case abi.StreamUpstream:
		return abi.Unimplemented
	default:
		return abi.BadArgument
	}
	f := vm.active
	if f == nil {
		return abi.OK // a root context has no stream: Envoy does nothing
	}
	d := dec
	if t == abi.StreamResponse {
		d = enc
	}
	f.dir[d].pendingContinue = true
	vm.touch(f)
	return abi.OK
}

func hcCloseStream(vm *VM, s []uint64) abi.Status {
	t := abi.StreamType(u32(s[0]))
	if t > abi.StreamUpstream {
		return abi.BadArgument
	}
	if vm.active == nil && vm.conn != nil {
		return vm.connClose()
	}
	f := vm.active
	if f == nil {
		return abi.OK
	}
	f.closeAsked = true
	vm.touch(f)
	return abi.OK
}

func hcSendLocalResponse(vm *VM, s []uint64) abi.Status {
	f := vm.active
	if f == nil {
		return abi.NotFound
	}
	details, ok1 := vm.readString(u32(s[1]), u32(s[2]))
	body, ok2 := vm.read(u32(s[3]), u32(s[4]))
	hdrs, ok3 := vm.read(u32(s[5]), u32(s[6]))
	if !ok1 || !ok2 || !ok3 {
		return abi.InvalidMemoryAccess
	}
	pairs, _ := abi.DecodePairs(hdrs)
	// Envoy replaces whitespace in details (replaceAllEmptySpace) so they
	// stay one token in access logs.
	details = strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return '_'
		}
		return r
	}, details)
	f.local = &localReply{status: int(u32(s[0])), body: body, headers: pairs, details: details, by: f.name()}
	vm.touch(f)
	return abi.OK
}

func hcGetStatus(vm *VM, s []uint64) abi.Status {
	if vm.callResp == nil && vm.callback != "proxy_on_http_call_response" {
		return abi.NotFound
	}
	code, msg := uint32(0), ""
	if vm.callResp == nil {
		code, msg = 11, "reset" // BrokenConnection
	}
	if !vm.mem.WriteUint32Le(u32(s[0]), code) {
		return abi.InvalidMemoryAccess
	}
	return okIf(vm.copyOut([]byte(msg), u32(s[1]), u32(s[2])))
}

func hcHttpCall(vm *VM, s []uint64) abi.Status {
	cluster, ok := vm.readString(u32(s[0]), u32(s[1]))
	hb, ok2 := vm.read(u32(s[2]), u32(s[3]))
	body, ok3 := vm.read(u32(s[4]), u32(s[5]))
	tb, ok4 := vm.read(u32(s[6]), u32(s[7]))
	if !ok || !ok2 || !ok3 || !ok4 {
		return abi.InvalidMemoryAccess
	}
	headers, _ := abi.DecodePairs(hb)
	trailers, _ := abi.DecodePairs(tb)
	token, st := vm.httpCall(cluster, headers, body, trailers, u32(s[8]))
	if st != abi.OK {
		return st
	}
	return okIf(vm.mem.WriteUint32Le(u32(s[9]), token))
}

func hcSetShared(vm *VM, s []uint64) abi.Status {
	key, ok := vm.readString(u32(s[0]), u32(s[1]))
	val, ok2 := vm.read(u32(s[2]), u32(s[3]))
	if !ok || !ok2 {
		return abi.InvalidMemoryAccess
	}
	return vm.host.shared.set(vm.base.VMID, key, val, u32(s[4]))
}

func hcGetShared(vm *VM, s []uint64) abi.Status {
	key, ok := vm.readString(u32(s[0]), u32(s[1]))
	if !ok {
		return abi.InvalidMemoryAccess
	}
	val, cas, st := vm.host.shared.get(vm.base.VMID, key)
	if st != abi.OK {
		return st
	}
	if !vm.copyOut(val, u32(s[2]), u32(s[3])) {
		return abi.InvalidMemoryAccess
	}
	return okIf(vm.mem.WriteUint32Le(u32(s[4]), cas))
}

func hcRegisterQueue(vm *VM, s []uint64) abi.Status {
	name, ok := vm.readString(u32(s[0]), u32(s[1]))
	if !ok {
		return abi.InvalidMemoryAccess
	}
	return okIf(vm.mem.WriteUint32Le(u32(s[2]), vm.host.registerQueue(vm, name)))
}

func hcResolveQueue(vm *VM, s []uint64) abi.Status {
	vmID, ok := vm.readString(u32(s[0]), u32(s[1]))
	name, ok2 := vm.readString(u32(s[2]), u32(s[3]))
	if !ok || !ok2 {
		return abi.InvalidMemoryAccess
	}
	if vmID == "" {
		vmID = vm.base.VMID
	}
	id, found := vm.host.resolveQueue(vmID, name)
	if !found {
		return abi.NotFound
	}
	return okIf(vm.mem.WriteUint32Le(u32(s[4]), id))
}

func hcEnqueue(vm *VM, s []uint64) abi.Status {
	data, ok := vm.read(u32(s[1]), u32(s[2]))
	if !ok {
		return abi.InvalidMemoryAccess
	}
	return vm.host.enqueue(u32(s[0]), data)
}

func hcDequeue(vm *VM, s []uint64) abi.Status {
	data, st := vm.host.dequeue(u32(s[0]))
	if st != abi.OK {
		return st
	}
	return okIf(vm.copyOut(data, u32(s[1]), u32(s[2])))
}

func hcDefineMetric(vm *VM, s []uint64) abi.Status {
	t := abi.MetricType(u32(s[0]))
	if t > abi.Histogram {
		return abi.BadArgument
	}
	name, ok := vm.readString(u32(s[1]), u32(s[2]))
	if !ok {
		return abi.InvalidMemoryAccess
	}
	id, seen := vm.metricNames[name]
	if !seen {
		// Envoy encodes the type in the id's low two bits.
		vm.nextMetric += 4
		id = vm.nextMetric | uint32(t)
		vm.metricNames[name] = id
		vm.metricIDs[id] = vm.host.metrics.define(name, t)
	}
	return okIf(vm.mem.WriteUint32Le(u32(s[3]), id))
}

func hcIncrementMetric(vm *VM, s []uint64) abi.Status {
	m, ok := vm.metricIDs[u32(s[0])]
	if !ok {
		return abi.NotFound
	}
	delta := int64(s[1])
	st := &vm.host.metrics
	st.mu.Lock()
	defer st.mu.Unlock()
	switch m.typ {
	case abi.Counter:
		if delta <= 0 {
			return abi.BadArgument
		}
		m.value += delta
	case abi.Gauge:
		m.value += delta
	default:
		return abi.BadArgument
	}
	return abi.OK
}

func hcRecordMetric(vm *VM, s []uint64) abi.Status {
	m, ok := vm.metricIDs[u32(s[0])]
	if !ok {
		return abi.NotFound
	}
	v := int64(s[1])
	st := &vm.host.metrics
	st.mu.Lock()
	defer st.mu.Unlock()
	switch m.typ {
	case abi.Counter:
		m.value += v // Envoy adds to a counter on record
	case abi.Gauge:
		m.value = v
	case abi.Histogram:
		m.count++
		m.sum += uint64(v)
		if len(m.samples) < maxHistogramSamples {
			m.samples = append(m.samples, uint64(v))
		}
	}
	return abi.OK
}

func hcGetMetric(vm *VM, s []uint64) abi.Status {
	m, ok := vm.metricIDs[u32(s[0])]
	if !ok {
		return abi.NotFound
	}
	if m.typ == abi.Histogram {
		return abi.BadArgument
	}
	vm.host.metrics.mu.Lock()
	v := m.value
	vm.host.metrics.mu.Unlock()
	return okIf(vm.mem.WriteUint64Le(u32(s[1]), uint64(v)))
}

func hcSetEffectiveContext(vm *VM, s []uint64) abi.Status {
	id := u32(s[0])
	if p := vm.rootPlugin(id); p != nil {
		vm.enterRoot(p)
		return abi.OK
	}
	f, ok := vm.streams[id]
	if !ok {
		if vm.setEffectiveConn(id) {
			return abi.OK
		}
		return abi.BadArgument
	}
	vm.plug, vm.active, vm.conn, vm.activeID = f.plug, f, nil, id
	return abi.OK
}

func hcForeign(vm *VM, s []uint64) abi.Status {
	name, ok := vm.readString(u32(s[0]), u32(s[1]))
	args, ok2 := vm.read(u32(s[2]), u32(s[3]))
	if !ok || !ok2 {
		return abi.InvalidMemoryAccess
	}
	var out []byte
	switch name {
	case "compress":
		var b bytes.Buffer
		w := zlib.NewWriter(&b)
		w.Write(args)
		w.Close()
		out = b.Bytes()
	case "uncompress":
		r, err := zlib.NewReader(bytes.NewReader(args))
		if err != nil {
			return abi.SerializationFailed
		}
		out, err = io.ReadAll(io.LimitReader(r, 64<<20))
		if err != nil {
			return abi.SerializationFailed
		}
	case "declare_property", "set_envoy_filter_state":
		if vm.active == nil && name == "set_envoy_filter_state" {
			return abi.NotFound
		}
	default:
		return abi.NotFound
	}
	return okIf(vm.copyOut(out, u32(s[4]), u32(s[5])))
}

func le64(v uint64) []byte {
	b := make([]byte, 8)
	binary.LittleEndian.PutUint64(b, v)
	return b
}
