//go:build wasip1

package main

// The Go SDK gives gauges only Add (proxy_increment_metric). A breaker's
// state gauge must be set, not added to: every worker VM reports the same
// breaker into one process-wide stat, and additions from several VMs
// would sum their views. proxy_record_metric on a gauge sets it (Envoy
// and proxy-wasm ABI 0.2.1), so the filter imports it itself.

//go:wasmimport env proxy_record_metric
func proxyRecordMetric(metricID uint32, value uint64) uint32

// setGauge sets a gauge defined with proxywasm.DefineGaugeMetric.
func setGauge(id uint32, v int64) bool { return proxyRecordMetric(id, uint64(v)) == 0 }
