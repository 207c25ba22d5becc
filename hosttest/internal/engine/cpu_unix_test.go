//go:build unix

package engine

import (
	"syscall"
	"testing"
	"time"
)

// cpuPerOp reports the process's CPU time per operation (cpu-ns/op) from
// now until the returned function runs. On a machine shared by many
// processes wall time mostly measures waiting for a core; CPU time is the
// cost, every goroutine and the GC included.
func cpuPerOp(b *testing.B) func() {
	start := processCPU()
	return func() {
		b.ReportMetric(float64((processCPU()-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
