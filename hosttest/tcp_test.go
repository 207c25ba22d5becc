package hosttest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/concierge-wasm/concierge/hosttest"
)

func TestTCPFilter(t *testing.T) {
	for _, tc := range []struct {
		name, config        string
		run                 func(*hosttest.Host, *hosttest.Conn)
		wantUp, wantDown    string
		wantClosed, wantLog string
		wantDone            bool
	}{
		{
			name: "upper and prefix", config: `{"upper": true, "prefix_up": "S:"}`,
			run: func(_ *hosttest.Host, c *hosttest.Conn) {
				c.Send("ping")
				c.Reply("pong")
				c.Close()
			},
			wantUp: "PING", wantDown: "S:pong", wantLog: "down-close ctx=2 peer=2", wantDone: true,
		},
		{
			name: "pause until tick", config: `{"pause": true, "tick_ms": 50}`,
			run: func(h *hosttest.Host, c *hosttest.Conn) {
				c.Send("a")
				if up, _ := c.Upstream(); up != "" {
					t.Errorf("paused data reached the upstream: %q", up)
				}
				c.Send("b") // the filter sees the held "a" again, with "b"
				h.Clock().Advance(50 * time.Millisecond)
			},
			wantUp: "ab", wantLog: `down ctx=2 size=2 eos=false data="ab" upstream=127.0.0.1:9000`,
		},
		{
			name: "close stream", config: `{"close_on": "QUIT"}`,
			run: func(_ *hosttest.Host, c *hosttest.Conn) {
				c.Send("x")
				c.Send("QUIT")
				c.Send("y")
			},
			wantUp: "x", wantClosed: "yes", wantLog: "down-close ctx=2 peer=1", wantDone: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := hosttest.New(t, hosttest.Plugin("testdata/tcpprobe"), hosttest.Config(tc.config), hosttest.Workers(1))
			c := h.Dial()
			tc.run(h, c)
			if up, connected := c.Upstream(); up != tc.wantUp || !connected {
				t.Errorf("upstream got %q (connected %v), want %q", up, connected, tc.wantUp)
			}
			if got := c.Downstream(); got != tc.wantDown {
				t.Errorf("client got %q, want %q", got, tc.wantDown)
			}
			if c.Done() != tc.wantDone {
				t.Errorf("contexts deleted = %v, want %v", c.Done(), tc.wantDone)
			}
			if c.ClosedByFilter() != (tc.wantClosed != "") {
				t.Errorf("closed by filter = %v", c.ClosedByFilter())
			}
			if len(h.LogsContaining(tc.wantLog)) == 0 {
				var all []string
				for _, l := range h.Logs() {
					all = append(all, l.Message)
				}
				t.Errorf("no log line %q in:\n%s", tc.wantLog, strings.Join(all, "\n"))
			}
		})
	}
}
