//go:build wasip1

package main

import (
	"io"
	"syscall"
)

// hostRand is the host's randomness: WASI random_get (Envoy's RAND_bytes;
// seeded by hosttest).
//
// It calls random_get directly instead of going through crypto/rand, which
// reads the same source but, on its first Read, arms a one-minute
// time.AfterFunc (a warning for a kernel short of entropy). Any timer makes
// the Go runtime initialise its netpoller, and from then on every GC calls
// poll_oneoff, which Envoy 1.33–1.37 refuses (ENOSYS): the VM aborts with
// "fatal error: poll_oneoff failed" at its next GC. TestGCAfterRandomness
// and TestSoak reproduce it under hosttest's Envoy133 profile.
var hostRand io.Reader = wasiRandom{}

type wasiRandom struct{}

// Read fills b; Envoy allows at most 64 KiB per call, and the filter asks
// for at most 24 bytes.
func (wasiRandom) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	if err := syscall.RandomGet(b); err != nil {
		return 0, err
	}
	return len(b), nil
}
