package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestConfigDefaults(t *testing.T) {
	for _, in := range []string{"", " ", "{}"} {
		c, err := parseConfig([]byte(in))
		if err != nil {
			t.Fatalf("parseConfig(%q): %v", in, err)
		}
		p := c.policies[0]
		if c.scope != scopeCluster || p.consecutiveFailures != 5 || p.rateOn() || p.openDuration != time.Minute ||
			p.maxOpenDuration != time.Minute || p.backoff != 1 || p.halfOpenPermits != 1 || p.successes != 1 ||
			p.maxConcurrent != 0 || p.slowCall != 0 || !slices.Equal(p.failureStatuses, []int{500, 502, 503, 504}) {
			t.Fatalf("parseConfig(%q) = %+v", in, *p)
		}
	}
}

func TestConfigFull(t *testing.T) {
	c, err := parseConfig([]byte(`{
		"scope": "route",
		"consecutive_failures": 3,
		"failure_rate": {"threshold": 0.25, "minimum_requests": 20, "window": "30s"},
		"failure_statuses": [500, 503, 429],
		"slow_call": {"duration": "2s"},
		"open_duration": "5s",
		"backoff_multiplier": 1.5,
		"half_open_requests": 2,
		"success_threshold": 3,
		"max_concurrent": 100,
		"force_state": {"legacy": "open", "*": "closed"},
		"error_format": "problem+json",
		"shadow": true,
		"rules": [
			{"match": {"prefix": "/health"}, "enabled": false},
			{"match": {"prefix": "/slow"}, "slow_call": {"duration": "10s"}}
		]
	}`))
	if err != nil {
		t.Fatal(err)
	}
	p := c.policies[0]
	if c.scope != scopeRoute || p.consecutiveFailures != 3 || p.rateThreshold != 0.25 || p.minimumRequests != 20 ||
		p.window != 30*time.Second || p.slowCall != 2*time.Second || p.openDuration != 5*time.Second ||
		p.backoff != 1.5 || p.maxOpenDuration != 50*time.Second || p.halfOpenPermits != 2 || p.successes != 3 ||
		p.maxConcurrent != 100 || !slices.Equal(p.failureStatuses, []int{500, 503, 429}) {
		t.Fatalf("top-level policy = %+v", *p)
	}
	if s, ok := c.forcedState([]byte("legacy")); !ok || s != open {
		t.Errorf("forcedState(legacy) = %v, %v; want open", s, ok)
	}
	if s, ok := c.forcedState([]byte("other")); !ok || s != closed {
		t.Errorf("forcedState(other) = %v, %v; want closed (from \"*\")", s, ok)
	}
	if !c.rules.Shadow || len(c.policies) != 2 || c.policyNames[1] != "r1" {
		t.Fatalf("rules: shadow %v, %d policies %v", c.rules.Shadow, len(c.policies), c.policyNames)
	}
	r := c.policies[1]
	if r.slowCall != 10*time.Second || r.consecutiveFailures != 3 || r.maxConcurrent != 100 {
		t.Fatalf("rule policy = %+v; want the top level with slow_call 10s", *r)
	}
	if c.rules.Rules[0].Override.policy != 0 || c.rules.Rules[1].Override.policy != 1 {
		t.Fatalf("rule overrides: %+v", c.rules.Rules)
	}
}

func TestConfigErrors(t *testing.T) {
	cases := []struct{ in, want string }{
		{`[]`, "configuration must be a JSON object"},
		{`{"scope": "host"}`, `scope: must be one of "cluster", "route", "authority", got "host"`},
		{`{"consecutive_failures": 0}`, "consecutive_failures: must be from 1 to 1000000, got 0"},
		{`{"consecutive_failures": -1}`, "consecutive_failures: must be from 1 to 1000000, got -1"},
		{`{"consecutive_failures": 1.5}`, "consecutive_failures: must be an integer, got 1.5"},
		{`{"failure_rate": {}}`, "failure_rate.threshold: required"},
		{`{"failure_rate": {"threshold": 0}}`, "failure_rate.threshold: must be in (0, 1], got 0"},
		{`{"failure_rate": {"threshold": 1.5}}`, "failure_rate.threshold: must be in (0, 1], got 1.5"},
		{`{"failure_rate": {"threshold": -0.1}}`, "failure_rate.threshold: must be in (0, 1], got -0.1"},
		{`{"failure_rate": {"threshold": "0.5"}}`, `failure_rate.threshold: must be a number in (0, 1], got "0.5"`},
		{`{"failure_rate": {"threshold": 0.5, "minimum_requests": 0}}`, "failure_rate.minimum_requests: must be from 1 to 1000000, got 0"},
		{`{"failure_rate": {"threshold": 0.5, "window": "500ms"}}`, `failure_rate.window: must be from 1s to 1h0m0s, got "500ms"`},
		{`{"failure_rate": {"threshold": 0.5, "windw": "5s"}}`, `failure_rate: unknown field "windw"`},
		{`{"failure_rate": 0.5}`, "failure_rate: must be an object, got 0.5"},
		{`{"failure_statuses": []}`, "failure_statuses: must not be empty"},
		{`{"failure_statuses": [200]}`, "failure_statuses[0]: must be an error status from 400 to 599, got 200"},
		{`{"failure_statuses": [500, "502"]}`, `failure_statuses[1]: must be an integer, got "502"`},
		{`{"failure_statuses": [500, 500]}`, "failure_statuses[1]: 500 is listed twice"},
		{`{"slow_call": {}}`, "slow_call.duration: required"},
		{`{"slow_call": {"duration": "0s"}}`, `slow_call.duration: must be > 0, got "0s"`},
		{`{"slow_call": {"duration": 2}}`, `slow_call.duration: must be a duration string like "500ms", got 2`},
		{`{"open_duration": "0s"}`, `open_duration: must be from 1ms to 24h0m0s, got "0s"`},
		{`{"open_duration": "-5s"}`, `open_duration: must be from 1ms to 24h0m0s, got "-5s"`},
		{`{"backoff_multiplier": 0.5}`, "backoff_multiplier: must be a number from 1 to 100, got 0.5"},
		{`{"open_duration": "10s", "max_open_duration": "5s"}`, `max_open_duration: must be from open_duration (10s) to 24h0m0s, got "5s"`},
		{`{"half_open_requests": 0}`, "half_open_requests: must be from 1 to 1000000, got 0"},
		{`{"success_threshold": 0}`, "success_threshold: must be from 1 to 1000000, got 0"},
		{`{"max_concurrent": 0}`, "max_concurrent: must be from 1 to 1000000, got 0"},
		{`{"force_state": {"a": "half-open"}}`, `force_state.a: must be one of "open", "closed", got "half-open"`},
		{`{"force_state": {"": "open"}}`, "force_state: a scope key must not be empty"},
		{`{"error_format": "xml"}`, `error_format: must be one of "json", "problem+json", got "xml"`},
		{`{"consecutive_failure": 3}`, `unknown field "consecutive_failure"`},
		{`{"rules": [{"match": {"prefix": "/a"}, "open_duration": "0s"}]}`, `rules[0].open_duration: must be from 1ms to 24h0m0s, got "0s"`},
		{`{"rules": [{"match": {"prefix": "/a"}, "scope": "route"}]}`, `rules[0]: unknown field "scope"`},
	}
	for _, c := range cases {
		_, err := parseConfig([]byte(c.in))
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("parseConfig(%s) = %v, want an error starting %q", c.in, err, c.want)
		}
	}
}

func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{`{}`, `{"failure_rate": {"threshold": 0.5}}`, `{"force_state": {"*": "open"}}`,
		`{"rules": [{"match": {"prefix": "/a"}, "max_concurrent": 3}]}`, `{"backoff_multiplier": 2, "open_duration": "1s"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parseConfig(data)
		if err != nil {
			return
		}
		// Whatever parses is usable: no zero count, a ratio in (0, 1], a
		// sane open time.
		for _, p := range c.policies {
			if p.consecutiveFailures == 0 || p.halfOpenPermits == 0 || p.successes == 0 ||
				p.rateThreshold < 0 || p.rateThreshold > 1 || (p.rateOn() && (p.minimumRequests == 0 || p.window < minWindow)) ||
				p.openDuration <= 0 || p.maxOpenDuration < p.openDuration || p.backoff < 1 || len(p.failureStatuses) == 0 {
				t.Fatalf("parseConfig(%q) accepted an unusable policy %+v", data, *p)
			}
			for n := uint32(1); n < 40; n++ {
				if d := p.openFor(n); d < p.openDuration || d > p.maxOpenDuration {
					t.Fatalf("openFor(%d) = %s outside [%s, %s]", n, d, p.openDuration, p.maxOpenDuration)
				}
			}
		}
	})
}

func TestClassify(t *testing.T) {
	p := testPolicy(func(p *policy) { p.slowCall = 2 * time.Second })
	cases := []struct {
		name string
		r    response
		want outcome
	}{
		{"200 from upstream", response{status: 200, details: "via_upstream"}, success},
		{"404 from upstream", response{status: 404, details: "via_upstream"}, success},
		{"503 from upstream", response{status: 503, details: "via_upstream"}, failure},
		{"501 is not in failure_statuses", response{status: 501, details: "via_upstream"}, success},
		{"slow 200", response{status: 200, details: "via_upstream", elapsed: 2500 * time.Millisecond}, failure},
		{"route timeout", response{status: 504, details: "response_timeout", flags: flagUpstreamRequestTimeout}, failure},
		{"connection refused", response{status: 503, details: "upstream_reset_before_response_started{remote_connection_failure|delayed_connect_error:_Connection_refused}", flags: flagUpstreamConnectionFailure}, failure},
		{"reset", response{status: 503, details: "upstream_reset_before_response_started{connection_termination}", flags: flagUpstreamConnectionTermination}, failure},
		{"no healthy upstream", response{status: 503, details: "no_healthy_upstream", flags: flagNoHealthyUpstream}, failure},
		{"jwt-auth 401", response{status: 401, details: "jwt_auth_denied"}, noOutcome},
		{"rate-limit 429", response{status: 429, details: "rate_limited"}, noOutcome},
		{"a filter's own 503", response{status: 503, details: "circuit_breaker_open"}, noOutcome},
		{"no route", response{status: 404, details: "route_not_found", flags: 1 << 8}, noOutcome},
		{"client gone", response{details: "downstream_remote_disconnect", flags: 1 << 14}, noOutcome},
	}
	for _, c := range cases {
		if got, why := classify(c.r, p); got != c.want {
			t.Errorf("%s: classify(%+v) = %d (%s), want %d", c.name, c.r, got, why, c.want)
		}
	}
}
