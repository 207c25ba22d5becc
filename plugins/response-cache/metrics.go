package main

import "github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"

// metricPrefix starts every metric of this filter: concierge_<filter>_<what>.
const metricPrefix = "concierge_response_cache_"

// bypassReasons and notStoredReasons name the per-reason counters.
var (
	bypassReasons    = []string{"method", "no-store", "range"}
	notStoredReasons = []string{string(reasonMethod), string(reasonStatus), string(reasonNoStore), string(reasonPrivate),
		string(reasonAuthz), string(reasonSetCookie), string(reasonVaryStar), string(reasonNoFreshness), string(reasonRange),
		string(reasonUnkeyed), "too_large", "trailers"}
)

// metricNames lists every metric the filter defines, for README checks.
func metricNames() []string {
	names := []string{"hits_total", "misses_total", "shadow_hits_total", "stores_total", "evictions_total",
		"revalidations_total", "stale_on_error_total", "stale_while_revalidate_total", "coalesced_total", "invalidations_total", "purges_total", "purges_denied_total", "conflicts_total", "bytes_stored"}
	for _, r := range bypassReasons {
		names = append(names, "bypass_"+slug(r)+"_total")
	}
	for _, r := range notStoredReasons {
		names = append(names, "not_stored_"+slug(r)+"_total")
	}
	for i := range names {
		names[i] = metricPrefix + names[i]
	}
	return names
}

type metrics struct {
	hits, misses, shadowHits, stores, evictions, revalidations                                   proxywasm.MetricCounter
	invalidations, purges, purgeDenied, conflicts, staleOnError, staleWhileRevalidate, coalesced proxywasm.MetricCounter
	bytes                                                                                        proxywasm.MetricGauge
	byBypass, byNotStored                                                                        map[string]proxywasm.MetricCounter
}

func defineMetrics() metrics {
	m := metrics{
		hits:                 proxywasm.DefineCounterMetric(metricPrefix + "hits_total"),
		misses:               proxywasm.DefineCounterMetric(metricPrefix + "misses_total"),
		shadowHits:           proxywasm.DefineCounterMetric(metricPrefix + "shadow_hits_total"),
		stores:               proxywasm.DefineCounterMetric(metricPrefix + "stores_total"),
		evictions:            proxywasm.DefineCounterMetric(metricPrefix + "evictions_total"),
		revalidations:        proxywasm.DefineCounterMetric(metricPrefix + "revalidations_total"),
		staleOnError:         proxywasm.DefineCounterMetric(metricPrefix + "stale_on_error_total"),
		coalesced:            proxywasm.DefineCounterMetric(metricPrefix + "coalesced_total"),
		staleWhileRevalidate: proxywasm.DefineCounterMetric(metricPrefix + "stale_while_revalidate_total"),
		invalidations:        proxywasm.DefineCounterMetric(metricPrefix + "invalidations_total"),
		purges:               proxywasm.DefineCounterMetric(metricPrefix + "purges_total"),
		purgeDenied:          proxywasm.DefineCounterMetric(metricPrefix + "purges_denied_total"),
		conflicts:            proxywasm.DefineCounterMetric(metricPrefix + "conflicts_total"),
		bytes:                proxywasm.DefineGaugeMetric(metricPrefix + "bytes_stored"),
		byBypass:             map[string]proxywasm.MetricCounter{},
		byNotStored:          map[string]proxywasm.MetricCounter{},
	}
	for _, r := range bypassReasons {
		m.byBypass[r] = proxywasm.DefineCounterMetric(metricPrefix + "bypass_" + slug(r) + "_total")
	}
	for _, r := range notStoredReasons {
		m.byNotStored[r] = proxywasm.DefineCounterMetric(metricPrefix + "not_stored_" + slug(r) + "_total")
	}
	return m
}

func (m *metrics) bypass(reason string) {
	if c, ok := m.byBypass[reason]; ok {
		c.Increment(1)
	}
}

func (m *metrics) notStored(reason string) {
	if c, ok := m.byNotStored[reason]; ok {
		c.Increment(1)
	}
}

// slug turns a reason into a metric name part: "no-store" → "no_store".
func slug(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c == '-' {
			b[i] = '_'
		}
	}
	return string(b)
}

func (m *metrics) freed(bytes int64) {
	if bytes > 0 {
		m.bytes.Add(-bytes)
	}
}
