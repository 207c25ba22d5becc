// Command identity-reader is a test filter that sits after jwt-auth in a
// hosttest chain and reads the verified identity the way later concierge
// filters do (shared/identity.Get), reporting it to the upstream:
//
//	x-identity:       the property's bytes, "none" when absent, or "error: <err>"
//	x-identity-subject: the decoded Subject (only when the property decodes)
//
// (hosttest's probe cannot read this property: its get-prop verb splits
// the path on '.', and the property is the single segment
// "concierge.identity".)
package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/concierge-wasm/concierge/shared/identity"
)

func main() {}

func init() {
	proxywasm.SetHttpContext(func(uint32) types.HttpContext { return &reader{} })
}

type reader struct{ types.DefaultHttpContext }

func (*reader) OnHttpRequestHeaders(int, bool) types.Action {
	id, ok, err := identity.Get()
	switch {
	case err != nil:
		proxywasm.AddHttpRequestHeader("x-identity", "error: "+err.Error())
	case !ok:
		proxywasm.AddHttpRequestHeader("x-identity", "none")
	default:
		proxywasm.AddHttpRequestHeader("x-identity", string(identity.Encode(&id)))
		proxywasm.AddHttpRequestHeader("x-identity-subject", id.Subject)
	}
	return types.ActionContinue
}
