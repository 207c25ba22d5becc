package main

import (
	"bytes"
	"strconv"

	"github.com/concierge-wasm/concierge/shared/reply"
)

// appendDenialBody is the 429 body: the shared denial shape plus
// retryAfter, so a client need not parse the header.
//
//	{"error":"rate limit exceeded","retryAfter":3,"requestId":"…"}
//
// In problem+json the member is an extension member of the problem.
func appendDenialBody(dst []byte, f reply.Format, retry int64, requestID string) []byte {
	dst = reply.AppendBody(dst, f, 429, "rate limit exceeded", requestID)
	// The shared body ends with `,"requestId":"…"}`; put retryAfter before
	// it. The marker cannot occur inside the encoded ID (its quotes would
	// be escaped), so the last one is the member's.
	cut := bytes.LastIndex(dst, []byte(`,"requestId":`))
	rest := string(dst[cut:])
	dst = append(dst[:cut], `,"retryAfter":`...)
	dst = strconv.AppendInt(dst, retry, 10)
	return append(dst, rest...)
}

// denialLog is the one log line of a denial:
//
//	denied status=429 by=local limit="minute" retry_after=3 request_id="5f0c…" rule=-1
//	shadow: would deny status=429 by=local limit="minute" retry_after=3 request_id="" rule=2; let through
func denialLog(shadow bool, by, limitName string, retry int64, requestID string, rule int, contended bool) string {
	b := make([]byte, 0, 128)
	if shadow {
		b = append(b, "shadow: would deny"...)
	} else {
		b = append(b, "denied"...)
	}
	b = append(b, " status=429 by="...)
	b = append(b, by...)
	b = append(b, " limit="...)
	b = strconv.AppendQuote(b, limitName)
	b = append(b, " retry_after="...)
	b = strconv.AppendInt(b, retry, 10)
	b = append(b, " request_id="...)
	b = strconv.AppendQuote(b, requestID)
	b = append(b, " rule="...)
	b = strconv.AppendInt(b, int64(rule), 10)
	if contended {
		b = append(b, " contended=true"...)
	}
	if shadow {
		b = append(b, "; let through"...)
	}
	return string(b)
}
