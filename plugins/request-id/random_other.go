//go:build !wasip1

package main

import (
	"crypto/rand"
	"io"
)

// hostRand outside wasm (native tests and tools) is crypto/rand; in the
// plugin it is WASI random_get (random_wasip1.go).
var hostRand io.Reader = rand.Reader
