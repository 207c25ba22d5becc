package envoy

import (
	"testing"

	"github.com/concierge-wasm/concierge/hosttest"
)

// TestNoFilterFailsClosedForGood: no shipped filter uses FAIL_CLOSED (or
// Istio's FAIL_CLOSE): after one guest panic it answers 503 on every route
// of that worker until Envoy restarts. A security filter ships FAIL_RELOAD
// (503 for the failing request, a fresh VM after the backoff); a filter
// that is not a security control may ship FAIL_OPEN.
func TestNoFilterFailsClosedForGood(t *testing.T) {
	for _, w := range allWasm(t) {
		if w.failure == hosttest.FailClosed {
			t.Errorf("%s: failure policy FAIL_CLOSED: one panic takes its routes down for good; ship FAIL_RELOAD (or FAIL_OPEN for a filter that is no security control)", w.where)
		}
	}
}
