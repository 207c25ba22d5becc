package main

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

// action is one "verb" or "verb:arg" item of the request script.
type action struct {
	verb, arg string
}

func (a action) String() string {
	if a.arg == "" {
		return a.verb
	}
	return a.verb + ":" + a.arg
}

// knownVerbs is only used to report typos; each phase handler below picks the
// verbs it acts on and skips the rest.
var knownVerbs = map[string]bool{}

func init() {
	for _, v := range strings.Fields(`
		add-req set-req del-req echo-req-headers local local-continue pause-req
		call call-bad timeout authority set-prop get-prop get-prop1 get-prop-segs shared-inc shared-set shared-get
		enqueue metric gauge hist log stdout stderr panic-req sleep block alloc
		foreign time rand env effective
		add-resp set-resp del-resp set-status local-resp pause-resp get-prop-resp panic-resp
		buffer-req req-body-upper req-body-append req-body-prepend add-req-trailer echo-req-trailers
		buffer-resp resp-body-upper resp-body-append resp-body-prepend resp-body-peek add-resp-trailer
		panic-log`) {
		knownVerbs[v] = true
	}
}

func parseActions(script string) []action {
	var out []action
	for _, f := range strings.Fields(script) {
		verb, arg, _ := strings.Cut(f, ":")
		if !knownVerbs[verb] {
			proxywasm.LogErrorf("unknown verb %s", verb)
			continue
		}
		out = append(out, action{verb, arg})
	}
	return out
}

// defaultCallTimeoutMs is used by call/call-bad unless the script has timeout:N.
const defaultCallTimeoutMs = 5000

// maxCasRetries bounds the shared-inc compare-and-swap loop.
const maxCasRetries = 16

type httpContext struct {
	types.DefaultHttpContext
	id     uint32
	plugin *pluginContext
	prefix string // "x-<name>": the script header and the prefix of every result header

	actions      []action
	saw          []string // phases seen, consecutive repeats collapsed
	reqHeaders   string   // echo-req-headers result, sent back at response headers
	pendingCalls int      // dispatched calls whose callback has not run yet
	reqBodySeen  bool     // a request body callback already ran (for prepend)
	respBodySeen bool
	respChunks   []string // resp-body-peek sizes
	localResp    bool     // local-resp already sent; never send it twice
}

func (h *httpContext) phase(name string) {
	if n := len(h.saw); n == 0 || h.saw[n-1] != name {
		h.saw = append(h.saw, name)
	}
}

func (h *httpContext) has(verb string) bool {
	for _, a := range h.actions {
		if a.verb == verb {
			return true
		}
	}
	return false
}

// check logs a failed host call of a verb that has no result header.
func (h *httpContext) check(a action, err error) {
	if err != nil {
		proxywasm.LogErrorf("%s failed: %v", a, err)
	}
}

// addReq and addResp add result headers "x-<name>-<suffix>". They always add
// (never replace) so a repeated verb leaves one header per run.
func (h *httpContext) addReq(suffix, value string) {
	h.check(action{"add-req", suffix}, proxywasm.AddHttpRequestHeader(h.prefix+"-"+suffix, value))
}

func (h *httpContext) addResp(suffix, value string) {
	h.check(action{"add-resp", suffix}, proxywasm.AddHttpResponseHeader(h.prefix+"-"+suffix, value))
}

// errString is how errors appear in result headers.
func errString(err error) string {
	if errors.Is(err, types.ErrorStatusNotFound) {
		return "NOTFOUND"
	}
	return err.Error()
}

// printable returns b as a string when it is printable ASCII (so it can be a
// header value) and "hex:<lowercase hex>" otherwise.
func printable(b []byte) string {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return "hex:" + hex.EncodeToString(b)
		}
	}
	return string(b)
}

func joinPairs(kv [][2]string) string {
	parts := make([]string, len(kv))
	for i, p := range kv {
		parts[i] = p[0] + "=" + p[1]
	}
	return strings.Join(parts, ";")
}

// ---- request headers: the script is read here and most verbs run here ----

func (h *httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	h.phase("req-headers")
	if script, err := proxywasm.GetHttpRequestHeader(h.prefix); err == nil {
		h.actions = parseActions(script)
	}
	pause := false
	for _, a := range h.actions {
		if h.requestHeadersAction(a) {
			pause = true
		}
	}
	if pause {
		return types.ActionPause
	}
	return types.ActionContinue
}

// requestHeadersAction runs one verb and reports whether it wants the
// request headers paused. Verbs of other phases are ignored here.
func (h *httpContext) requestHeadersAction(a action) (pause bool) {
	k, v, _ := strings.Cut(a.arg, "=")
	switch a.verb {
	case "add-req":
		h.check(a, proxywasm.AddHttpRequestHeader(k, v))
	case "set-req":
		h.check(a, proxywasm.ReplaceHttpRequestHeader(k, v))
	case "del-req":
		h.check(a, proxywasm.RemoveHttpRequestHeader(a.arg))
	case "echo-req-headers":
		hs, err := proxywasm.GetHttpRequestHeaders()
		if err != nil {
			h.reqHeaders = errString(err)
		} else {
			h.reqHeaders = joinPairs(hs)
		}
	case "local":
		return h.sendLocal(a) // pausing after a failed send would hang the stream
	case "local-continue":
		h.sendLocal(a) // returning Continue on purpose: the host must still stop
	case "pause-req":
		h.plugin.paused = append(h.plugin.paused, pausedStream{id: h.id})
		return true
	case "call":
		return h.dispatch(a, true)
	case "call-bad":
		return h.dispatch(a, false)
	case "set-prop":
		if err := proxywasm.SetProperty([]string{k}, []byte(v)); err != nil {
			h.addReq("prop-error", errString(err))
		}
	case "get-prop":
		h.addReq("prop-"+a.arg, getProp(a.arg))
	case "get-prop1":
		h.addReq("prop-"+a.arg, getPropSegments([]string{a.arg}))
	case "get-prop-segs":
		// '/'-separated segments, for segments with dots in them
		// (filter_metadata keys such as envoy.filters.http.wasm).
		h.addReq("prop-"+strings.ReplaceAll(a.arg, "/", "."), getPropSegments(strings.Split(a.arg, "/")))
	case "shared-inc":
		h.sharedInc(a.arg)
	case "shared-set":
		h.addReq("set-result", sharedSet(a.arg))
	case "shared-get":
		val, cas, err := proxywasm.GetSharedData(a.arg)
		if err != nil {
			h.addReq("get", errString(err))
		} else {
			h.addReq("get", printable(val)+"/"+strconv.FormatUint(uint64(cas), 10))
		}
	case "enqueue":
		if err := enqueue(k, v); err != nil {
			h.addReq("queue-error", errString(err))
		}
	case "metric", "gauge", "hist":
		h.metric(a)
	case "log":
		level, msg, _ := strings.Cut(a.arg, ":")
		logAt(level, msg)
	case "stdout":
		fmt.Fprintln(os.Stdout, a.arg)
	case "stderr":
		fmt.Fprintln(os.Stderr, a.arg)
	case "panic-req":
		panic("probe " + h.plugin.cfg.name + ": panic-req")
	case "sleep":
		ms, _ := strconv.Atoi(a.arg)
		time.Sleep(time.Duration(ms) * time.Millisecond) // needs WASI poll_oneoff
	case "block":
		<-make(chan struct{}) // no other goroutine: the Go runtime reports a deadlock and exits
	case "alloc":
		kib, _ := strconv.Atoi(a.arg)
		allocGarbage(kib)
	case "foreign":
		ret, err := proxywasm.CallForeignFunction(a.arg, nil)
		if err != nil {
			h.addReq("foreign", errString(err))
		} else {
			h.addReq("foreign", printable(ret))
		}
	case "time":
		h.addReq("now", strconv.FormatInt(time.Now().UnixNano(), 10))
		h.addReq("mono", strconv.FormatInt(time.Since(h.plugin.start).Nanoseconds(), 10))
	case "rand":
		b := make([]byte, 8)
		// WASI random_get directly: crypto/rand arms a runtime timer, which
		// makes every later GC poll, and Envoy 1.33 refuses poll_oneoff.
		if randomGet(&b[0], uint32(len(b))) != 0 {
			proxywasm.LogError("rand: random_get failed")
		}
		h.addReq("rand", hex.EncodeToString(b))
	case "env":
		h.addReq("env", os.Getenv(a.arg))
	case "effective":
		h.effective(a.arg)
	}
	return false
}

// sendLocal handles local, local-continue and local-resp: arg is CODE or
// CODE:DETAILS. It reports whether the host accepted the reply.
func (h *httpContext) sendLocal(a action) bool {
	codeStr, details, _ := strings.Cut(a.arg, ":")
	code, err := strconv.ParseUint(codeStr, 10, 32)
	if err != nil {
		proxywasm.LogErrorf("%s failed: bad status code", a)
		return false
	}
	name := h.plugin.cfg.name
	headers := [][2]string{{"x-local-by", name}}
	body := []byte("denied by " + name)
	if details == "" {
		err = proxywasm.SendHttpResponse(uint32(code), headers, body, -1)
	} else {
		err = sendLocalResponseWithDetails(uint32(code), details, headers, body, -1)
	}
	h.check(a, err)
	return err == nil
}

// dispatch sends GET to the cluster and pauses until the callback resumes.
// call-bad (withPath false) omits :path, which a host must reject.
func (h *httpContext) dispatch(a action, withPath bool) (pause bool) {
	cluster, path, _ := strings.Cut(a.arg, ":")
	if path == "" {
		path = "/"
	}
	headers := [][2]string{{":method", "GET"}}
	if withPath {
		headers = append(headers, [2]string{":path", path})
	}
	headers = append(headers, [2]string{":authority", h.callAuthority(cluster)})

	// Count the call before dispatching, so a callback that somehow runs
	// before DispatchHttpCall returns still sees it as pending.
	h.pendingCalls++
	if _, err := proxywasm.DispatchHttpCall(cluster, headers, nil, nil, h.callTimeout(), h.onCallResponse); err != nil {
		h.pendingCalls--
		h.addReq("call-error", errString(err))
		return false
	}
	return true
}

// callAuthority is the :authority of a callout: the verb "authority:<v>"
// (v may be empty), else the cluster's name.
func (h *httpContext) callAuthority(cluster string) string {
	for _, a := range h.actions {
		if a.verb == "authority" {
			return a.arg
		}
	}
	return cluster
}

func (h *httpContext) callTimeout() uint32 {
	for _, a := range h.actions {
		if a.verb == "timeout" {
			if ms, err := strconv.ParseUint(a.arg, 10, 32); err == nil {
				return uint32(ms)
			}
			proxywasm.LogErrorf("%s: bad timeout, using %d", a, defaultCallTimeoutMs)
		}
	}
	return defaultCallTimeoutMs
}

// onCallResponse records the call result on the (paused) request and
// resumes it once every call of this request has answered.
func (h *httpContext) onCallResponse(numHeaders, bodySize, _ int) {
	status := "reset" // the host reports a failed call with no headers
	if numHeaders > 0 {
		hs, err := proxywasm.GetHttpCallResponseHeaders()
		if err != nil {
			status = errString(err)
		} else {
			status = ""
			for _, kv := range hs {
				if kv[0] == ":status" {
					status = kv[1]
				}
			}
		}
	}
	body := ""
	if bodySize > 0 {
		b, err := proxywasm.GetHttpCallResponseBody(0, min(bodySize, 100))
		if err != nil {
			body = errString(err)
		} else {
			body = printable(b)
		}
	}
	h.addReq("call-status", status)
	h.addReq("call-body-len", strconv.Itoa(bodySize))
	h.addReq("call-body", body)

	h.pendingCalls--
	if h.pendingCalls == 0 {
		h.check(action{"call", "resume"}, proxywasm.ResumeHttpRequest())
	}
}

// getProp reads a '.'-separated property path for get-prop/get-prop-resp.
func getProp(path string) string { return getPropSegments(strings.Split(path, ".")) }

func getPropSegments(path []string) string {
	val, err := proxywasm.GetProperty(path)
	if err != nil {
		return errString(err)
	}
	return printable(val)
}

// sharedInc increments a decimal counter with compare-and-swap, retrying on
// CAS mismatch (another VM wrote in between).
func (h *httpContext) sharedInc(key string) {
	retries := 0
	defer func() { h.addReq("cas-retries", strconv.Itoa(retries)) }()
	for {
		n, cas := 0, uint32(0) // a missing key starts at 0, written with cas 0
		val, c, err := proxywasm.GetSharedData(key)
		if err != nil && !errors.Is(err, types.ErrorStatusNotFound) {
			h.addReq("shared-error", errString(err))
			return
		}
		if err == nil {
			if n, err = strconv.Atoi(string(val)); err != nil {
				h.addReq("shared-error", "not a number: "+printable(val))
				return
			}
			cas = c
		}
		err = proxywasm.SetSharedData(key, []byte(strconv.Itoa(n+1)), cas)
		switch {
		case err == nil:
			h.addReq("shared", strconv.Itoa(n+1))
			return
		case !errors.Is(err, types.ErrorStatusCasMismatch):
			h.addReq("shared-error", errString(err))
			return
		case retries == maxCasRetries:
			h.addReq("shared-error", "cas")
			return
		}
		retries++
	}
}

// sharedSet parses KEY=VALUE:CAS (the last ':' separates the cas).
func sharedSet(arg string) string {
	key, rest, _ := strings.Cut(arg, "=")
	i := strings.LastIndexByte(rest, ':')
	if i < 0 {
		return "bad arg"
	}
	cas, err := strconv.ParseUint(rest[i+1:], 10, 32)
	if err != nil {
		return "bad cas"
	}
	if err := proxywasm.SetSharedData(key, []byte(rest[:i]), uint32(cas)); err != nil {
		return errString(err)
	}
	return "ok"
}

func enqueue(queue, msg string) error {
	if msg == "" {
		// The SDK indexes msg[0] and would panic on an empty message.
		return errors.New("empty message")
	}
	id, err := proxywasm.ResolveSharedQueue("", queue) // "" = this VM's vm_id
	if err != nil {
		return err
	}
	return proxywasm.EnqueueSharedQueue(id, []byte(msg))
}

func (h *httpContext) metric(a action) {
	p := h.plugin
	if !p.cfg.metrics {
		// The metric ids would be 0; the SDK panics when the host rejects them.
		proxywasm.LogErrorf("%s failed: metrics are not enabled in the plugin config", a)
		return
	}
	switch a.verb {
	case "metric": // the argument is ignored
		p.requests.Increment(1)
	case "gauge": // +N or -N
		n, err := strconv.ParseInt(a.arg, 10, 64)
		if err != nil {
			proxywasm.LogErrorf("%s failed: bad number", a)
			return
		}
		p.inflight.Add(n)
	case "hist":
		n, err := strconv.ParseUint(a.arg, 10, 64)
		if err != nil {
			proxywasm.LogErrorf("%s failed: bad number", a)
			return
		}
		p.size.Record(n)
	}
}

func logAt(level, msg string) {
	switch level {
	case "trace":
		proxywasm.LogTrace(msg)
	case "debug":
		proxywasm.LogDebug(msg)
	case "info":
		proxywasm.LogInfo(msg)
	case "warn":
		proxywasm.LogWarn(msg)
	case "error":
		proxywasm.LogError(msg)
	case "critical":
		proxywasm.LogCritical(msg)
	default:
		proxywasm.LogErrorf("unknown log level %s", level)
	}
}

// effective switches the effective context to ID, then back to this stream
// so that the result header (and later verbs) still land on this request.
func (h *httpContext) effective(arg string) {
	id, err := strconv.ParseUint(arg, 10, 32)
	if err != nil {
		h.addReq("effective", "bad id")
		return
	}
	res := "ok"
	if err := proxywasm.SetEffectiveContext(uint32(id)); err != nil {
		res = errString(err)
	}
	h.check(action{"effective", "restore"}, proxywasm.SetEffectiveContext(h.id))
	h.addReq("effective", res)
}

// sink keeps allocGarbage's result reachable so the work is not optimised away.
var sink uint64

// allocGarbage allocates about kib KiB spread over a few slices and a map.
func allocGarbage(kib int) {
	n := kib * 1024
	var sum uint64
	for _, size := range []int{n / 2, n / 4, n - n/2 - n/4} {
		b := make([]byte, size) // variable size: always a heap allocation
		for i := range b {
			b[i] = byte(i)
		}
		for _, c := range b {
			sum = sum*31 + uint64(c)
		}
	}
	m := make(map[int]uint64, kib)
	for i := 0; i < kib; i++ {
		m[i] = uint64(i) ^ sum
	}
	for _, v := range m {
		sum += v
	}
	sink = sum
}

// ---- request body and trailers ----

// bodyOps lets the request and response share the body-editing code.
type bodyOps struct {
	dir     string // "req" or "resp": verbs are <dir>-body-upper etc.
	get     func(start, maxSize int) ([]byte, error)
	replace func([]byte) error
	append  func([]byte) error
	prepend func([]byte) error
}

var (
	reqBody = bodyOps{"req", proxywasm.GetHttpRequestBody, proxywasm.ReplaceHttpRequestBody,
		proxywasm.AppendHttpRequestBody, proxywasm.PrependHttpRequestBody}
	respBody = bodyOps{"resp", proxywasm.GetHttpResponseBody, proxywasm.ReplaceHttpResponseBody,
		proxywasm.AppendHttpResponseBody, proxywasm.PrependHttpResponseBody}
)

// editBody applies the body verbs in script order to the current body buffer
// of size bytes. Prepend only applies to the first buffer and append only to
// the last one, so that streamed bodies get them once; upper applies to
// every buffer it is given.
func (h *httpContext) editBody(ops bodyOps, size int, first, last bool) {
	for _, a := range h.actions {
		switch a.verb {
		case ops.dir + "-body-upper":
			if size == 0 {
				continue
			}
			b, err := ops.get(0, size)
			if err != nil {
				h.check(a, err)
				continue
			}
			up := bytes.ToUpper(b)
			size = len(up)
			h.check(a, ops.replace(up))
		case ops.dir + "-body-append":
			if last {
				size += len(a.arg)
				h.check(a, ops.append([]byte(a.arg)))
			}
		case ops.dir + "-body-prepend":
			if first {
				size += len(a.arg)
				h.check(a, ops.prepend([]byte(a.arg)))
			}
		}
	}
}

// addTrailers runs add-req-trailer / add-resp-trailer.
func (h *httpContext) addTrailers(verb string, add func(k, v string) error) {
	for _, a := range h.actions {
		if a.verb == verb {
			k, v, _ := strings.Cut(a.arg, "=")
			h.check(a, add(k, v))
		}
	}
}

func (h *httpContext) OnHttpRequestBody(size int, eos bool) types.Action {
	h.phase("req-body")
	first := !h.reqBodySeen
	h.reqBodySeen = true
	if h.has("buffer-req") {
		if !eos {
			return types.ActionPause // keep buffering; the host calls again with more data
		}
		proxywasm.LogInfof("req body size=%d", size)
		first = true // the buffered body is one buffer
	}
	h.editBody(reqBody, size, first, eos)
	if eos {
		h.addTrailers("add-req-trailer", proxywasm.AddHttpRequestTrailer)
	}
	return types.ActionContinue
}

func (h *httpContext) OnHttpRequestTrailers(int) types.Action {
	h.phase("req-trailers")
	if h.has("echo-req-trailers") {
		ts, err := proxywasm.GetHttpRequestTrailers()
		if err != nil {
			proxywasm.LogInfof("req trailers=%s", errString(err))
		} else {
			proxywasm.LogInfof("req trailers=%s", joinPairs(ts))
		}
	}
	// The body never saw end of stream when trailers exist, so add here.
	h.addTrailers("add-req-trailer", proxywasm.AddHttpRequestTrailer)
	return types.ActionContinue
}

// ---- response ----

func (h *httpContext) OnHttpResponseHeaders(int, bool) types.Action {
	h.phase("resp-headers")
	pause := false
	for _, a := range h.actions {
		k, v, _ := strings.Cut(a.arg, "=")
		switch a.verb {
		case "add-resp":
			h.check(a, proxywasm.AddHttpResponseHeader(k, v))
		case "set-resp":
			h.check(a, proxywasm.ReplaceHttpResponseHeader(k, v))
		case "del-resp":
			h.check(a, proxywasm.RemoveHttpResponseHeader(a.arg))
		case "set-status":
			h.check(a, proxywasm.ReplaceHttpResponseHeader(":status", a.arg))
		case "echo-req-headers":
			h.addResp("req-headers", h.reqHeaders)
		case "get-prop-resp":
			h.addResp("prop-"+a.arg, getProp(a.arg))
		case "local-resp":
			// The local reply's own headers may come back through this
			// callback; sending again would loop.
			if !h.localResp {
				h.localResp = true
				if h.sendLocal(a) {
					pause = true
				}
			}
		case "pause-resp":
			h.plugin.paused = append(h.plugin.paused, pausedStream{id: h.id, response: true})
			pause = true
		case "panic-resp":
			panic("probe " + h.plugin.cfg.name + ": panic-resp")
		}
	}
	h.addResp("saw", strings.Join(h.saw, ","))
	if pause {
		return types.ActionPause
	}
	return types.ActionContinue
}

func (h *httpContext) OnHttpResponseBody(size int, eos bool) types.Action {
	h.phase("resp-body")
	first := !h.respBodySeen
	h.respBodySeen = true
	peek := h.has("resp-body-peek")
	if peek {
		h.respChunks = append(h.respChunks, strconv.Itoa(size))
	}
	if h.has("buffer-resp") {
		if !eos {
			return types.ActionPause
		}
		proxywasm.LogInfof("resp body size=%d", size)
		first = true
	}
	if peek && eos {
		proxywasm.LogInfof("resp body chunks=%s eos", strings.Join(h.respChunks, ","))
	}
	h.editBody(respBody, size, first, eos)
	if eos {
		h.addTrailers("add-resp-trailer", proxywasm.AddHttpResponseTrailer)
	}
	return types.ActionContinue
}

func (h *httpContext) OnHttpResponseTrailers(int) types.Action {
	h.phase("resp-trailers")
	h.addTrailers("add-resp-trailer", proxywasm.AddHttpResponseTrailer)
	return types.ActionContinue
}

func (h *httpContext) OnHttpStreamDone() {
	h.plugin.forget(h.id)
	proxywasm.LogInfof("done %s ctx=%d", h.plugin.cfg.name, h.id)
	if h.has("panic-log") {
		panic("probe " + h.plugin.cfg.name + ": panic-log")
	}
}
