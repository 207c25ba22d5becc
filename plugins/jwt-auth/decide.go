package main

// What to do with a request once its token has been looked at: the
// decision, the RFC 6750 challenge of a denial, and the metric and log
// vocabulary of denial reasons. Plain Go; main.go carries it out.

import (
	"errors"
	"strconv"
	"strings"

	"github.com/concierge-wasm/concierge/shared/identity"
)

// outcomeKind is what happens to a request.
type outcomeKind uint8

const (
	// outAllow: a verified token that the route accepts.
	outAllow outcomeKind = iota
	// outAnonymous: no token, and the route's rule has allow_missing.
	outAnonymous
	// outDeny: 401 or 403 with a reason.
	outDeny
	// outNeedKeys: the token's provider has no remote keys yet (or they
	// went stale); wait for a fetch if one is coming, else deny.
	outNeedKeys
	// outUnknownKey: no remote key has the token's kid; an early JWKS
	// refresh may bring it.
	outUnknownKey
)

// outcome is the decision about one request.
type outcome struct {
	kind     outcomeKind
	status   int   // for outDeny: 401 or 403
	reason   error // for outDeny (and the waiting kinds, should waiting fail)
	provider int   // the token's provider, -1 when none was found
}

// judge decides about a request from the result of verifier.authenticate
// and the matched rule's override (nil when no rule matched).
func (c *config) judge(res authResult, err error, ov *ruleOverride) outcome {
	out := outcome{provider: res.provider, status: 401, reason: err}
	switch {
	case err == nil:
		switch {
		case !ov.allows(res.provider):
			out.kind, out.reason = outDeny, errIssuer
		case ov != nil && !ov.require.met(res.claims):
			out.kind, out.status, out.reason = outDeny, 403, errInsufficientScope
		default:
			out.kind, out.reason = outAllow, nil
		}
	case errors.Is(err, errMissingToken) && ov != nil && ov.allowMissing:
		out.kind, out.reason = outAnonymous, nil
	case errors.Is(err, errKeysUnavailable) && c.isRemote(res.provider):
		out.kind = outNeedKeys
	case errors.Is(err, errUnknownKey) && c.isRemote(res.provider):
		out.kind = outUnknownKey
	default:
		out.kind = outDeny
	}
	return out
}

func (c *config) isRemote(i int) bool {
	return i >= 0 && i < len(c.providers) && c.providers[i].remote != nil
}

// challenge is the WWW-Authenticate value of a denial (RFC 6750 §3):
//
//	Bearer realm="api"                                                          missing token
//	Bearer realm="api", error="invalid_token", error_description="token expired" bad token (401)
//	Bearer realm="api", error="insufficient_scope"                              unmet require (403)
//
// The realm parameter is left out when no realm is configured. Reasons are
// fixed strings without quotes or backslashes, so they need no escaping;
// the configured realm was checked for that at start.
func (c *config) challenge(status int, reason error) string {
	var b strings.Builder
	b.WriteString("Bearer")
	sep := " "
	if c.realm != "" {
		b.WriteString(` realm="`)
		b.WriteString(c.realm)
		b.WriteByte('"')
		sep = ", "
	}
	switch {
	case status == 403:
		b.WriteString(sep + `error="insufficient_scope"`)
	case !errors.Is(reason, errMissingToken):
		b.WriteString(sep + `error="invalid_token", error_description="`)
		b.WriteString(reason.Error())
		b.WriteByte('"')
	}
	return b.String()
}

// errSpoofedIdentity is the 400 of a request carrying its own identity
// headers when "spoofed_identity_headers" is "reject". It is not a token
// problem, so its denial has no challenge and no per-reason counter.
var errSpoofedIdentity = errors.New(identity.SpoofReason)

// reasonSlug turns a reason into its metric name part: "token not yet
// valid" → "token_not_yet_valid".
func reasonSlug(reason error) string { return strings.ReplaceAll(reason.Error(), " ", "_") }

// reasonMetric is the per-reason denial counter of reason.
func reasonMetric(reason error) string {
	return metricPrefix + "denied_" + reasonSlug(reason) + "_total"
}

// reasonIndex is reason's position in denialReasons, -1 for another error.
func reasonIndex(reason error) int {
	for i, r := range denialReasons {
		if r == reason {
			return i
		}
	}
	return -1
}

// metricPrefix starts every metric name of this filter (convention 8,
// README.md "Writing a filter").
const metricPrefix = "concierge_jwt_auth_"

// Metric names other than the per-reason denials.
const (
	metricAllowed   = metricPrefix + "allowed_total"
	metricDenied    = metricPrefix + "denied_total"
	metricAnonymous = metricPrefix + "anonymous_total"
	metricShadowed  = metricPrefix + "shadowed_total"
	metricVerified  = metricPrefix + "key_auth_accepted_total"
	metricSpoofed   = metricPrefix + "spoofed_identity_headers_total"
	metricFetches   = metricPrefix + "jwks_fetches_total"
	metricFailures  = metricPrefix + "jwks_failures_total"
	// metricKeysSkipped counts unusable keys skipped in fetched key sets,
	// once per fetch that saw them.
	metricKeysSkipped = metricPrefix + "jwks_keys_skipped_total"
	metricConflicts   = metricPrefix + "shared_data_conflicts_total"
)

// denialLog is the one log line of a denial (without fmt, which is slow in
// a wasm VM and denials are what an attacker can make many of):
//
//	jwt-auth: denied status=401 reason="token expired" request_id="5f0c…" provider="main" rule=-1
//	jwt-auth: shadow: would deny status=401 reason="missing token" request_id="" provider="-" rule=2; let through
func denialLog(shadow bool, out outcome, requestID, provider string, rule int) string {
	b := make([]byte, 0, 128+len(requestID)+len(provider))
	if shadow {
		b = append(b, "shadow: would deny status="...)
	} else {
		b = append(b, "denied status="...)
	}
	b = strconv.AppendInt(b, int64(out.status), 10)
	b = append(b, " reason="...)
	b = strconv.AppendQuote(b, out.reason.Error())
	b = append(b, " request_id="...)
	b = strconv.AppendQuote(b, requestID)
	b = append(b, " provider="...)
	b = strconv.AppendQuote(b, provider)
	b = append(b, " rule="...)
	b = strconv.AppendInt(b, int64(rule), 10)
	if shadow {
		b = append(b, "; let through"...)
	}
	return string(b)
}
