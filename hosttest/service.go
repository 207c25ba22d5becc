package hosttest

import (
	"sort"

	"github.com/concierge-wasm/concierge/hosttest/internal/engine"
)

// Singleton adds an Envoy WasmService with singleton: true
// (bootstrap_extensions envoy.bootstrap.wasm): f's root context runs on
// the main thread only, with no stream, sharing the host's clock, shared
// data and queues — the usual consumer of a queue the filters enqueue to
// (resolved by f's VMID). Its log lines and traps count with the host's;
// its metrics are its own. Logs waits for the services to run
// what was posted to them. A service has a VM of its own even when its
// vm_config matches a filter's (Envoy would share that VM on the main
// thread).
func Singleton(f Filter) Option { return func(s *settings) { s.services = append(s.services, f) } }

func (h *Host) startServices(base engine.Options) error {
	for _, f := range h.s.services {
		fc, err := filterConfig(f)
		if err != nil {
			return err
		}
		o := base
		o.Filters, o.MainThreadOnly, o.ShareWith = []engine.FilterConfig{fc}, true, h.e
		e, err := engine.Start(o)
		if err != nil {
			return err
		}
		h.svc = append(h.svc, e)
	}
	return nil
}

func (h *Host) allLogs() []Log {
	logs := h.e.Logs()
	if len(h.svc) == 0 {
		return logs
	}
	for _, svc := range h.svc {
		svc.Sync() // what the filters enqueued has been consumed
		logs = append(logs, svc.Logs()...)
	}
	sort.SliceStable(logs, func(i, j int) bool { return logs[i].Time.Before(logs[j].Time) })
	return logs
}

func (h *Host) traps() []engine.Trap {
	traps := h.e.Traps()
	for _, svc := range h.svc {
		traps = append(traps, svc.Traps()...)
	}
	return traps
}
