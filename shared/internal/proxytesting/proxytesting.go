//go:build !wasm

// Package proxytesting runs a few lines of filter code inside one HTTP
// stream of the SDK's proxytest emulator, so that the thin proxywasm
// wrappers in shared/ are tested against real SDK calls natively.
//
// proxytest is process-global (one emulator behind a mutex), so tests that
// use it cannot run in parallel; keep them to the wrappers and test the pure
// logic beside them without it. The hosttest package is the faithful host
// for everything else. It does not build for wasm, hence the build tag.
package proxytesting

import (
	"testing"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

// Stream is one emulated HTTP stream.
type Stream struct {
	Host proxytest.HostEmulator
	ID   uint32
}

// Property is a host property preset for the stream.
type Property struct {
	Path  []string
	Value []byte
}

// NewStream starts an emulator with the given properties and one HTTP stream
// whose OnHttpRequestHeaders calls onHeaders with the given request headers.
// The emulator is released when the test ends.
func NewStream(t testing.TB, headers [][2]string, onHeaders func(), props ...Property) Stream {
	t.Helper()
	opt := proxytest.NewEmulatorOption().WithHttpContext(func(uint32) types.HttpContext {
		return &httpContext{onHeaders: onHeaders}
	})
	for _, p := range props {
		opt = opt.WithProperty(p.Path, p.Value)
	}
	host, reset := proxytest.NewHostEmulator(opt)
	t.Cleanup(reset)
	id := host.InitializeHttpContext()
	host.CallOnRequestHeaders(id, headers, false)
	return Stream{Host: host, ID: id}
}

// NewTrailerStream is NewStream for request trailers: the stream gets
// headers-only request headers, then trailers, and its
// OnHttpRequestTrailers calls onTrailers.
func NewTrailerStream(t testing.TB, trailers [][2]string, onTrailers func()) Stream {
	t.Helper()
	opt := proxytest.NewEmulatorOption().WithHttpContext(func(uint32) types.HttpContext {
		return &httpContext{onTrailers: onTrailers}
	})
	host, reset := proxytest.NewHostEmulator(opt)
	t.Cleanup(reset)
	id := host.InitializeHttpContext()
	host.CallOnRequestHeaders(id, [][2]string{{":path", "/"}}, false)
	host.CallOnRequestTrailers(id, trailers)
	return Stream{Host: host, ID: id}
}

type httpContext struct {
	types.DefaultHttpContext
	onHeaders, onTrailers func()
}

func (c *httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	if c.onHeaders != nil {
		c.onHeaders()
	}
	return types.ActionContinue
}

func (c *httpContext) OnHttpRequestTrailers(int) types.Action {
	if c.onTrailers != nil {
		c.onTrailers()
	}
	return types.ActionContinue
}
