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

// TestTCPClusterProperties: tcp_proxy's cluster (xds.cluster_name,
// xds.cluster_metadata) is in the connection's stream info once the chain
// reached tcp_proxy, as in Envoy: not in on_new_connection, which runs
// before it; then a Struct in the metadata reads as a map (pairs).
func TestTCPClusterProperties(t *testing.T) {
	h := hosttest.New(t, hosttest.Plugin("testdata/tcpprobe"), hosttest.Config(`{"log_cluster": true}`), hosttest.Workers(1))
	c := h.Dial(hosttest.TCPCluster("backend"),
		hosttest.TCPClusterMetadata("location", map[string]any{"region": "ap-northeast-1", "az": "ap-northeast-1a"}))
	c.Send("x")
	c.Reply("y")
	c.Close()
	for _, want := range []string{
		"cluster ctx=2 at=new name=<error status returned by host: not found> location=<error status returned by host: not found>",
		"cluster ctx=2 at=up name=backend location=az=ap-northeast-1a,region=ap-northeast-1",
	} {
		if len(h.LogsContaining(want)) != 1 {
			var all []string
			for _, l := range h.Logs() {
				all = append(all, l.Message)
			}
			t.Errorf("no log line %q in:\n%s", want, strings.Join(all, "\n"))
		}
	}
}

// TestTCPFailurePolicy: a trap in a network filter fails its VM; what
// later connections get follows the filter's failure policy, as for HTTP
// streams. FAIL_RELOAD reloads the VM for the first new connection once
// the backoff (10s base, jittered below 15s) has passed since the VM was
// loaded, as Envoy's network wasm filter does through
// PluginConfig::createContext; before that, connections are closed.
func TestTCPFailurePolicy(t *testing.T) {
	for _, tc := range []struct {
		name          string
		policy        hosttest.FailurePolicy
		before, after string // what "b" sent on a later connection reaches upstream: "" when closed
	}{
		{"FAIL_CLOSED", hosttest.FailClosed, "", ""},
		{"FAIL_OPEN", hosttest.FailOpen, "b", "b"},
		{"FAIL_RELOAD", hosttest.FailReload, "", "B"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := hosttest.New(t, hosttest.Chain(hosttest.Filter{Name: "p", Plugin: "testdata/tcpprobe",
				Config: `{"panic_on": "BOOM", "upper": true}`, FailurePolicy: tc.policy, ReloadBackoff: 10 * time.Second}),
				hosttest.Workers(1), hosttest.AllowTraps())
			c := h.Dial()
			c.Send("BOOM")
			if tc.policy != hosttest.FailOpen && !c.ClosedByFilter() {
				t.Error("the connection whose filter trapped is still open")
			}
			later := func(when, want string) {
				t.Helper()
				c := h.Dial()
				c.Send("b")
				if up, _ := c.Upstream(); up != want {
					t.Errorf("%s: a new connection's %q reached the upstream as %q, want %q", when, "b", up, want)
				}
				if c.ClosedByFilter() != (want == "") {
					t.Errorf("%s: closed by filter = %v, want %v", when, c.ClosedByFilter(), want == "")
				}
			}
			later("within the backoff", tc.before)
			h.Clock().Advance(16 * time.Second)
			later("after the backoff", tc.after)
			later("after the backoff, again", tc.after)
			if n := len(h.Traps()); n != 1 {
				t.Errorf("%d traps, want 1", n)
			}
			reloads := h.LogsContaining("FAIL_RELOAD: the VM failed with a runtime error and was reloaded")
			if want := tc.policy == hosttest.FailReload; (len(reloads) == 1) != want {
				t.Errorf("reload log lines: %q, want one: %v", reloads, want)
			}
		})
	}
}
