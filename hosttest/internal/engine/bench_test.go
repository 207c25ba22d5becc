package engine

import (
	"net/http"
	"testing"

	"github.com/concierge-wasm/concierge/hosttest/internal/abi"
)

// hostCallBench sets up a noop VM with an open request header map and
// runs body b.N times inside the worker, the way a guest's host call
// reaches the host. Guest-side SDK work is not included.
func hostCallBench(b *testing.B, body func(vm *VM, guest func([]byte) uint32, m *headerMap)) {
	h := startNoop(b, http.NotFoundHandler())
	w := h.workers[0]
	w.call(func() {
		vm := w.plugins[0].vm
		s := &Stream{host: h, w: w, filterState: map[string][]byte{}}
		s.headers[dec] = newHeaderMap([]abi.Pair{{Key: ":path", Value: "/api/users/1"}, {Key: "x-request-id", Value: "0195f2b4-7c1e-7000-8000-000000000000"}})
		f := &filterStream{s: s, vm: vm}
		f.mapOpen[dec] = true
		vm.active = f
		guest := func(data []byte) uint32 {
			p, _ := vm.malloc(uint32(len(data)))
			vm.mem.Write(p, data)
			return p
		}
		// The guest's heap grows to its working size on the first
		// allocations of a fresh VM; that is not the host call's cost.
		for i := 0; i < 100000; i++ {
			vm.malloc(36)
		}
		b.ReportAllocs()
		b.ResetTimer()
		report := cpuPerOp(b)
		body(vm, guest, s.headers[dec])
		b.StopTimer()
		report()
		vm.active = nil
	})
}

// BenchmarkHostCall measures the host's side of one proxy-wasm call, the
// way a guest's proxy_get_header_map_value reaches it: read the key from
// guest memory, look it up, allocate in the guest (a call back into the
// module) and copy the value out.
func BenchmarkHostCall(b *testing.B) {
	hostCallBench(b, func(vm *VM, guest func([]byte) uint32, _ *headerMap) {
		key := []byte("x-request-id")
		kp := guest(key)
		out := guest(make([]byte, 8))
		stack := []uint64{uint64(abi.RequestHeaders), uint64(kp), uint64(len(key)), uint64(out), uint64(out + 4)}
		for i := 0; i < b.N; i++ {
			if st := hcGetMapValue(vm, stack); st != abi.OK {
				b.Fatalf("status %v", st)
			}
		}
	})
}

// BenchmarkHostCallKind is the host's side of each kind of call a filter
// makes on its hot path.
func BenchmarkHostCallKind(b *testing.B) {
	b.Run("get-header-missing", func(b *testing.B) {
		hostCallBench(b, func(vm *VM, guest func([]byte) uint32, _ *headerMap) {
			key := []byte("Authorization")
			kp := guest(key)
			out := guest(make([]byte, 8))
			stack := []uint64{uint64(abi.RequestHeaders), uint64(kp), uint64(len(key)), uint64(out), uint64(out + 4)}
			for i := 0; i < b.N; i++ {
				if st := hcGetMapValue(vm, stack); st != abi.NotFound {
					b.Fatalf("status %v", st)
				}
			}
		})
	})
	for _, kind := range []string{"add", "replace", "remove"} {
		b.Run(kind+"-header", func(b *testing.B) {
			hostCallBench(b, func(vm *VM, guest func([]byte) uint32, m *headerMap) {
				key, val := []byte("X-Concierge-Id"), []byte("0195f2b4-7c1e-7000-8000-000000000000")
				kp, vp := guest(key), guest(val)
				stack := []uint64{uint64(abi.RequestHeaders), uint64(kp), uint64(len(key)), uint64(vp), uint64(len(val))}
				base := len(m.pairs)
				for i := 0; i < b.N; i++ {
					if st := benchEditMap(vm, stack, kind); st != abi.OK {
						b.Fatalf("status %v", st)
					}
					m.pairs = m.pairs[:base]
				}
			})
		})
	}
	b.Run("get-map-pairs", func(b *testing.B) {
		hostCallBench(b, func(vm *VM, guest func([]byte) uint32, _ *headerMap) {
			out := guest(make([]byte, 8))
			stack := []uint64{uint64(abi.RequestHeaders), uint64(out), uint64(out + 4)}
			for i := 0; i < b.N; i++ {
				if st := hcGetMapPairs(vm, stack); st != abi.OK {
					b.Fatalf("status %v", st)
				}
			}
		})
	})
	// The call back into the guest alone: proxy_on_memory_allocate, which
	// every call returning data makes (the Go SDK's allocator, inside the
	// VM), the floor under get-header-value.
	b.Run("guest-malloc", func(b *testing.B) {
		hostCallBench(b, func(vm *VM, _ func([]byte) uint32, _ *headerMap) {
			for i := 0; i < b.N; i++ {
				if _, ok := vm.malloc(36); !ok {
					b.Fatal("malloc trapped")
				}
			}
		})
	})
	b.Run("increment-metric", func(b *testing.B) {
		hostCallBench(b, func(vm *VM, guest func([]byte) uint32, _ *headerMap) {
			name := []byte("concierge_bench_total")
			np := guest(name)
			out := guest(make([]byte, 4))
			if st := hcDefineMetric(vm, []uint64{uint64(abi.Counter), uint64(np), uint64(len(name)), uint64(out)}); st != abi.OK {
				b.Fatalf("define: %v", st)
			}
			id, _ := vm.mem.ReadUint32Le(out)
			stack := []uint64{uint64(id), 1}
			for i := 0; i < b.N; i++ {
				if st := hcIncrementMetric(vm, stack); st != abi.OK {
					b.Fatalf("status %v", st)
				}
			}
		})
	})
}

// BenchmarkStream is one request through a no-op filter on the engine,
// without hosttest's wrapping: stream start to end with an upstream
// answering 200, the same with a 1 KiB request body chunk, and a local
// reply (the router's 503 when there is no upstream, which runs through
// the filter's encode path like a filter's own reply).
func BenchmarkStream(b *testing.B) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	run := func(b *testing.B, up http.Handler, req Request, status int) {
		h := startNoop(b, up)
		b.ReportAllocs()
		b.ResetTimer()
		defer cpuPerOp(b)()
		for i := 0; i < b.N; i++ {
			r, done := h.NewStream(req).Do(streamWait)
			if !done || r.Status != status {
				b.Fatalf("status %d, done %v", r.Status, done)
			}
		}
	}
	get := []abi.Pair{{Key: ":method", Value: "GET"}, {Key: ":path", Value: "/api/users/1"}, {Key: ":authority", Value: "api.local"}, {Key: ":scheme", Value: "http"}}
	post := append([]abi.Pair{{Key: ":method", Value: "POST"}}, get[1:]...)
	b.Run("headers-only", func(b *testing.B) { run(b, ok, Request{Headers: get}, 200) })
	b.Run("body-chunk", func(b *testing.B) { run(b, ok, Request{Headers: post, Body: [][]byte{make([]byte, 1024)}}, 200) })
	b.Run("local-reply", func(b *testing.B) { run(b, nil, Request{Headers: get}, 503) })
}
