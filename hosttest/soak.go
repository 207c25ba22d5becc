package hosttest

import (
	"fmt"
	"strings"
	"testing"
)

// Soak describes a bounded soak run: many requests through one host while
// the VMs' linear memory is sampled. Wasm memory never shrinks, so the
// maximum over the run is what a worker costs for good.
type Soak struct {
	Requests int                            // how many requests (bounded: no open-ended loops)
	Request  func(i int) *Request           // the i-th request
	Check    func(i int, r *Response) error // optional per-response check
	// MaxMemoryBytes fails the test when any VM of any filter ends larger.
	MaxMemoryBytes uint64
	// SampleEvery is how often memory is sampled (default every 1000 requests).
	SampleEvery int
}

// SoakReport is what a soak run measured.
type SoakReport struct {
	Requests int
	// Memory per filter: the largest VM's linear memory at each sample.
	Samples map[string][]uint64
	Start   map[string]uint64
	Max     map[string]uint64
	Errors  int
}

func (r SoakReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d requests", r.Requests)
	for f, max := range r.Max {
		fmt.Fprintf(&b, "; %s: %.1f MiB at start, %.1f MiB max", f, float64(r.Start[f])/(1<<20), float64(max)/(1<<20))
	}
	return b.String()
}

// RunSoak sends spec.Requests requests one after another and fails the
// test if a check fails or memory passes spec.MaxMemoryBytes.
func RunSoak(t testing.TB, h *Host, spec Soak) SoakReport {
	t.Helper()
	if spec.Requests <= 0 || spec.Request == nil {
		t.Fatal("hosttest.RunSoak: Requests and Request are required")
	}
	every := spec.SampleEvery
	if every <= 0 {
		every = 1000
	}
	rep := SoakReport{Requests: spec.Requests, Samples: map[string][]uint64{}, Start: map[string]uint64{}, Max: map[string]uint64{}}
	sample := func() {
		for _, f := range h.Filters() {
			var max uint64
			for _, m := range h.MemoryBytes(f) {
				max = maxU64(max, m)
			}
			if _, ok := rep.Start[f]; !ok {
				rep.Start[f] = max
			}
			rep.Samples[f] = append(rep.Samples[f], max)
			rep.Max[f] = maxU64(rep.Max[f], max)
		}
	}
	sample()
	for i := 0; i < spec.Requests; i++ {
		resp := h.Do(spec.Request(i))
		if spec.Check != nil {
			if err := spec.Check(i, resp); err != nil {
				rep.Errors++
				if rep.Errors <= 5 {
					t.Errorf("soak request %d: %v", i, err)
				}
			}
		}
		if (i+1)%every == 0 {
			sample()
		}
	}
	sample()
	if spec.MaxMemoryBytes > 0 {
		for f, max := range rep.Max {
			if max > spec.MaxMemoryBytes {
				t.Errorf("soak: filter %q grew to %d bytes of linear memory, over the bound of %d; samples every %d requests: %v",
					f, max, spec.MaxMemoryBytes, every, rep.Samples[f])
			}
		}
	}
	return rep
}

func maxU64(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}
