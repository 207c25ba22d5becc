package main

import (
	"errors"
	"testing"
)

func TestChallenge(t *testing.T) {
	withRealm := &config{realm: "api"}
	noRealm := &config{}
	for _, tc := range []struct {
		c      *config
		status int
		reason error
		want   string
	}{
		{withRealm, 401, errMissingToken, `Bearer realm="api"`},
		{noRealm, 401, errMissingToken, `Bearer`},
		{withRealm, 401, errExpired, `Bearer realm="api", error="invalid_token", error_description="token expired"`},
		{noRealm, 401, errInvalidSig, `Bearer error="invalid_token", error_description="invalid signature"`},
		{withRealm, 401, errKeysUnavailable, `Bearer realm="api", error="invalid_token", error_description="keys unavailable"`},
		{withRealm, 403, errInsufficientScope, `Bearer realm="api", error="insufficient_scope"`},
		{noRealm, 403, errInsufficientScope, `Bearer error="insufficient_scope"`},
	} {
		if got := tc.c.challenge(tc.status, tc.reason); got != tc.want {
			t.Errorf("challenge(realm %q, %d, %v) = %s, want %s", tc.c.realm, tc.status, tc.reason, got, tc.want)
		}
	}
}

func TestReasonMetrics(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range denialReasons {
		m := reasonMetric(r)
		if seen[m] {
			t.Errorf("two reasons share metric %s", m)
		}
		seen[m] = true
		if reasonIndex(r) < 0 {
			t.Errorf("reasonIndex(%v) = -1", r)
		}
	}
	if got := reasonMetric(errNotYetValid); got != "concierge_jwt_auth_denied_token_not_yet_valid_total" {
		t.Errorf("reasonMetric(token not yet valid) = %s", got)
	}
	if reasonIndex(errors.New("token expired")) != -1 {
		t.Error("reasonIndex matches by text; want identity")
	}
}

func TestJudge(t *testing.T) {
	c := remoteConfig(t) // provider 0 remote, provider 1 HMAC
	admin := &ruleOverride{require: requirement{claims: []claimRequirement{{name: "roles", anyOf: []string{"admin"}}}}}
	onlyHMAC := &ruleOverride{providers: []int{1}}
	anonymous := &ruleOverride{allowMissing: true}
	ok := func(p int, payload string) authResult { return authResult{provider: p, claims: claims{json: payload}} }
	for _, tc := range []struct {
		name   string
		res    authResult
		err    error
		ov     *ruleOverride
		kind   outcomeKind
		status int
		reason error
	}{
		{"valid, no rule", ok(1, `{}`), nil, nil, outAllow, 401, nil},
		{"missing, no rule", authResult{provider: -1}, errMissingToken, nil, outDeny, 401, errMissingToken},
		{"missing, allow_missing", authResult{provider: -1}, errMissingToken, anonymous, outAnonymous, 401, nil},
		{"bad token, allow_missing", authResult{provider: 1}, errExpired, anonymous, outDeny, 401, errExpired},
		{"two tokens, allow_missing", authResult{provider: -1}, errMultipleTokens, anonymous, outDeny, 401, errMultipleTokens},
		{"require met", ok(1, `{"roles":["admin"]}`), nil, admin, outAllow, 401, nil},
		{"require unmet", ok(1, `{"roles":["reader"]}`), nil, admin, outDeny, 403, errInsufficientScope},
		{"provider not allowed", ok(0, `{}`), nil, onlyHMAC, outDeny, 401, errIssuer},
		{"remote keys missing", authResult{provider: 0}, errKeysUnavailable, nil, outNeedKeys, 401, errKeysUnavailable},
		{"remote unknown kid", authResult{provider: 0}, errUnknownKey, nil, outUnknownKey, 401, errUnknownKey},
		{"unknown kid, local keys", authResult{provider: 1}, errUnknownKey, nil, outDeny, 401, errUnknownKey},
	} {
		got := c.judge(tc.res, tc.err, tc.ov)
		if got.kind != tc.kind || got.status != tc.status || got.reason != tc.reason {
			t.Errorf("%s: judge = kind %d, %d %v; want kind %d, %d %v", tc.name, got.kind, got.status, got.reason, tc.kind, tc.status, tc.reason)
		}
	}
}

func TestRoles(t *testing.T) {
	for payload, want := range map[string]string{
		`{"roles":["a","b"],"scope":"x"}`: "a|b",
		`{"roles":"a b"}`:                 "a|b",
		`{"scope":"read write"}`:          "read|write",
		`{"scp":["s1",2,"s2"]}`:           "s1|s2",
		`{"roles":[],"scope":"x"}`:        "x",
		`{"roles":{"a":1}}`:               "",
		`{}`:                              "",
	} {
		got := ""
		for i, r := range (claims{json: payload}).roles() {
			if i > 0 {
				got += "|"
			}
			got += r
		}
		if got != want {
			t.Errorf("roles(%s) = %q, want %q", payload, got, want)
		}
	}
}

func TestDenialLog(t *testing.T) {
	out := outcome{kind: outDeny, status: 401, reason: errExpired}
	if got, want := denialLog(false, out, "r\"1", "main", 2), `denied status=401 reason="token expired" request_id="r\"1" provider="main" rule=2`; got != want {
		t.Errorf("denialLog = %s, want %s", got, want)
	}
	if got, want := denialLog(true, out, "", "-", -1), `shadow: would deny status=401 reason="token expired" request_id="" provider="-" rule=-1; let through`; got != want {
		t.Errorf("denialLog(shadow) = %s, want %s", got, want)
	}
}
