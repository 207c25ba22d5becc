package main

import "testing"

// FuzzParseConfig: parseConfig never panics, and whatever it accepts is
// usable: every limit set is non-empty with prepared, positive buckets,
// max_keys in range, a key to build, a complete global section.
//
//	go test -run '^$' -fuzz FuzzParseConfig -fuzztime 60s ./plugins/rate-limit/
func FuzzParseConfig(f *testing.F) {
	f.Add(fullConfig)
	f.Add(`{"limits":[{"max_tokens":100,"fill_interval":"1s"}]}`)
	f.Add(`{"limits":[{"requests":1,"per":"1ns"}],"key":["header:x+route+path+method"]}`)
	f.Add(`{"limits":[{"max_tokens":1099511627776,"tokens_per_fill":7,"fill_interval":"2562047h"}]}`)
	f.Add(`{"limits":[{"requests":5,"per":"1m"}],"overrides":[{"identity":"*","limits":[{"requests":1,"per":"1s"}]}],"rules":[{"limits":[{"requests":2,"per":"1h"}]}]}`)
	f.Add(`{"limits":[{"requests":5,"per":"1m"}],"global":{"cluster":"c","domain":"d","timeout":"1ns"}}`)
	f.Fuzz(func(t *testing.T, data string) {
		c, err := parseConfig([]byte(data))
		if err != nil {
			return
		}
		if c.maxKeys < 1 || c.maxKeys > maxMaxKeys || len(c.key) == 0 {
			t.Fatalf("accepted %s: max_keys %d, %d key alternatives", data, c.maxKeys, len(c.key))
		}
		for _, s := range c.sets {
			if len(s.limits) == 0 || len(s.limits) > maxLimitsPerSet {
				t.Fatalf("accepted %s: a limit set of %d", data, len(s.limits))
			}
			for _, l := range s.limits {
				if l.capacity <= 0 || l.tokenCost <= 0 || l.perNano <= 0 || l.capacity > maxCapacity || !validName(l.name) {
					t.Fatalf("accepted %s: limit %+v", data, l)
				}
				// The arithmetic holds at the extremes of time.
				b := l.refill(bucket{credit: 0, last: 0}, 1<<62)
				if b.credit != l.capacity || l.untilToken(bucket{}) <= 0 || l.untilFull(bucket{}) < l.untilToken(bucket{}) {
					t.Fatalf("accepted %s: limit %+v refills to %+v", data, l, b)
				}
			}
		}
		if g := c.global; g != nil && (g.cluster == "" || g.domain == "" || g.timeout <= 0 || g.path == "" || g.path[0] != '/') {
			t.Fatalf("accepted %s: global %+v", data, g)
		}
	})
}
