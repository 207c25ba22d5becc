package main

import (
	"slices"
	"strconv"
	"strings"
	"time"
)

// Envoy's response flags (the response.flags attribute, %RESPONSE_FLAGS%)
// that mean the upstream failed to answer: bits in CoreResponseFlag order.
const (
	flagNoHealthyUpstream             = 1 << 1 // UH
	flagUpstreamRequestTimeout        = 1 << 2 // UT
	flagUpstreamRemoteReset           = 1 << 4 // UR
	flagUpstreamConnectionFailure     = 1 << 5 // UF
	flagUpstreamConnectionTermination = 1 << 6 // UC

	upstreamFailureFlags = flagNoHealthyUpstream | flagUpstreamRequestTimeout | flagUpstreamRemoteReset |
		flagUpstreamConnectionFailure | flagUpstreamConnectionTermination
)

// viaUpstream is Envoy's response code details for a response the
// upstream sent.
const viaUpstream = "via_upstream"

// response is what the filter learns of a request's answer from the host.
type response struct {
	status  int
	details string // response.code_details
	flags   uint64 // response.flags
	elapsed time.Duration
}

// classify judges a response as a breaker outcome. A response the upstream
// sent is a failure when its status is in failure_statuses or, with
// slow_call, when it took longer than slow_call.duration to start. The
// router's answers for an upstream that did not answer (connection
// failure, reset, route timeout, no healthy host) are failures. Every
// other local reply — another filter's 401 or 429, a 404 for no route,
// this filter's own 503 — is no outcome: it says nothing about the
// backend. why explains a failure for the transition log line.
func classify(r response, p *policy) (o outcome, why string) {
	if r.details == viaUpstream {
		if slices.Contains(p.failureStatuses, r.status) {
			return failure, "status " + strconv.Itoa(r.status)
		}
		if p.slowCall > 0 && r.elapsed > p.slowCall {
			return failure, "slow call: " + r.elapsed.Round(time.Millisecond).String() + " > " + p.slowCall.String()
		}
		return success, ""
	}
	if r.flags&upstreamFailureFlags != 0 || strings.HasPrefix(r.details, "upstream_reset_") ||
		r.details == "response_timeout" {
		return failure, "no response from upstream (" + r.details + ")"
	}
	return noOutcome, ""
}
