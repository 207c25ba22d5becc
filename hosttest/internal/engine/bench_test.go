package engine

import (
	"net/http"
	"testing"

	"github.com/concierge-wasm/concierge/hosttest/internal/abi"
)

// BenchmarkHostCall measures the host's side of one proxy-wasm call, the
// way a guest's proxy_get_header_map_value reaches it: read the key from
// guest memory, look it up, allocate in the guest (a call back into the
// module) and copy the value out. Guest-side SDK work is not included.
func BenchmarkHostCall(b *testing.B) {
	h := startNoop(b, http.NotFoundHandler())
	w := h.workers[0]
	w.call(func() {
		vm := w.vms[0]
		s := &Stream{host: h, w: w, filterState: map[string][]byte{}}
		s.headers[dec] = newHeaderMap([]abi.Pair{{Key: ":path", Value: "/api/users/1"}, {Key: "x-request-id", Value: "0195f2b4-7c1e-7000-8000-000000000000"}})
		f := &filterStream{s: s, vm: vm}
		f.mapOpen[dec] = true
		vm.active = f
		key := []byte("x-request-id")
		kp, _ := vm.malloc(uint32(len(key)))
		vm.mem.Write(kp, key)
		out, _ := vm.malloc(8)
		stack := []uint64{uint64(abi.RequestHeaders), uint64(kp), uint64(len(key)), uint64(out), uint64(out + 4)}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if st := hcGetMapValue(vm, stack); st != abi.OK {
				b.Fatalf("status %v", st)
			}
		}
		b.StopTimer()
		vm.active = nil
	})
}
