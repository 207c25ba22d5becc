// Command alloc is a proxy-wasm HTTP filter that produces ~256 KiB of garbage
// per request (several byte buffers plus a 200-entry map). The soak test
// runs many requests on one VM and checks that linear memory stays bounded,
// i.e. that the Go GC really reclaims per-request garbage under the host.
package main

import (
	"strconv"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetHttpContext(func(uint32) types.HttpContext {
		return &allocContext{}
	})
}

// bufSizes add up to 256 KiB. They are a variable rather than constants so
// that every make below is a heap allocation: a small constant-size buffer
// that does not escape could be put on the stack and never reach the GC.
var bufSizes = []int{128 << 10, 64 << 10, 32 << 10, 16 << 10, 16 << 10}

type allocContext struct {
	types.DefaultHttpContext
}

func (*allocContext) OnHttpRequestHeaders(int, bool) types.Action {
	var sum uint64
	for _, n := range bufSizes {
		// make zeroes the whole buffer; touching one byte in 512 keeps
		// the work observable without spending the soak test's time on
		// arithmetic in the guest.
		b := make([]byte, n)
		for i := 0; i < len(b); i += 512 {
			b[i] = byte(i/512*7 + 1)
		}
		for i := 0; i < len(b); i += 512 {
			sum = sum*31 + uint64(b[i])
		}
	}
	m := make(map[string]int, 200)
	for i := 0; i < 200; i++ {
		m[strconv.Itoa(i)] = i
	}
	// Addition is order-independent, so the random map iteration order does
	// not matter and the checksum is the same for every request.
	for k, v := range m {
		sum += uint64(len(k) + v)
	}
	// Publishing the checksum keeps the work observable, so nothing above can
	// be optimised away, and lets the test check that the VM still computes.
	if err := proxywasm.ReplaceHttpRequestHeader("x-alloc-sum", strconv.FormatUint(sum, 10)); err != nil {
		proxywasm.LogErrorf("alloc: set x-alloc-sum: %v", err)
	}
	return types.ActionContinue
}
