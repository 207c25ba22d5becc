package engine

import (
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/concierge-wasm/concierge/hosttest/internal/build"
)

func startTCPProbe(t testing.TB, config string) *Host {
	t.Helper()
	path, err := build.New(build.DefaultCacheDir()).Build("../../testdata/tcpprobe")
	if err != nil {
		t.Fatal(err)
	}
	wasm, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h, err := Start(Options{Filters: []FilterConfig{{Name: "tcpprobe", Wasm: wasm, Configuration: []byte(config)}}, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// recordSink is a terminal filter that writes down what reaches it.
type recordSink struct {
	mu     sync.Mutex
	events []string
}

func (r *recordSink) add(e string) { r.mu.Lock(); r.events = append(r.events, e); r.mu.Unlock() }
func (r *recordSink) Connect()     { r.add("connect") }
func (r *recordSink) ToUpstream(b []byte, eos bool) {
	r.add("up:" + string(b) + map[bool]string{true: ":eos"}[eos])
}
func (r *recordSink) ToDownstream(b []byte, eos bool) {
	r.add("down:" + string(b) + map[bool]string{true: ":eos"}[eos])
}
func (r *recordSink) CloseConn() { r.add("close") }
func (r *recordSink) got() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.events, " ")
}

// callbackLog lists the plugin's log lines for one context, without
// the context id.
func callbackLog(h *Host) string {
	var out []string
	for _, l := range h.Logs() {
		out = append(out, l.Message)
	}
	return strings.Join(out, "\n")
}

func TestConnLifecycle(t *testing.T) {
	h := startTCPProbe(t, `{"upper": true, "prefix_up": "S:"}`)
	sink := &recordSink{}
	c := h.NewConn(ConnInfo{Source: "127.0.0.1:5000", Destination: "127.0.0.1:10000"}, sink)
	c.UpstreamConnected("127.0.0.1:9000")
	c.Downstream([]byte("hello"), false)
	c.Upstream([]byte("world"), false)
	c.Upstream(nil, true)
	c.Closed(PeerRemote)
	c.Sync()
	if got, want := sink.got(), "connect up:HELLO down:S:world down::eos"; got != want {
		t.Errorf("sink saw %q, want %q", got, want)
	}
	want := []string{
		`new ctx=2 src=127.0.0.1:5000 dst=127.0.0.1:10000 conn=1`,
		`down ctx=2 size=5 eos=false data="hello" upstream=127.0.0.1:9000`,
		`up ctx=2 size=5 eos=false data="world" upstream=127.0.0.1:9000`,
		`up ctx=2 size=0 eos=true data="" upstream=127.0.0.1:9000`,
		`up-close ctx=2 peer=0`,
		`down-close ctx=2 peer=2`,
		`done ctx=2 down=5 up=5`,
	}
	if got := callbackLog(h); got != strings.Join(want, "\n") {
		t.Errorf("plugin log:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	if !c.Finished() {
		t.Error("contexts not deleted after close")
	}
	if m, _ := h.Metric("tcpprobe_bytes_total"); m.Value != 10 {
		t.Errorf("tcpprobe_bytes_total = %d, want 10", m.Value)
	}
}

// A paused filter holds the data (Envoy's read buffer keeps it), sees the
// whole held buffer on the next chunk, and ContinueTcpStream from a tick
// sends it on.
func TestConnPauseContinue(t *testing.T) {
	h := startTCPProbe(t, `{"pause": true, "tick_ms": 100}`)
	sink := &recordSink{}
	c := h.NewConn(ConnInfo{Source: "127.0.0.1:5000", Destination: "127.0.0.1:10000"}, sink)
	c.Downstream([]byte("ab"), false)
	c.Sync()
	if got := sink.got(); got != "connect" {
		t.Fatalf("paused data reached the upstream: %q", got)
	}
	h.Clock().Advance(100 * time.Millisecond)
	c.Sync()
	if got, want := sink.got(), "connect up:ab"; got != want {
		t.Errorf("after continue the sink saw %q, want %q", got, want)
	}
	c.Downstream([]byte("cd"), true)
	c.Sync()
	if got, want := sink.got(), "connect up:ab up:cd:eos"; got != want {
		t.Errorf("sink saw %q, want %q", got, want)
	}
	if !strings.Contains(callbackLog(h), "resume ctx=2") {
		t.Errorf("no resume logged:\n%s", callbackLog(h))
	}
}

// proxy_close_stream closes the connection: the sink is told to close,
// the filter sees a local close, and nothing more flows.
func TestConnCloseStream(t *testing.T) {
	h := startTCPProbe(t, `{"close_on": "QUIT"}`)
	sink := &recordSink{}
	c := h.NewConn(ConnInfo{Source: "127.0.0.1:5000", Destination: "127.0.0.1:10000"}, sink)
	c.Downstream([]byte("one"), false)
	c.Downstream([]byte("QUIT"), false)
	c.Sync()
	c.Downstream([]byte("more"), false)
	c.Sync()
	if got, want := sink.got(), "connect up:one close"; got != want {
		t.Errorf("sink saw %q, want %q", got, want)
	}
	if log := callbackLog(h); !strings.Contains(log, "down-close ctx=2 peer=1") || strings.Contains(log, "more") {
		t.Errorf("plugin log:\n%s", log)
	}
	if !c.Finished() {
		t.Error("contexts not deleted after close")
	}
}

// Envoy adds each wasm network filter as a read and a write filter; write
// filters are prepended, so upstream data meets the last filter first.
func TestConnFilterOrder(t *testing.T) {
	path, err := build.New(build.DefaultCacheDir()).Build("../../testdata/tcpprobe")
	if err != nil {
		t.Fatal(err)
	}
	wasm, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h, err := Start(Options{Workers: 1, Filters: []FilterConfig{
		{Name: "first", Wasm: wasm, Configuration: []byte(`{"prefix_up": "1:"}`)},
		{Name: "second", Wasm: wasm, Configuration: []byte(`{"prefix_up": "2:", "upper": true}`)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	sink := &recordSink{}
	c := h.NewConn(ConnInfo{Source: "127.0.0.1:5000", Destination: "127.0.0.1:10000"}, sink)
	c.Downstream([]byte("ab"), false)
	c.Upstream([]byte("xy"), false)
	c.Sync()
	if got, want := sink.got(), "connect up:AB down:1:2:xy"; got != want {
		t.Errorf("sink saw %q, want %q", got, want)
	}
	var order []string
	for _, l := range h.Logs() {
		if strings.HasPrefix(l.Message, "down ") || strings.HasPrefix(l.Message, "up ") {
			order = append(order, l.Filter+":"+strings.Fields(l.Message)[0])
		}
	}
	if got, want := strings.Join(order, " "), "first:down second:down second:up first:up"; got != want {
		t.Errorf("callback order %q, want %q", got, want)
	}
}

// A trap in a network filter closes the connection (fail closed) or
// skips the filter for this and later connections (fail open).
func TestConnTrap(t *testing.T) {
	path, err := build.New(build.DefaultCacheDir()).Build("../../testdata/tcpprobe")
	if err != nil {
		t.Fatal(err)
	}
	wasm, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		policy    FailurePolicy
		want      string
		wantLater string
	}{
		{FailClosed, "connect up:a close", "close"},
		{FailOpen, "connect up:a up:BOOM", "connect up:b"},
	} {
		h, err := Start(Options{Workers: 1, Filters: []FilterConfig{{Name: "p", Wasm: wasm, FailurePolicy: tc.policy,
			Configuration: []byte(`{"panic_on": "BOOM"}`)}}})
		if err != nil {
			t.Fatal(err)
		}
		sink := &recordSink{}
		c := h.NewConn(ConnInfo{}, sink)
		c.Downstream([]byte("a"), false)
		c.Downstream([]byte("BOOM"), false)
		c.Sync()
		if got := sink.got(); got != tc.want {
			t.Errorf("policy %d: sink saw %q, want %q", tc.policy, got, tc.want)
		}
		later := &recordSink{}
		c2 := h.NewConn(ConnInfo{}, later)
		c2.Downstream([]byte("b"), false)
		c2.Sync()
		if got := later.got(); got != tc.wantLater {
			t.Errorf("policy %d: a later connection saw %q, want %q", tc.policy, got, tc.wantLater)
		}
		if len(h.Traps()) != 1 {
			t.Errorf("policy %d: %d traps, want 1", tc.policy, len(h.Traps()))
		}
		h.Close()
	}
}

// TestConnSharedVM: two network filters of one module and vm_id share a
// VM: root contexts 1 and 2, then the connection's contexts 3 and 4, each
// created under its own filter's root context and acting with its config
// (the first upper-cases, the second prefixes upstream data).
func TestConnSharedVM(t *testing.T) {
	path, err := build.New(build.DefaultCacheDir()).Build("../../testdata/tcpprobe")
	if err != nil {
		t.Fatal(err)
	}
	wasm, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h, err := Start(Options{Filters: []FilterConfig{
		{Name: "first", VMID: "x", Wasm: wasm, Configuration: []byte(`{"upper": true}`)},
		{Name: "second", VMID: "x", Wasm: wasm, Configuration: []byte(`{"prefix_up": "S:"}`)},
	}, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	if got := h.SharesVMWith(); len(got) != 2 || got[0] != -1 || got[1] != 0 {
		t.Fatalf("SharesVMWith = %v, want [-1 0]", got)
	}
	sink := &recordSink{}
	c := h.NewConn(ConnInfo{Source: "127.0.0.1:5000", Destination: "127.0.0.1:10000"}, sink)
	c.Downstream([]byte("hello"), false)
	c.Upstream([]byte("world"), false)
	c.Sync()
	if got, want := sink.got(), "connect up:HELLO down:S:world"; got != want {
		t.Errorf("sink saw %q, want %q", got, want)
	}
	var news []string
	for _, l := range h.Logs() {
		if l.Worker == 0 && strings.HasPrefix(l.Message, "new ctx=") {
			news = append(news, l.Filter+" "+strings.Fields(l.Message)[1])
		}
	}
	if got, want := strings.Join(news, ", "), "first ctx=3, second ctx=4"; got != want {
		t.Errorf("connection contexts: %s, want %s", got, want)
	}
}
