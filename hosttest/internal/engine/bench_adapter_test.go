package engine

import (
	"time"

	"github.com/concierge-wasm/concierge/hosttest/internal/abi"
)

const streamWait = 10 * time.Second

// benchEditMap names the edit the way the benchmarks do, so that they run
// unchanged against an older engine when comparing side by side.
func benchEditMap(vm *VM, s []uint64, kind string) abi.Status {
	op := mapAdd
	switch kind {
	case "replace":
		op = mapReplace
	case "remove":
		op = mapRemove
	}
	return hcEditMap(vm, s, op)
}
