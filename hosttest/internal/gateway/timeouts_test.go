package gateway

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

// timeoutGateway serves the probe filter in front of upstream with the
// given connection manager lines (timeouts) added.
func timeoutGateway(t *testing.T, hcm string, upstream http.Handler, route string) string {
	t.Helper()
	up := httptest.NewServer(upstream)
	t.Cleanup(up.Close)
	if route == "" {
		route = "{ cluster: up, timeout: 0s }"
	}
	y := bootstrap(wasmFilter("probe", module(t, "hosttest/testdata/probe"), `{"name":"probe"}`),
		"- name: all\n  match: { prefix: / }\n  route: "+route, staticCluster("up", []string{port(t, up)}, ""))
	y = strings.Replace(y, "          use_remote_address: true\n", "          use_remote_address: true\n"+indent(hcm, 10)+"\n", 1)
	return start(t, y).Addr("ingress")
}

// rawConn dials the gateway; every read is bounded by deadline.
func rawConn(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	return c, bufio.NewReader(c)
}

// closedWithin reports whether the gateway closes c within d.
func closedWithin(c net.Conn, r *bufio.Reader, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := r.ReadByte()
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout()) && !errors.Is(err, os.ErrDeadlineExceeded)
}

func okHandler(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }

// TestConnectionTimeouts: idle_timeout closes connections with no request
// in flight — a fresh one and one kept alive after a request — and
// max_connection_duration closes an idle one and drains a busy one with
// connection: close.
func TestConnectionTimeouts(t *testing.T) {
	t.Run("idle_timeout, fresh connection", func(t *testing.T) {
		addr := timeoutGateway(t, "common_http_protocol_options: { idle_timeout: 0.2s }", http.HandlerFunc(okHandler), "")
		c, r := rawConn(t, addr)
		if !closedWithin(c, r, 3*time.Second) {
			t.Error("a connection that sent nothing is still open 3s after a 0.2s idle_timeout")
		}
	})
	t.Run("idle_timeout, after a request", func(t *testing.T) {
		addr := timeoutGateway(t, "common_http_protocol_options: { idle_timeout: 0.2s }", http.HandlerFunc(okHandler), "")
		c, r := rawConn(t, addr)
		io.WriteString(c, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
		res, err := http.ReadResponse(r, nil)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("request: %v %v", res, err)
		}
		io.Copy(io.Discard, res.Body)
		if !closedWithin(c, r, 3*time.Second) {
			t.Error("a kept-alive connection is still open 3s after a 0.2s idle_timeout")
		}
	})
	t.Run("no idle_timeout below Envoy's 1h default", func(t *testing.T) {
		addr := timeoutGateway(t, "", http.HandlerFunc(okHandler), "")
		c, r := rawConn(t, addr)
		if closedWithin(c, r, 500*time.Millisecond) {
			t.Error("a fresh connection was closed within 0.5s without any timeout configured")
		}
	})
	t.Run("max_connection_duration, idle", func(t *testing.T) {
		addr := timeoutGateway(t, "common_http_protocol_options: { max_connection_duration: 0.3s }", http.HandlerFunc(okHandler), "")
		c, r := rawConn(t, addr)
		io.WriteString(c, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
		if res, err := http.ReadResponse(r, nil); err != nil || res.StatusCode != 200 {
			t.Fatalf("request: %v %v", res, err)
		} else {
			io.Copy(io.Discard, res.Body)
		}
		if !closedWithin(c, r, 3*time.Second) {
			t.Error("an idle connection is still open 3s after a 0.3s max_connection_duration")
		}
	})
	t.Run("max_connection_duration, busy", func(t *testing.T) {
		slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(600 * time.Millisecond)
			io.WriteString(w, "slow")
		})
		addr := timeoutGateway(t, "common_http_protocol_options: { max_connection_duration: 0.2s }", slow, "")
		c, r := rawConn(t, addr)
		// The connection reaches its maximum age while the upstream works.
		io.WriteString(c, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
		res, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("request: %v", err)
		}
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 || string(body) != "slow" || !res.Close {
			t.Errorf("response on a draining connection: %d %q close=%v, want 200 slow with connection: close", res.StatusCode, body, res.Close)
		}
		if !closedWithin(c, r, 3*time.Second) {
			t.Error("the drained connection is still open after its response")
		}
	})
}

// TestStreamTimeouts: request_headers_timeout, stream_idle_timeout and
// request_timeout answer with Envoy's status, body and counter; a stream
// idle timeout after the response started resets the stream.
func TestStreamTimeouts(t *testing.T) {
	hang := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	stall := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("content-length", "100")
		w.WriteHeader(200)
		io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	tests := []struct {
		name     string
		hcm      string
		upstream http.Handler
		send     string // raw request bytes; the client then waits
		status   int    // 0: the stream is reset (no complete response)
		body     string
	}{
		{"request_headers_timeout", "request_headers_timeout: 0.2s", http.HandlerFunc(okHandler),
			"GET /x HTTP/1.1\r\nHost: a\r\n", 408, "request header timeout"},
		{"stream_idle_timeout before the headers end", "stream_idle_timeout: 0.2s", http.HandlerFunc(okHandler),
			"GET /x HTTP/1.1\r\nHost: a\r\n", 408, "stream timeout"},
		{"stream_idle_timeout in the request body", "stream_idle_timeout: 0.2s", http.HandlerFunc(okHandler),
			"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhalf", 408, "stream timeout"},
		{"stream_idle_timeout waiting for the upstream", "stream_idle_timeout: 0.2s", hang,
			"GET /x HTTP/1.1\r\nHost: a\r\n\r\n", 504, "stream timeout"},
		{"stream_idle_timeout after the response started", "stream_idle_timeout: 0.3s", stall,
			"GET /x HTTP/1.1\r\nHost: a\r\n\r\n", 0, ""},
		{"request_timeout", "request_timeout: 0.3s", http.HandlerFunc(okHandler),
			"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhalf", 408, "request timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := timeoutGateway(t, tc.hcm, tc.upstream, "")
			c, r := rawConn(t, addr)
			io.WriteString(c, tc.send)
			res, err := http.ReadResponse(r, nil)
			if tc.status == 0 {
				if err != nil {
					t.Fatalf("no response headers: %v", err)
				}
				c.SetReadDeadline(time.Now().Add(2 * time.Second))
				b, err := io.ReadAll(res.Body)
				var ne net.Error
				if err == nil || errors.As(err, &ne) && ne.Timeout() {
					t.Errorf("response %d %q: %v; want the stream reset (connection cut) well within 2s", res.StatusCode, b, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("no response: %v", err)
			}
			b, _ := io.ReadAll(res.Body)
			if res.StatusCode != tc.status || string(b) != tc.body {
				t.Errorf("got %d %q, want %d %q", res.StatusCode, b, tc.status, tc.body)
			}
		})
	}
}
