package engine

import (
	"sort"
	"sync"

	"github.com/concierge-wasm/concierge/hosttest/internal/abi"
)

// sharedStore is Envoy's shared data: one map per vm_id, shared by every VM
// with that vm_id on every thread, with one global CAS counter
// (proxy-wasm-cpp-host src/shared_data.cc).
type sharedStore struct {
	mu   sync.Mutex
	cas  uint32
	byVM map[string]map[string]sharedEntry
}

type sharedEntry struct {
	value []byte
	cas   uint32
}

func (s *sharedStore) init() { s.byVM = map[string]map[string]sharedEntry{} }

func (s *sharedStore) nextCas() uint32 {
	s.cas++
	if s.cas == 0 { // 0 means "no CAS" on the wire, so the counter skips it on wrap
		s.cas = 1
	}
	return s.cas
}

func (s *sharedStore) get(vmID, key string) ([]byte, uint32, abi.Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.byVM[vmID]
	if !ok {
		return nil, 0, abi.NotFound
	}
	e, ok := m[key]
	if !ok {
		return nil, 0, abi.NotFound
	}
	return append([]byte(nil), e.value...), e.cas, abi.OK
}

// set stores value unless the key exists and cas is non-zero and stale.
// A new key ignores cas, and cas 0 is an unconditional write, as in Envoy.
func (s *sharedStore) set(vmID, key string, value []byte, cas uint32) abi.Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.byVM[vmID]
	if !ok {
		m = map[string]sharedEntry{}
		s.byVM[vmID] = m
	}
	if e, ok := m[key]; ok && cas != 0 && cas != e.cas {
		return abi.CasMismatch
	}
	m[key] = sharedEntry{value: append([]byte(nil), value...), cas: s.nextCas()}
	return abi.OK
}

func (s *sharedStore) keys(vmID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k := range s.byVM[vmID] {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (s *sharedStore) size(vmID string) (n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, e := range s.byVM[vmID] {
		n += len(k) + len(e.value)
	}
	return n
}

// SharedGet reads a shared-data key of a vm_id as a guest would.
func (h *Host) SharedGet(vmID, key string) (value []byte, cas uint32, ok bool) {
	v, c, st := h.shared.get(vmID, key)
	return v, c, st == abi.OK
}

// SharedSet writes a shared-data key with Envoy's CAS rules; it reports
// false on a CAS mismatch.
func (h *Host) SharedSet(vmID, key string, value []byte, cas uint32) bool {
	return h.shared.set(vmID, key, value, cas) == abi.OK
}

// SharedKeys lists the keys of a vm_id, sorted.
func (h *Host) SharedKeys(vmID string) []string { return h.shared.keys(vmID) }

// SharedBytes is the total size of keys and values of a vm_id: what a
// bound on shared-data memory is measured against.
func (h *Host) SharedBytes(vmID string) int { return h.shared.size(vmID) }

// Queues (cpp-host src/shared_queue.cc).
type queueKey struct{ vmID, name string }

type queue struct {
	id     uint32
	key    queueKey
	items  [][]byte
	target *plugin // the last registrant's root context gets on_queue_ready
}

// queueStore holds the queues of one host, or of several sharing it.
type queueStore struct {
	mu    sync.Mutex
	seq   uint32
	byKey map[queueKey]*queue
	byID  map[uint32]*queue
}

func newQueueStore() *queueStore {
	return &queueStore{byKey: map[queueKey]*queue{}, byID: map[uint32]*queue{}}
}

func (h *Host) registerQueue(vm *VM, name string) uint32 {
	qs := h.queues
	qs.mu.Lock()
	defer qs.mu.Unlock()
	k := queueKey{vm.base.VMID, name}
	q, ok := qs.byKey[k]
	if !ok {
		qs.seq++
		q = &queue{id: qs.seq, key: k}
		qs.byKey[k] = q
		qs.byID[q.id] = q
	}
	q.target = vm.plug
	return q.id
}

func (h *Host) resolveQueue(vmID, name string) (uint32, bool) {
	h.queues.mu.Lock()
	defer h.queues.mu.Unlock()
	q, ok := h.queues.byKey[queueKey{vmID, name}]
	if !ok {
		return 0, false
	}
	return q.id, true
}

func (h *Host) enqueue(id uint32, data []byte) abi.Status {
	h.queues.mu.Lock()
	q, ok := h.queues.byID[id]
	if !ok {
		h.queues.mu.Unlock()
		return abi.NotFound
	}
	q.items = append(q.items, append([]byte(nil), data...))
	target := q.target
	h.queues.mu.Unlock()
	// Envoy posts the notification to the registrant's dispatcher: it never
	// runs inside the enqueuing call.
	target.vm.w.post(func() { target.onQueueReady(id) })
	return abi.OK
}

func (h *Host) dequeue(id uint32) ([]byte, abi.Status) {
	h.queues.mu.Lock()
	defer h.queues.mu.Unlock()
	q, ok := h.queues.byID[id]
	if !ok {
		return nil, abi.NotFound
	}
	if len(q.items) == 0 {
		return nil, abi.Empty
	}
	v := q.items[0]
	q.items = q.items[1:]
	return v, abi.OK
}

// Metrics live in one store for the whole host, aggregated by name across
// VMs, as Envoy's stats store does; ids are per VM.
type metricStore struct {
	mu     sync.Mutex
	byName map[string]*metric
}

type metric struct {
	name    string
	typ     abi.MetricType
	value   int64
	count   uint64
	sum     uint64
	samples []uint64
}

const maxHistogramSamples = 10000

func (m *metricStore) init() { m.byName = map[string]*metric{} }

func (m *metricStore) define(name string, typ abi.MetricType) *metric {
	m.mu.Lock()
	defer m.mu.Unlock()
	x, ok := m.byName[name]
	if !ok {
		x = &metric{name: name, typ: typ}
		m.byName[name] = x
	}
	return x
}

// MetricValue is a snapshot of one metric.
type MetricValue struct {
	Name    string
	Type    string // "counter", "gauge", "histogram"
	Value   int64  // counters and gauges
	Count   uint64 // histograms
	Sum     uint64
	Samples []uint64
}

func (x *metric) snapshot() MetricValue {
	t := [...]string{"counter", "gauge", "histogram"}[x.typ]
	return MetricValue{Name: x.name, Type: t, Value: x.value, Count: x.count, Sum: x.sum, Samples: append([]uint64(nil), x.samples...)}
}

// Metric returns a metric by name.
func (h *Host) Metric(name string) (MetricValue, bool) {
	h.metrics.mu.Lock()
	defer h.metrics.mu.Unlock()
	x, ok := h.metrics.byName[name]
	if !ok {
		return MetricValue{}, false
	}
	return x.snapshot(), true
}

// Metrics returns every metric, sorted by name.
func (h *Host) Metrics() []MetricValue {
	h.metrics.mu.Lock()
	defer h.metrics.mu.Unlock()
	out := make([]MetricValue, 0, len(h.metrics.byName))
	for _, x := range h.metrics.byName {
		out = append(out, x.snapshot())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
