package main

import (
	"reflect"
	"testing"
)

func TestClaimsGet(t *testing.T) {
	c := claims{json: `{"sub":"u1","a.b":"flat","a":{"b":"nested","c":{"d":1}},"https://x.example/roles":["r"],"*":"star","@this":"at"}`}
	for _, tc := range []struct{ name, want string }{
		{"sub", `"u1"`},
		{"a.b", `"flat"`}, // the exact top-level name wins
		{"a.c.d", `1`},
		{"a.c", `{"d":1}`},
		{"https://x.example/roles", `["r"]`},
		{"*", `"star"`},
		{"@this", `"at"`},
		{"missing", ``},
		{"a.missing", ``},
		{"sub.x", ``},
		{"a.b.c", ``},
	} {
		if got := c.get(tc.name).Raw; got != tc.want {
			t.Errorf("claims.get(%q) = %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestClaimHeaders(t *testing.T) {
	def := &provider{claimToHeaders: defaultClaimToHeaders}
	custom := &provider{claimToHeaders: []claimHeader{
		{"email", "x-email"}, {"age", "x-age"}, {"admin", "x-admin"}, {"groups", "x-groups"},
		{"obj", "x-obj"}, {"mixed", "x-mixed"}, {"evil", "x-evil"}, {"realm.roles", "x-realm-roles"}, {"scp", "x-scp"},
	}}
	for _, tc := range []struct {
		name    string
		p       *provider
		payload string
		want    [][2]string
	}{
		{"defaults with roles", def, `{"sub":"u1","roles":["a","b"],"scope":"x y"}`,
			[][2]string{{"x-user-id", "u1"}, {"x-user-roles", "a,b"}}},
		{"defaults with scope only", def, `{"sub":"u1","scope":"read  write admin"}`,
			[][2]string{{"x-user-id", "u1"}, {"x-user-roles", "read,write,admin"}}},
		{"defaults, roles as a string", def, `{"sub":"u1","roles":"admin"}`,
			[][2]string{{"x-user-id", "u1"}, {"x-user-roles", "admin"}}},
		{"defaults, numeric sub", def, `{"sub":12345}`, [][2]string{{"x-user-id", "12345"}}},
		{"defaults, nothing", def, `{"iss":"x"}`, nil},
		{"defaults, empty roles", def, `{"roles":[]}`, nil},
		{"scalars and arrays", custom, `{"email":"a@b.c","age":42,"admin":true,"groups":["g1",2,false],"scp":"a b"}`,
			[][2]string{{"x-email", "a@b.c"}, {"x-age", "42"}, {"x-admin", "true"}, {"x-groups", "g1,2,false"}, {"x-scp", "a,b"}}},
		{"objects and nested arrays set nothing", custom, `{"obj":{"a":1},"mixed":["a",{"b":1}]}`, nil},
		{"CR LF never reaches a header", custom, `{"evil":"a\r\nx-admin: true","email":"a\nb"}`, nil},
		{"nested claim", custom, `{"realm":{"roles":["r1","r2"]}}`, [][2]string{{"x-realm-roles", "r1,r2"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.p.claimHeaders(claims{json: tc.payload}, nil)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("claimHeaders(%s) = %q, want %q", tc.payload, got, tc.want)
			}
		})
	}
}

func TestRequirementMet(t *testing.T) {
	r := requirement{claims: []claimRequirement{{name: "roles", anyOf: []string{"admin", "ops"}}}}
	scope := requirement{claims: []claimRequirement{{name: "scope", anyOf: []string{"write"}}}}
	both := requirement{claims: []claimRequirement{{name: "roles", anyOf: []string{"admin"}}, {name: "email_verified", anyOf: []string{"true"}}}}
	for _, tc := range []struct {
		name    string
		r       requirement
		payload string
		want    bool
	}{
		{"array with one", r, `{"roles":["reader","ops"]}`, true},
		{"array without", r, `{"roles":["reader"]}`, false},
		{"string equal", r, `{"roles":"admin"}`, true},
		{"space-separated string", r, `{"roles":"reader admin"}`, true},
		{"substring is not a match", r, `{"roles":"administrator"}`, false},
		{"case matters", r, `{"roles":["Admin"]}`, false},
		{"missing claim", r, `{"sub":"x"}`, false},
		{"object claim", r, `{"roles":{"admin":true}}`, false},
		{"scope string", scope, `{"scope":"read write"}`, true},
		{"scope string without", scope, `{"scope":"read writer"}`, false},
		{"all claims needed", both, `{"roles":["admin"],"email_verified":true}`, true},
		{"one claim unmet", both, `{"roles":["admin"],"email_verified":false}`, false},
		{"whole string with spaces", requirement{claims: []claimRequirement{{name: "group", anyOf: []string{"Domain Admins"}}}}, `{"group":"Domain Admins"}`, true},
		{"empty requirement", requirement{}, `{}`, true},
	} {
		if got := tc.r.met(claims{json: tc.payload}); got != tc.want {
			t.Errorf("%s: requirement.met(%s) = %v, want %v", tc.name, tc.payload, got, tc.want)
		}
	}
}
