package hosttest

// Singleton adds an Envoy WasmService with singleton: true
// (bootstrap_extensions envoy.bootstrap.wasm): f's root context runs on
// the main thread only, with no stream, sharing the host's clock, shared
// data and queues — the usual consumer of a queue the filters enqueue to
// (resolved by f's VMID). Its log lines, traps and metrics count with the
// host's; Logs waits for the main thread to run what was posted to it.
// As in Envoy, services start after the filters (Envoy creates them once
// the listeners are configured), and a service whose vm_config matches a
// filter's joins that filter's VM on the main thread as a later root
// context; on the workers the filter's VM is without it. f's Name must
// differ from the filters'.
func Singleton(f Filter) Option { return func(s *settings) { s.services = append(s.services, f) } }
