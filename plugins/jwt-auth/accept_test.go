package main

import (
	"reflect"
	"sort"
	"testing"
)

// TestAcceptVerifiedIdentityConfig: the option is off unless set, and a
// request key-auth verified keeps the default identity headers (key-auth
// set them) but loses this filter's own claim headers.
func TestAcceptVerifiedIdentityConfig(t *testing.T) {
	t.Parallel()
	c, err := parseConfig([]byte(`{"providers":[{"issuer":"https://a","algorithms":["HS256"],"hmac_secret":"` + testSecret + `",
		"claim_to_headers":[{"claim_name":"sub","header_name":"x-user-id"},{"claim_name":"email","header_name":"X-Email"}],
		"forward_payload_header":"x-jwt-payload"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.acceptVerified {
		t.Errorf("accept_verified_identity defaults to true, want false")
	}
	got := c.guardWhenVerified.Names()
	sort.Strings(got)
	if want := []string{"x-email", "x-jwt-payload"}; !reflect.DeepEqual(got, want) {
		t.Errorf("guardWhenVerified owns %q, want %q", got, want)
	}
	c, err = parseConfig([]byte(withRealm(t, `,"accept_verified_identity":true`)))
	if err != nil || !c.acceptVerified {
		t.Errorf("accept_verified_identity true: acceptVerified = %v, error %v", c.acceptVerified, err)
	}
	if _, err := parseConfig([]byte(withRealm(t, `,"accept_verified_identity":"yes"`))); err == nil || err.Error() != `accept_verified_identity: must be a boolean, got "yes"` {
		t.Errorf("accept_verified_identity \"yes\": error %v", err)
	}
}

func TestAcceptsVerified(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		ov   *ruleOverride
		want bool
	}{
		{nil, true},
		{&ruleOverride{allowMissing: true}, true},
		{&ruleOverride{require: requirement{claims: []claimRequirement{{name: "roles", anyOf: []string{"admin"}}}}}, false},
		{&ruleOverride{providers: []int{0}}, false},
	} {
		if got := tt.ov.acceptsVerified(); got != tt.want {
			t.Errorf("(%+v).acceptsVerified() = %v, want %v", tt.ov, got, tt.want)
		}
	}
}
