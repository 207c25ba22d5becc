// Package envoy holds concierge's deployment configurations and the tests
// that keep them honest: envoy.yaml (a production-shaped Envoy bootstrap),
// local.yaml (the same shape on loopback, served by `make run`) and
// istio/*.yaml (one WasmPlugin per filter).
//
// `go test ./envoy/` parses every YAML here into Envoy's own v3 protos
// (go-control-plane) or Istio's (istio.io/api), runs their validation,
// checks that every wasm module path names a plugin of this repository, and
// starts each filter in hosttest with the exact configuration the file gives
// it, so a shipped configuration that a filter would refuse fails the tests.
package envoy
