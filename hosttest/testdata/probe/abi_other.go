//go:build !wasm

package main

// proxySendLocalResponse lets the probe compile natively (editors, vet
// without GOOS=wasip1); there is no host there, so it reports unimplemented.
func proxySendLocalResponse(uint32, *byte, int32, *byte, int32, *byte, int32, int32) uint32 {
	return 12
}

// randomGet has no host natively either.
func randomGet(*byte, uint32) uint32 { return 52 }
