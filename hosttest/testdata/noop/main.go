// Command noop is a proxy-wasm HTTP filter that does nothing: every callback
// comes from types.DefaultHttpContext and returns Continue. It measures the
// per-request cost floor of the host (context create, callbacks, delete).
package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetHttpContext(func(uint32) types.HttpContext {
		return &types.DefaultHttpContext{}
	})
}
