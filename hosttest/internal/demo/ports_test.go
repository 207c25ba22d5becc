package demo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/concierge-wasm/concierge/hosttest/internal/gateway"
)

// TestShiftLoopbackPortsMovesEveryLocalPort: with an offset, no port of
// envoy/local.yaml's listener, admin or clusters stays where it was, and the
// demo services move by the same amount.
func TestShiftLoopbackPortsMovesEveryLocalPort(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "envoy", "local.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	bs, err := gateway.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	ShiftLoopbackPorts(bs, 1000)
	js := protojson.Format(bs)
	for _, port := range []string{"8080", "9901", "9101", "9102", "9201", "9301", "9401"} {
		if strings.Contains(js, `"portValue": `+port+`,`) || strings.Contains(js, `"portValue": `+port+"\n") {
			t.Errorf("port %s is still in the shifted bootstrap", port)
		}
	}
	for _, port := range []string{"9080", "10901", "10101", "10102", "10201", "10301", "10401"} {
		if !strings.Contains(js, `"portValue": `+port) {
			t.Errorf("shifted bootstrap lacks port %s", port)
		}
	}
	p := LocalPorts.Shift(1000)
	if p.Users[0] != 10101 || p.Users[1] != 10102 || p.Orders != 10201 || p.Flaky != 10301 || p.IdP != 10401 {
		t.Errorf("LocalPorts.Shift(1000) = %+v", p)
	}
	if LocalPorts.Users[0] != 9101 {
		t.Errorf("Shift changed LocalPorts: %+v", LocalPorts)
	}
}
