package main

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// mapShared is shared data for the native benchmarks: Envoy's CAS rules
// on a plain map, with the copy a host makes when it hands a value to the
// guest, and no lock (one VM runs one callback at a time).
type mapShared struct {
	data map[string]*fakeEntry
	next uint32
}

func (m *mapShared) get(key string) ([]byte, uint32, bool) {
	e, ok := m.data[key]
	if !ok {
		return nil, 0, false
	}
	return append([]byte(nil), e.val...), e.cas, true
}

func (m *mapShared) set(key string, val []byte, cas uint32) (bool, error) {
	if e, ok := m.data[key]; ok && cas != 0 && cas != e.cas {
		return true, nil
	}
	m.next++
	e, ok := m.data[key]
	if !ok {
		e = &fakeEntry{}
		m.data[strings.Clone(key)] = e // the store reuses its key buffers
	}
	e.val = append(e.val[:0], val...)
	e.cas = m.next
	return false, nil
}

// benchConfig never denies: the benchmarks measure the allowed path.
const benchConfig = `{"limits":[{"max_tokens":1000000000,"tokens_per_fill":1000000000,"fill_interval":"1s"}],"key":["identity","ip"],"headers":"x-ratelimit"}`

// BenchmarkDecision is the filter's Go logic for one allowed request,
// natively: key building, the shared-data slot update and the response
// headers. The hosttest benchmarks (BenchmarkFilter) run the same through
// the compiled module; the ratio is the wasm tax.
func BenchmarkDecision(b *testing.B) {
	cfg, err := parseConfig([]byte(benchConfig))
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		keys int
	}{{"hot-key", 1}, {"100k-keys", 100000}} {
		b.Run(c.name, func(b *testing.B) {
			lm := &limiter{cfg: &cfg, store: newStore(&mapShared{data: map[string]*fakeEntry{}}, "rate-limit", cfg.maxKeys, nil)}
			peers := make([]string, c.keys)
			for i := range peers {
				peers[i] = "10." + strconv.Itoa(i>>16&255) + "." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255) + ":4000"
			}
			now := time.Unix(1_800_000_000, 0)
			var headers [][2]string
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				in := keyInput{peer: peers[i%len(peers)], method: "GET", path: "/api/users/1"}
				r := lm.check(&cfg.policy, "", &in, now)
				if !r.allowed {
					b.Fatal("denied")
				}
				headers = appendHeaders(headers[:0], cfg.headers, r.set.limits, &r.verdict)
				i++
				now = now.Add(time.Microsecond)
			}
		})
	}
}

// BenchmarkBucket is the bucket arithmetic alone.
func BenchmarkBucket(b *testing.B) {
	ls := []limit{mustLimit(b, 100, 10, time.Second), mustLimit(b, 1000, 1000, time.Hour)}
	bs := []bucket{ls[0].full(0), ls[1].full(0)}
	now := int64(0)
	b.ReportAllocs()
	for b.Loop() {
		now += int64(time.Millisecond)
		take(ls, bs, now)
	}
}
