//go:build !wasip1

package main

// setGauge has no host outside wasm; native tests do not run the wiring.
func setGauge(uint32, int64) bool { return false }
