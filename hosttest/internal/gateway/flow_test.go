package gateway

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Flow control: a slow side holds the other back instead of the gateway
// buffering the difference. 128 MiB is offered; the bound leaves room for
// the kernel's socket buffers on loopback, and is far below what an
// unbounded gateway takes in.
const (
	flowTotal = 128 << 20
	flowBound = 48 << 20
	flowLimit = 256 << 10 // the listener's per_connection_buffer_limit_bytes
)

func flowGateway(t *testing.T, up *httptest.Server) *Gateway {
	t.Helper()
	yaml := bootstrap(wasmFilter("probe", module(t, "hosttest/testdata/probe"), `{"name":"probe"}`),
		"- name: all\n  match: { prefix: / }\n  route: { cluster: up, timeout: 0s }", staticCluster("up", []string{port(t, up)}, ""))
	yaml = strings.Replace(yaml, "  - name: ingress\n", fmt.Sprintf("  - name: ingress\n    per_connection_buffer_limit_bytes: %d\n", flowLimit), 1)
	return start(t, yaml)
}

// settled waits until n stops growing (unchanged for 300 ms, at most 10 s)
// and returns it.
func settled(n *atomic.Int64) int64 {
	last, since := n.Load(), time.Now()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if v := n.Load(); v != last {
			last, since = v, time.Now()
		} else if time.Since(since) > 300*time.Millisecond {
			break
		}
	}
	return last
}

func TestSlowClientHoldsBackTheUpstream(t *testing.T) {
	var written atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		chunk := make([]byte, 32<<10)
		for written.Load() < flowTotal {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			rc.Flush()
			written.Add(int64(len(chunk)))
		}
	}))
	t.Cleanup(up.Close)
	g := flowGateway(t, up)

	conn, err := net.Dial("tcp", g.Addr("ingress"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetReadBuffer(32 << 10)
	io.WriteString(conn, "GET /big HTTP/1.1\r\nHost: flow\r\n\r\n")
	// The client reads nothing yet.
	stalled := settled(&written)
	t.Logf("with the client not reading, the upstream wrote %d KiB of %d", stalled>>10, flowTotal>>10)
	if stalled >= flowBound {
		t.Errorf("the upstream wrote %d MiB while the client read nothing: the gateway buffers instead of holding the upstream back", stalled>>20)
	}
	if stalled == flowTotal {
		return
	}
	// Then it reads everything: nothing was lost on the way.
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, res.Body)
	if err != nil || n != flowTotal {
		t.Errorf("the client read %d bytes (err %v), want %d", n, err, flowTotal)
	}
}

func TestSlowUpstreamHoldsBackTheClient(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		n, _ := io.Copy(io.Discard, r.Body)
		io.WriteString(w, strconv.FormatInt(n, 10))
	}))
	t.Cleanup(up.Close)
	g := flowGateway(t, up)

	var sent atomic.Int64
	body := &countingReader{left: flowTotal, n: &sent}
	req, _ := http.NewRequest("POST", "http://"+g.Addr("ingress")+"/upload", body)
	req.ContentLength = flowTotal
	type result struct {
		r   resp
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := client(t).Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		done <- result{resp{status: res.StatusCode, body: b}, err}
	}()
	stalled := settled(&sent)
	t.Logf("with the upstream not reading, the client sent %d KiB of %d", stalled>>10, flowTotal>>10)
	if stalled >= flowBound {
		t.Errorf("the client sent %d MiB while the upstream read nothing: the gateway buffers instead of holding the client back", stalled>>20)
	}
	close(release)
	select {
	case r := <-done:
		if r.err != nil || r.r.status != 200 || string(r.r.body) != strconv.Itoa(flowTotal) {
			t.Errorf("upload: %d %q (err %v), want 200 and the upstream counting %d bytes", r.r.status, r.r.body, r.err, flowTotal)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the upload did not finish after the upstream began reading")
	}
}

// countingReader yields left zero bytes, counting what was taken.
type countingReader struct {
	left int64
	n    *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	clear(p)
	c.left -= int64(len(p))
	c.n.Add(int64(len(p)))
	return len(p), nil
}

// TestBufferLimitPerProtocol: a filter buffering a body is held to the
// listener's per_connection_buffer_limit_bytes over HTTP/1.1, and to the
// stream window over HTTP/2, as in Envoy.
func TestBufferLimitPerProtocol(t *testing.T) {
	up := echoServer(t, "up")
	yaml := bootstrap(wasmFilter("probe", module(t, "hosttest/testdata/probe"), `{"name":"probe"}`),
		"- name: all\n  match: { prefix: / }\n  route: { cluster: up }", staticCluster("up", []string{port(t, up)}, ""))
	yaml = strings.Replace(yaml, "  - name: ingress\n", "  - name: ingress\n    per_connection_buffer_limit_bytes: 65536\n", 1)
	yaml = strings.Replace(yaml, "          stat_prefix: ingress_http\n", "          stat_prefix: ingress_http\n          http2_protocol_options: { initial_stream_window_size: 1048576 }\n", 1)
	g := start(t, yaml)
	h2 := &http.Transport{Protocols: new(http.Protocols)}
	h2.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(h2.CloseIdleConnections)
	body := strings.Repeat("x", 200<<10)
	for _, tc := range []struct {
		name   string
		client *http.Client
		status int
	}{
		{"HTTP/1.1: the listener's 64 KiB", client(t), 413},
		{"h2c: the 1 MiB stream window", &http.Client{Transport: h2, Timeout: 10 * time.Second}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, tc.client, "POST", "http://"+g.Addr("ingress")+"/upload", map[string]string{"x-probe": "buffer-req"}, []byte(body))
			if r.status != tc.status {
				t.Errorf("a 200 KiB body buffered by a filter: %d %.80q, want %d", r.status, r.body, tc.status)
			}
			if tc.status == 413 && string(r.body) != "Payload Too Large" {
				t.Errorf("413 body %q, want Envoy's \"Payload Too Large\"", r.body)
			}
		})
	}
}

// TestClientHangingUpWhileHeldBack: a client whose upload is held back by
// flow control (the upstream or a filter is not taking it) and that then
// hangs up is noticed, though nothing was reading the client: the stream
// ends.
func TestClientHangingUpWhileHeldBack(t *testing.T) {
	// A FIN queues behind unsent data: it reaches the gateway only if what
	// the client wrote fits in the socket buffers, so that case sends a
	// little more than the limit; Envoy could not see the FIN otherwise
	// either. An RST arrives at once.
	for _, tc := range []struct {
		name   string
		script string // the probe's: pause-req holds the request at the filter
		send   int64  // 0: until the gateway stops taking it
		abort  bool   // RST instead of FIN
	}{
		{"filter holding the request, FIN", "pause-req", flowLimit + 64<<10, false},
		{"filter holding the request, RST", "pause-req", 0, true},
		{"upstream not reading, RST", "", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The upstream never reads: a Go server would not even notice
			// the gateway giving up, so it is released at the end.
			release := make(chan struct{})
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
			t.Cleanup(up.Close)
			t.Cleanup(func() { close(release) })
			g := flowGateway(t, up)
			conn, err := net.Dial("tcp", g.Addr("ingress"))
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(conn, "POST /upload HTTP/1.1\r\nHost: flow\r\nx-probe: %s\r\nContent-Length: %d\r\n\r\n", tc.script, flowTotal)
			conn.SetWriteDeadline(time.Now().Add(time.Second))
			send := tc.send
			if send == 0 {
				send = flowTotal - 1 // until flow control pushes back and the write blocks
			}
			n, _ := io.Copy(conn, io.LimitReader(zeros{}, send))
			if tc.send == 0 && n == send {
				t.Fatalf("the gateway took the whole %d MiB: nothing held the client back", flowTotal>>20)
			}
			time.Sleep(100 * time.Millisecond) // the gateway reads up to the limit and parks
			if tc.abort {
				conn.(*net.TCPConn).SetLinger(0)
			}
			conn.Close()
			waitFor(t, 5*time.Second, fmt.Sprintf("the stream to end after the client hung up, having sent %d KiB", n>>10),
				func() bool { return g.listeners[0].active.Load() == 0 })
		})
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }
