package gateway

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// tcpBootstrap is a listener of network wasm filters then tcp_proxy to
// cluster "backend".
func tcpBootstrap(filters, cluster string) string {
	return fmt.Sprintf(`
admin:
  address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
static_resources:
  listeners:
  - name: tcp
    address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
    filter_chains:
    - filters:
%s
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: tcp
          cluster: backend
  clusters:
%s
`, indent(filters, 6), indent(cluster, 2))
}

func netWasmFilter(name, path, config string) string {
	return fmt.Sprintf(`- name: envoy.filters.network.wasm
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm
    config:
      name: %s
      root_id: %s
      configuration:
        "@type": type.googleapis.com/google.protobuf.StringValue
        value: '%s'
      vm_config:
        vm_id: %s
        runtime: envoy.wasm.runtime.v8
        code: { local: { filename: %s } }
`, name, name, config, name, path)
}

// tcpUpstream reads until the client half-closes, then answers
// "got:<what it read>" and closes. It records what it read.
type tcpUpstream struct {
	ln   net.Listener
	mu   sync.Mutex
	got  []string
	port string
}

func newTCPUpstream(t testing.TB) *tcpUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &tcpUpstream{ln: ln}
	_, u.port, _ = net.SplitHostPort(ln.Addr().String())
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				b, _ := io.ReadAll(c)
				u.mu.Lock()
				u.got = append(u.got, string(b))
				u.mu.Unlock()
				c.Write([]byte("got:" + string(b)))
			}()
		}
	}()
	return u
}

func (u *tcpUpstream) received() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.got...)
}

// exchange sends data, half-closes, and reads until the gateway closes.
func exchange(t testing.TB, addr, data string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(data)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(data, "QUIT") {
		c.(*net.TCPConn).CloseWrite()
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading from the gateway: %v", err)
	}
	return string(b)
}

func TestTCPProxyThroughNetworkWasm(t *testing.T) {
	wasm := module(t, "hosttest/testdata/tcpprobe")
	for _, tc := range []struct {
		name, config, send, want string
		wantUpstream             []string
	}{
		{"upper and prefix", `{"upper": true, "prefix_up": "S:"}`, "hello", "S:got:HELLO", []string{"HELLO"}},
		{"close_stream closes the connection", `{"close_on": "QUIT"}`, "QUIT", "", nil},
		{"paused data is held, then flows", `{"pause": true, "tick_ms": 20}`, "held", "got:held", []string{"held"}},
		{"held data is transformed when it flows", `{"pause": true, "tick_ms": 20, "upper": true}`, "abc", "got:ABC", []string{"ABC"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newTCPUpstream(t)
			g := start(t, tcpBootstrap(netWasmFilter("tcpprobe", wasm, tc.config), staticCluster("backend", []string{up.port}, "")))
			if got := exchange(t, g.Addr("tcp"), tc.send); got != tc.want {
				t.Errorf("client got %q, want %q", got, tc.want)
			}
			if tc.wantUpstream != nil {
				waitFor(t, 5*time.Second, "upstream read", func() bool { return len(up.received()) > 0 })
				if got := up.received(); strings.Join(got, "|") != strings.Join(tc.wantUpstream, "|") {
					t.Errorf("upstream read %q, want %q", got, tc.wantUpstream)
				}
			}
		})
	}
}

// The filters see the real addresses, the upstream address once
// connected, and the close and teardown callbacks.
func TestTCPProxyCallbacksAndProperties(t *testing.T) {
	wasm := module(t, "hosttest/testdata/tcpprobe")
	up := newTCPUpstream(t)
	// The cluster's metadata as the Go SDK's examples/network writes it.
	md := "metadata:\n  filter_metadata:\n    location:\n      cloud_provider: aws\n      region: ap-northeast-1\n      az: ap-northeast-1a\n"
	bs, err := Parse([]byte(tcpBootstrap(netWasmFilter("tcpprobe", wasm, `{"log_cluster": true}`), staticCluster("backend", []string{up.port}, md))))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Compile(bs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var lines syncBuf
	g, err := Start(cfg, RunOptions{Workers: 1, Log: NewLogger(&lines, LevelInfo)})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if got := exchange(t, g.Addr("tcp"), "abc"); got != "got:abc" {
		t.Errorf("client got %q", got)
	}
	waitFor(t, 5*time.Second, "done callback", func() bool { return strings.Contains(lines.String(), "done ctx=") })
	if r := do(t, client(t), "GET", "http://"+g.AdminAddr()+"/listeners", nil, nil); !strings.Contains(string(r.body), "tcp::"+g.Addr("tcp")) {
		t.Errorf("/listeners = %q, want the TCP listener", r.body)
	}
	if d := g.Describe(); !strings.Contains(d, "listener tcp on "+g.Addr("tcp")+" (TCP)") || !strings.Contains(d, "filter 2 envoy.filters.network.tcp_proxy: stat_prefix tcp, cluster backend") {
		t.Errorf("Describe lacks the TCP listener:\n%s", d)
	}
	stats := string(do(t, client(t), "GET", "http://"+g.AdminAddr()+"/stats", nil, nil).body)
	for _, want := range []string{"tcpprobe_bytes_total: 10\n", "tcp.tcp.downstream_cx_total: 1\n"} {
		if !strings.Contains(stats, want) {
			t.Errorf("/stats lacks %q:\n%s", want, stats)
		}
	}
	log := lines.String()
	for _, want := range []string{
		"new ctx=2 src=127.0.0.1:", " dst=" + g.Addr("tcp") + " conn=1",
		`down ctx=2 size=3 eos=false data="abc" upstream=127.0.0.1:` + up.port,
		`up ctx=2 size=7 eos=false data="got:abc" upstream=127.0.0.1:` + up.port,
		"up-close ctx=2 peer=0",
		"down-close ctx=2 peer=",
		"done ctx=2 down=3 up=7",
		// tcp_proxy's cluster: unknown in on_new_connection (the filter
		// runs before tcp_proxy), then the cluster and its metadata.
		"cluster ctx=2 at=new name=<error status returned by host: not found>",
		"cluster ctx=2 at=up name=backend location=az=ap-northeast-1a,cloud_provider=aws,region=ap-northeast-1",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

// Envoy's tcp_proxy closes the downstream connection when the upstream
// cannot be reached.
func TestTCPProxyConnectFailureClosesDownstream(t *testing.T) {
	wasm := module(t, "hosttest/testdata/tcpprobe")
	g := start(t, tcpBootstrap(netWasmFilter("tcpprobe", wasm, `{}`), staticCluster("backend", []string{closedPort(t)}, "")))
	c, err := net.Dial("tcp", g.Addr("tcp"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("x"))
	// Closed with the client's byte unread, the socket may be reset
	// rather than ended: either is a close; a timeout is not.
	if b, err := io.ReadAll(c); len(b) != 0 || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read %q, %v; want the gateway to close the connection", b, err)
	}
}

// tcp_proxy reads nothing from the client before the upstream is
// connected: the filters see no data from a connection that never gets one,
// and upstream.address is known at the first data.
func TestTCPProxyNoDataBeforeUpstream(t *testing.T) {
	wasm := module(t, "hosttest/testdata/tcpprobe")
	bs, err := Parse([]byte(tcpBootstrap(netWasmFilter("tcpprobe", wasm, `{}`), staticCluster("backend", []string{closedPort(t)}, ""))))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Compile(bs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var lines syncBuf
	g, err := Start(cfg, RunOptions{Workers: 1, Log: NewLogger(&lines, LevelInfo)})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	c, err := net.Dial("tcp", g.Addr("tcp"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("early"))
	io.ReadAll(c)
	waitFor(t, 5*time.Second, "done callback", func() bool { return strings.Contains(lines.String(), "done ctx=") })
	if log := lines.String(); strings.Contains(log, "down ctx=") || !strings.Contains(log, "down-close ctx=2 peer=1") {
		t.Errorf("want no downstream data and a local close:\n%s", log)
	}
}

func TestTCPProxyConfigRefusals(t *testing.T) {
	wasm := module(t, "hosttest/testdata/tcpprobe")
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown cluster", strings.Replace(tcpBootstrap(netWasmFilter("p", wasm, `{}`), staticCluster("other", []string{"1"}, "")), "name: other", "name: other", 1),
			`filters[1] (tcp_proxy).typed_config.cluster: unknown cluster "backend"`},
		{"a non-wasm filter before tcp_proxy", tcpBootstrap(`- name: envoy.filters.network.tcp_proxy
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
    stat_prefix: x
    cluster: backend
`, staticCluster("backend", []string{"1"}, "")), "filters[0].typed_config: type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy is not supported before tcp_proxy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := compileErr(t, tc.yaml)
			if !strings.Contains(got, tc.want) {
				t.Errorf("error %q lacks %q", got, tc.want)
			}
		})
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A client that does not read holds the upstream back once the gateway
// has per_connection_buffer_limit_bytes queued for it, instead of the
// gateway reading everything the upstream sends into memory.
func TestTCPProxyBackpressure(t *testing.T) {
	wasm := module(t, "hosttest/testdata/tcpprobe")
	const total = 64 << 20 // far more than the kernel buffers on the way
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	wrote := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			wrote <- err
			return
		}
		defer c.Close()
		c.SetWriteDeadline(time.Now().Add(2 * time.Second))
		_, err = c.Write(make([]byte, total))
		wrote <- err
	}()
	_, upPort, _ := net.SplitHostPort(ln.Addr().String())
	g := start(t, tcpBootstrap(netWasmFilter("tcpprobe", wasm, `{}`), staticCluster("backend", []string{upPort}, "")))
	c, err := net.Dial("tcp", g.Addr("tcp"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.(*net.TCPConn).SetReadBuffer(64 << 10)
	select {
	case err := <-wrote:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("the upstream wrote %d MiB to a client that reads nothing (err %v): the gateway buffered it", total>>20, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("upstream writer did not finish")
	}
}

// TestTCPFailReload: a trap in a network filter under FAIL_RELOAD closes
// that connection; a later connection, once the backoff has passed, gets
// a reloaded VM and the filter runs again (Envoy's network wasm filter
// reloads through the same PluginConfig::createContext as the HTTP one).
// One worker, so every connection meets the VM that failed.
func TestTCPFailReload(t *testing.T) {
	wasm := module(t, "hosttest/testdata/tcpprobe")
	up := newTCPUpstream(t)
	f := netWasmFilter("tcpprobe", wasm, `{"panic_on": "BOOM", "upper": true}`)
	f = strings.Replace(f, "      vm_config:\n", "      failure_policy: FAIL_RELOAD\n      reload_config: { backoff: { base_interval: 0.01s } }\n      vm_config:\n", 1)
	bs, err := Parse([]byte(tcpBootstrap(f, staticCluster("backend", []string{up.port}, ""))))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Compile(bs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var lines syncBuf
	g, err := Start(cfg, RunOptions{Workers: 1, Log: NewLogger(&lines, LevelInfo)})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	// Connections the gateway closes (the trapping one, and those that
	// meet the failed VM before the backoff ends) may be reset rather than
	// ended, their data unread: either is a close.
	send := func(data string) string {
		c, err := net.Dial("tcp", g.Addr("tcp"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write([]byte(data))
		c.(*net.TCPConn).CloseWrite()
		b, err := io.ReadAll(c)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("sending %q: the gateway neither answered nor closed", data)
		}
		return string(b)
	}
	if got := send("BOOM"); got != "" {
		t.Errorf("the connection whose filter trapped got %q, want it closed", got)
	}
	// Bounded: a reload is due 10–15ms after the last load.
	deadline := time.Now().Add(3 * time.Second)
	got := send("hi")
	for got != "got:HI" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		got = send("hi")
	}
	if got != "got:HI" {
		t.Fatalf("after the trap, within 3s: client got %q, want %q (the filter running again in a reloaded VM)", got, "got:HI")
	}
	if !strings.Contains(lines.String(), "FAIL_RELOAD: the VM failed with a runtime error and was reloaded") {
		t.Errorf("no reload log line:\n%s", lines.String())
	}
}
