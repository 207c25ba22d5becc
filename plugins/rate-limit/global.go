package main

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// The global mode asks Envoy's reference rate limit service
// (github.com/envoyproxy/ratelimit) through its HTTP endpoint: POST <path>
// (default /json) with a RateLimitRequest in proto3 JSON; it answers 200
// for OK and 429 for OVER_LIMIT, with a RateLimitResponse body.

// descriptorEntry is one key part of the request's key, as the service
// sees it.
type descriptorEntry struct{ key, value string }

// appendRLSRequest appends the RateLimitRequest: the domain and one
// descriptor with the parts of the key alternative that matched.
//
//	{"domain":"concierge","descriptors":[{"entries":[{"key":"remote_address","value":"10.0.0.7"}]}]}
func appendRLSRequest(dst []byte, domain string, entries []descriptorEntry) []byte {
	dst = append(dst, `{"domain":`...)
	dst = appendJSONString(dst, domain)
	dst = append(dst, `,"descriptors":[{"entries":[`...)
	for i, e := range entries {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"key":`...)
		dst = appendJSONString(dst, e.key)
		dst = append(dst, `,"value":`...)
		dst = appendJSONString(dst, e.value)
		dst = append(dst, '}')
	}
	return append(dst, `]}]}`...)
}

// rlsOutcome is the service's answer.
type rlsOutcome struct {
	overLimit bool
	retry     time.Duration // OVER_LIMIT: the longest duration_until_reset, 0 if none
}

// parseRLSResponse reads the service's answer; an error is anything but a
// clear OK or OVER_LIMIT (status 0 is a reset callout, 504 a timeout).
func parseRLSResponse(status int, body []byte) (rlsOutcome, error) {
	switch status {
	case 200, 429:
	case 0:
		return rlsOutcome{}, errors.New("no response (connection reset)")
	default:
		return rlsOutcome{}, errors.New("status " + strconv.Itoa(status))
	}
	want := "OK"
	if status == 429 {
		want = "OVER_LIMIT"
	}
	if len(body) == 0 {
		return rlsOutcome{overLimit: status == 429}, nil
	}
	if !gjson.ValidBytes(body) {
		return rlsOutcome{}, errors.New("status " + strconv.Itoa(status) + " with a body that is not JSON")
	}
	res := gjson.ParseBytes(body)
	if !res.IsObject() {
		return rlsOutcome{}, errors.New("status " + strconv.Itoa(status) + " with a body that is not a JSON object")
	}
	if code := res.Get("overallCode"); code.Exists() && code.String() != want {
		return rlsOutcome{}, errors.New("status " + strconv.Itoa(status) + " disagrees with overallCode " + strconv.Quote(code.String()))
	}
	out := rlsOutcome{overLimit: status == 429}
	if out.overLimit {
		res.Get("statuses").ForEach(func(_, st gjson.Result) bool {
			if d, ok := protoDuration(st.Get("durationUntilReset").String()); ok && d > out.retry {
				out.retry = d
			}
			return true
		})
	}
	return out, nil
}

// protoDuration parses a proto3 JSON Duration ("3s", "0.500s").
func protoDuration(s string) (time.Duration, bool) {
	if !strings.HasSuffix(s, "s") {
		return 0, false
	}
	f, err := strconv.ParseFloat(s[:len(s)-1], 64)
	if err != nil || f < 0 || f > 1e9 {
		return 0, false
	}
	return time.Duration(f * float64(time.Second)), true
}
