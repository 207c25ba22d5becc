package demo

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

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
	before := portsOf(t, bs)
	ShiftLoopbackPorts(bs, 1000)
	after := portsOf(t, bs)
	if len(before) == 0 || len(after) != len(before) {
		t.Fatalf("ports before %v, after %v", before, after)
	}
	for i := range before {
		if after[i] != before[i]+1000 {
			t.Errorf("port %d became %d, want %d", before[i], after[i], before[i]+1000)
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

// portsOf lists every portValue of a bootstrap (all are loopback in
// envoy/local.yaml), in document order.
func portsOf(t *testing.T, bs proto.Message) []int {
	t.Helper()
	b, err := protojson.Marshal(bs)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var out []int
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				if p, ok := x[k].(float64); ok && k == "portValue" {
					out = append(out, int(p))
					continue
				}
				walk(x[k])
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(doc)
	return out
}
