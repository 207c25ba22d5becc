package engine

// Sync waits until the main thread and every worker have run what was
// posted to them so far (queue notifications, deferred actions): after it,
// a WasmService has seen what the filters enqueued before the call.
func (h *Host) Sync() {
	for _, w := range append([]*worker{h.main}, h.workers...) {
		w.call(func() {})
	}
}
