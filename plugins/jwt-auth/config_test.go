package main

import (
	"crypto/ed25519"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/concierge-wasm/concierge/shared/identity"
	"github.com/concierge-wasm/concierge/shared/reply"
	"github.com/concierge-wasm/concierge/shared/rules"
)

func TestParseConfigDefaults(t *testing.T) {
	c := mustConfig(t, `{"providers":[{"issuer":"https://a","algorithms":["HS256"],"hmac_secret":"`+testSecret+`"}]}`)
	p := c.providers[0]
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"name", p.name, "https://a"},
		{"clock_skew", p.clockSkew, 60 * time.Second},
		{"require_exp", p.requireExp, true},
		{"max_token_bytes", p.maxTokenBytes, 8192},
		{"forward", p.forward, false},
		{"forward_payload_header", p.forwardPayloadHeader, ""},
		{"claim_to_headers", p.claimToHeaders, defaultClaimToHeaders},
		{"sources", p.sources, []location{{kind: locHeader, name: "authorization", prefix: "Bearer "}}},
		{"locations", c.locations, []location{{kind: locHeader, name: "authorization", prefix: "Bearer ", maxBytes: 8192}}},
		{"owned headers", c.ownedHeaders, []string{"x-user-id", "x-user-roles"}},
		{"guarded headers", c.guard.Names(), []string{"x-user-id", "x-user-roles", "x-consumer", "x-consumer-permissions"}},
		{"spoofed_identity_headers", c.guard.Action, identity.StripSpoofed},
		{"realm", c.realm, ""},
		{"error_format", c.errorFormat, reply.JSON},
		{"rules", len(c.rules.Rules), 0},
		{"shadow", c.shadow, false},
		{"algs", p.algs, lookupAlg("HS256").bit},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("parseConfig(minimal).%s = %#v, want %#v", tc.name, tc.got, tc.want)
		}
	}
}

func TestParseConfigFull(t *testing.T) {
	k := testKeys(t)
	c := mustConfig(t, fmt.Sprintf(`{
		"realm": "api", "error_format": "problem+json", "shadow": true, "rules": [],
		"providers": [{
			"name": "idp", "issuer": "https://idp", "audiences": ["a", "b"], "algorithms": ["RS256", "ES256"],
			"remote_jwks": {"http_uri": {"uri": "https://idp.example:8443/keys?v=2", "cluster": "idp", "timeout": "2s"},
				"cache_duration": "300s", "min_refresh": "10s"},
			"from_headers": [{"name": "X-Token"}, {"name": "Authorization", "value_prefix": "JWT "}],
			"from_params": ["access_token"], "from_cookies": ["session"],
			"clock_skew": "5s", "require_exp": false, "max_token_bytes": 4096, "forward": true,
			"forward_payload_header": "X-JWT-Payload",
			"claim_to_headers": [{"claim_name": "email", "header_name": "X-Email"}]
		}, {
			"issuer": "https://local", "algorithms": ["EdDSA"],
			"local_jwks": %q,
			"from_headers": [{"name": "x-token"}]
		}]}`, `{"keys":[`+edJWK(k.ed.Public().(ed25519.PublicKey), "e")+`]}`))
	p := c.providers[0]
	want := &remoteJWKS{uri: "https://idp.example:8443/keys?v=2", authority: "idp.example:8443", path: "/keys?v=2",
		cluster: "idp", timeout: 2 * time.Second, cacheDuration: 300 * time.Second, minRefresh: 10 * time.Second}
	if !reflect.DeepEqual(p.remote, want) {
		t.Errorf("remote = %+v, want %+v", p.remote, want)
	}
	if c.realm != "api" || c.errorFormat != reply.Problem || !c.shadow {
		t.Errorf("realm, error_format, shadow = %q, %q, %v", c.realm, c.errorFormat, c.shadow)
	}
	if p.clockSkew != 5*time.Second || p.requireExp || p.maxTokenBytes != 4096 || !p.forward || p.forwardPayloadHeader != "x-jwt-payload" {
		t.Errorf("provider = %+v", p)
	}
	if !reflect.DeepEqual(p.claimToHeaders, []claimHeader{{"email", "x-email"}}) {
		t.Errorf("claimToHeaders = %v", p.claimToHeaders)
	}
	wantLocs := []location{
		{kind: locHeader, name: "x-token", maxBytes: 8192},
		{kind: locHeader, name: "authorization", prefix: "JWT ", maxBytes: 4096},
		{kind: locParam, name: "access_token", maxBytes: 4096},
		{kind: locCookie, name: "session", maxBytes: 4096},
	}
	if !reflect.DeepEqual(c.locations, wantLocs) {
		t.Errorf("locations = %+v, want %+v", c.locations, wantLocs)
	}
	if p.locs != 0b1111 || c.providers[1].locs != 0b0001 {
		t.Errorf("locs = %b, %b; want 1111, 0001", p.locs, c.providers[1].locs)
	}
	if !reflect.DeepEqual(c.ownedHeaders, []string{"x-user-id", "x-user-roles", "x-jwt-payload", "x-email"}) {
		t.Errorf("ownedHeaders = %v", c.ownedHeaders)
	}
	if c.providers[1].localKeys == nil || len(c.providers[1].localKeys.keys) != 1 {
		t.Errorf("local_jwks as a string was not parsed")
	}
}

func TestParseConfigErrors(t *testing.T) {
	k := testKeys(t)
	rsaKeys := `{"keys":[` + rsaJWK(&k.rsa.PublicKey, "r") + `]}`
	// prov builds a one-provider configuration from provider members.
	prov := func(members string) string { return `{"providers":[{` + members + `}]}` }
	hs := `"issuer":"https://a","algorithms":["HS256"],"hmac_secret":"` + testSecret + `"`
	rs := `"issuer":"https://a","algorithms":["RS256"],"local_jwks":` + rsaKeys
	remote := func(r string) string {
		return prov(`"issuer":"https://a","algorithms":["RS256"],"remote_jwks":` + r)
	}
	for _, tc := range []struct {
		name, config, want string
	}{
		{"empty", ``, `providers: required`},
		// The document-level messages come from shared/config.
		{"not JSON", `{`, `invalid JSON: line 1, column 2: unexpected end of input`},
		{"not an object", `[]`, `configuration must be a JSON object, got []`},
		{"unknown top-level field", `{"providers":[],"realms":"x"}`, `unknown field "realms"`},
		{"duplicate top-level field", `{"realm":"a","realm":"b"}`, `duplicate field "realm"`},
		{"providers empty", `{"providers":[]}`, `providers: must not be empty`},
		{"providers not an array", `{"providers":{}}`, `providers: must be an array of objects, got {}`},
		{"provider not an object", `{"providers":["a"]}`, `providers[0]: must be an object, got "a"`},
		{"realm with quote", `{"realm":"a\"b","providers":[{` + hs + `}]}`, `realm: must not contain quotes, backslashes or control characters, got "a\"b"`},
		{"error_format", `{"error_format":"xml","providers":[{` + hs + `}]}`, `error_format: must be one of "json", "problem+json", got "xml"`},
		{"shadow not bool", `{"shadow":"true","providers":[{` + hs + `}]}`, `shadow: must be a boolean, got "true"`},
		{"rules not array", `{"rules":{},"providers":[{` + hs + `}]}`, `rules: must be an array of objects, got {}`},
		{"unknown provider field", prov(`"isuer":"https://a","algorithms":["HS256"],"hmac_secret":"` + testSecret + `"`), `providers[0]: unknown field "isuer"`},
		{"issuer missing", prov(`"algorithms":["HS256"],"hmac_secret":"` + testSecret + `"`), `providers[0].issuer: required`},
		{"issuer not a string", prov(`"issuer":1,"algorithms":["HS256"],"hmac_secret":"` + testSecret + `"`), `providers[0].issuer: must be a string, got 1`},
		{"algorithms missing", prov(`"issuer":"https://a","hmac_secret":"` + testSecret + `"`), `providers[0].algorithms: required`},
		{"algorithms empty", prov(`"issuer":"https://a","algorithms":[],"hmac_secret":"` + testSecret + `"`), `providers[0].algorithms: must not be empty`},
		{"algorithms not strings", prov(`"issuer":"https://a","algorithms":[256]`), `providers[0].algorithms[0]: must be a string, got 256`},
		{"unknown algorithm", prov(`"issuer":"https://a","algorithms":["HS256","RS257"],"hmac_secret":"` + testSecret + `"`), `providers[0].algorithms[1]: unknown algorithm "RS257"`},
		{"algorithm lower case", prov(`"issuer":"https://a","algorithms":["hs256"],"hmac_secret":"` + testSecret + `"`), `providers[0].algorithms[0]: unknown algorithm "hs256"`},
		{"algorithm none", prov(`"issuer":"https://a","algorithms":["none"],"hmac_secret":"` + testSecret + `"`), `providers[0].algorithms[0]: "none" is not allowed`},
		{"algorithm None", prov(`"issuer":"https://a","algorithms":["HS256","None"],"hmac_secret":"` + testSecret + `"`), `providers[0].algorithms[1]: "None" is not allowed`},
		{"duplicate algorithm", prov(`"issuer":"https://a","algorithms":["HS256","HS256"],"hmac_secret":"` + testSecret + `"`), `providers[0].algorithms[1]: duplicate "HS256"`},
		{"no key source", prov(`"issuer":"https://a","algorithms":["RS256"]`), `providers[0]: needs a key source: local_jwks, remote_jwks, hmac_secret or hmac_secret_base64`},
		{"HS without secret", `{"providers":[{` + hs + `},{"issuer":"https://b","algorithms":["RS256","HS256"],"local_jwks":` + rsaKeys + `}]}`, `providers[1].hmac_secret: required by algorithm HS256`},
		{"RS with only a secret", prov(`"issuer":"https://a","algorithms":["HS256","RS256"],"hmac_secret":"` + testSecret + `"`), `providers[0]: algorithm RS256 needs local_jwks or remote_jwks`},
		{"secret too short", prov(`"issuer":"https://a","algorithms":["HS256"],"hmac_secret":"short"`), `providers[0].hmac_secret: 5 bytes is too short for HS256, need at least 32`},
		{"secret too short for HS512", prov(`"issuer":"https://a","algorithms":["HS256","HS512"],"hmac_secret":"` + testSecret[:40] + `"`), `providers[0].hmac_secret: 40 bytes is too short for HS512, need at least 64`},
		{"secret empty", prov(`"issuer":"https://a","algorithms":["HS256"],"hmac_secret":""`), `providers[0].hmac_secret: must not be empty`},
		{"secret base64 invalid", prov(`"issuer":"https://a","algorithms":["HS256"],"hmac_secret_base64":"***"`), `providers[0].hmac_secret_base64: invalid base64`},
		{"secret base64 too short", prov(`"issuer":"https://a","algorithms":["HS256"],"hmac_secret_base64":"c2hvcnQ="`), `providers[0].hmac_secret_base64: 5 bytes is too short for HS256, need at least 32`},
		{"both secrets", prov(hs + `,"hmac_secret_base64":"YQ"`), `providers[0]: hmac_secret and hmac_secret_base64 are mutually exclusive`},
		{"secret unused", prov(rs + `,"hmac_secret":"` + testSecret + `"`), `providers[0].hmac_secret: unused: algorithms has no HS algorithm`},
		{"jwks unused", prov(hs + `,"local_jwks":` + rsaKeys), `providers[0].local_jwks: unused: algorithms has no RS, PS, ES or EdDSA algorithm`},
		{"local and remote", prov(rs + `,"remote_jwks":{"http_uri":{"uri":"https://x/","cluster":"x"}}`), `providers[0]: local_jwks and remote_jwks are mutually exclusive`},
		{"jwks not JSON", prov(`"issuer":"https://a","algorithms":["RS256"],"local_jwks":"{\"keys\":"`), `providers[0].local_jwks: invalid JSON`},
		{"jwks number", prov(`"issuer":"https://a","algorithms":["RS256"],"local_jwks":5`), `providers[0].local_jwks: must be a JWKS object or a string holding one, got 5`},
		{"jwks empty", prov(`"issuer":"https://a","algorithms":["RS256"],"local_jwks":{"keys":[]}`), `providers[0].local_jwks.keys: must not be empty`},
		{"jwks oct key", prov(`"issuer":"https://a","algorithms":["RS256"],"local_jwks":{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`), `providers[0].local_jwks.keys[0].kty: unsupported key type "oct": symmetric keys go in hmac_secret`},
		{"jwks unsupported curve", prov(`"issuer":"https://a","algorithms":["ES256"],"local_jwks":{"keys":[{"kty":"EC","crv":"secp256k1","x":"AA","y":"AA"}]}`), `providers[0].local_jwks.keys[0].crv: unsupported curve "secp256k1"`},
		{"jwks no fitting key", prov(`"issuer":"https://a","algorithms":["ES256","EdDSA"],"local_jwks":` + rsaKeys), `providers[0].local_jwks: no key fits algorithms ES256, EdDSA`},
		{"duplicate issuer", `{"providers":[{` + hs + `},{` + rs + `}]}`, `providers[1].issuer: duplicate "https://a" (also providers[0])`},
		{"duplicate name", `{"providers":[{"name":"x",` + hs + `},{"name":"x","issuer":"https://b","algorithms":["HS256"],"hmac_secret":"` + testSecret + `"}]}`, `providers[1].name: duplicate "x" (also providers[0])`},
		{"bad clock_skew", prov(hs + `,"clock_skew":"60"`), `providers[0].clock_skew: must be a duration string like "500ms", got "60"`},
		{"clock_skew number", prov(hs + `,"clock_skew":60`), `providers[0].clock_skew: must be a duration string like "500ms", got 60`},
		{"negative clock_skew", prov(hs + `,"clock_skew":"-1s"`), `providers[0].clock_skew: must be >= 0, got "-1s"`},
		{"max_token_bytes zero", prov(hs + `,"max_token_bytes":0`), `providers[0].max_token_bytes: must be > 0, got 0`},
		{"max_token_bytes huge", prov(hs + `,"max_token_bytes":2000000`), `providers[0].max_token_bytes: must be <= 1048576, got 2000000`},
		{"max_token_bytes float", prov(hs + `,"max_token_bytes":1.5`), `providers[0].max_token_bytes: must be an integer, got 1.5`},
		{"require_exp string", prov(hs + `,"require_exp":"false"`), `providers[0].require_exp: must be a boolean, got "false"`},
		{"audiences empty string", prov(hs + `,"audiences":[""]`), `providers[0].audiences[0]: must not be empty`},
		{"remote without http_uri", remote(`{}`), `providers[0].remote_jwks.http_uri: required`},
		{"remote unknown field", remote(`{"http_uri":{"uri":"https://x/","cluster":"x"},"async_fetch":{}}`), `providers[0].remote_jwks: unknown field "async_fetch"`},
		{"remote uri unknown field", remote(`{"http_uri":{"uri":"https://x/","cluster":"x","timout":"1s"}}`), `providers[0].remote_jwks.http_uri: unknown field "timout"`},
		{"remote uri missing", remote(`{"http_uri":{"cluster":"x"}}`), `providers[0].remote_jwks.http_uri.uri: required`},
		{"remote uri relative", remote(`{"http_uri":{"uri":"/jwks","cluster":"x"}}`), `providers[0].remote_jwks.http_uri.uri: must be an absolute http or https URL, got "/jwks"`},
		{"remote uri ftp", remote(`{"http_uri":{"uri":"ftp://x/jwks","cluster":"x"}}`), `providers[0].remote_jwks.http_uri.uri: must be an absolute http or https URL, got "ftp://x/jwks"`},
		{"remote cluster missing", remote(`{"http_uri":{"uri":"https://x/"}}`), `providers[0].remote_jwks.http_uri.cluster: required`},
		{"remote timeout zero", remote(`{"http_uri":{"uri":"https://x/","cluster":"x","timeout":"0s"}}`), `providers[0].remote_jwks.http_uri.timeout: must be > 0, got "0s"`},
		{"remote cache_duration bad", remote(`{"http_uri":{"uri":"https://x/","cluster":"x"},"cache_duration":"5 minutes"}`), `providers[0].remote_jwks.cache_duration: must be a duration string like "500ms", got "5 minutes"`},
		{"remote cache_duration zero", remote(`{"http_uri":{"uri":"https://x/","cluster":"x"},"cache_duration":"0s"}`), `providers[0].remote_jwks.cache_duration: must be > 0, got "0s"`},
		{"remote min_refresh negative", remote(`{"http_uri":{"uri":"https://x/","cluster":"x"},"min_refresh":"-5s"}`), `providers[0].remote_jwks.min_refresh: must be > 0, got "-5s"`},
		{"from_headers unknown field", prov(hs + `,"from_headers":[{"name":"x","prefix":"B "}]`), `providers[0].from_headers[0]: unknown field "prefix"`},
		{"from_headers bad name", prov(hs + `,"from_headers":[{"name":"x y"}]`), `providers[0].from_headers[0].name: invalid header name "x y"`},
		{"from_headers no name", prov(hs + `,"from_headers":[{"value_prefix":"B "}]`), `providers[0].from_headers[0].name: invalid header name ""`},
		{"from_params empty", prov(hs + `,"from_params":[""]`), `providers[0].from_params[0]: must not be empty`},
		{"from_cookies bad", prov(hs + `,"from_cookies":["a;b"]`), `providers[0].from_cookies[0]: invalid cookie name "a;b"`},
		{"claim_to_headers unknown field", prov(hs + `,"claim_to_headers":[{"claim":"sub","header_name":"x"}]`), `providers[0].claim_to_headers[0]: unknown field "claim"`},
		{"claim_to_headers no claim", prov(hs + `,"claim_to_headers":[{"header_name":"x"}]`), `providers[0].claim_to_headers[0].claim_name: required`},
		{"claim_to_headers bad header", prov(hs + `,"claim_to_headers":[{"claim_name":"sub","header_name":":path"}]`), `providers[0].claim_to_headers[0].header_name: invalid header name ":path"`},
		{"claim_to_headers reserved header", prov(hs + `,"claim_to_headers":[{"claim_name":"sub","header_name":"Host"}]`), `providers[0].claim_to_headers[0].header_name: "Host" may not be set from a token`},
		{"claim_to_headers token header", prov(hs + `,"claim_to_headers":[{"claim_name":"sub","header_name":"authorization"}]`), `providers[0].claim_to_headers[0].header_name: "authorization" is also where tokens are read from`},
		{"forward_payload_header token header", `{"providers":[{` + hs + `,"forward_payload_header":"x-token"},{"issuer":"https://b","algorithms":["HS256"],"hmac_secret":"` + testSecret + `","from_headers":[{"name":"X-Token"}]}]}`, `providers[0].forward_payload_header: "x-token" is also where tokens are read from`},
		{"token in an identity header", prov(hs + `,"from_headers":[{"name":"authorization"},{"name":"X-User-Id"}]`), `providers[0].from_headers[1].name: "x-user-id" is an identity header this filter sets`},
		{"token in x-consumer", prov(hs + `,"from_headers":[{"name":"x-consumer"}]`), `providers[0].from_headers[0].name: "x-consumer" is an identity header this filter sets`},
		{"token in x_user_id", prov(hs + `,"from_headers":[{"name":"X_User_Id"}]`), `providers[0].from_headers[0].name: "x_user_id" is an identity header this filter sets`},
		{"token in x_consumer_permissions", prov(hs + `,"from_headers":[{"name":"x_consumer_permissions"}]`), `providers[0].from_headers[0].name: "x_consumer_permissions" is an identity header this filter sets`},
		{"claim_to_headers token header spelt with _", prov(hs + `,"claim_to_headers":[{"claim_name":"sub","header_name":"x_token"}],"from_headers":[{"name":"x-token"}]`), `providers[0].claim_to_headers[0].header_name: "x_token" is also where tokens are read from`},
		{"spoofed_identity_headers unknown", `{"spoofed_identity_headers":"drop",` + strings.TrimPrefix(prov(hs), "{"), `spoofed_identity_headers: must be one of "strip", "reject", got "drop"`},
		{"remote timeout huge", remote(`{"http_uri":{"uri":"https://x/","cluster":"x","timeout":"5m"}}`), `providers[0].remote_jwks.http_uri.timeout: must be <= 1m0s, got "5m0s"`},
		// Rules (shared/rules) and their jwt-auth overrides.
		{"rule unknown field", `{"providers":[{` + hs + `}],"rules":[{"match":{"prefix":"/a"},"allow_mising":true}]}`, `rules[0]: unknown field "allow_mising"`},
		{"rule allow_missing not bool", `{"providers":[{` + hs + `}],"rules":[{"allow_missing":1}]}`, `rules[0].allow_missing: must be a boolean, got 1`},
		{"rule unknown provider", `{"providers":[{` + hs + `}],"rules":[{"providers":["https://a","nope"]}]}`, `rules[0].providers[1]: unknown provider "nope"`},
		{"rule providers empty", `{"providers":[{` + hs + `}],"rules":[{"providers":[]}]}`, `rules[0].providers: must not be empty`},
		{"rule duplicate provider", `{"providers":[{"name":"p",` + hs + `}],"rules":[{"providers":["p","p"]}]}`, `rules[0].providers[1]: duplicate "p"`},
		{"rule bad match", `{"providers":[{` + hs + `}],"rules":[{"match":{"prefix":"api"}}]}`, `rules[0].match.prefix: must start with "/", got "api"`},
		{"rule unreachable", `{"providers":[{` + hs + `}],"rules":[{"enabled":false},{"match":{"path":"/x"}}]}`, `rules[1]: unreachable: rules[0] matches every request`},
		{"forward_payload_header bad", prov(hs + `,"forward_payload_header":"a b"`), `providers[0].forward_payload_header: invalid header name "a b"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConfig([]byte(tc.config))
			if got := errString(err); got != tc.want {
				t.Errorf("parseConfig(%s)\n got  %s\n want %s", tc.config, got, tc.want)
			}
		})
	}
}

func TestParseConfigTooManyLocations(t *testing.T) {
	var params []string
	for i := range 65 {
		params = append(params, fmt.Sprintf("%q", fmt.Sprint("p", i)))
	}
	cfg := `{"providers":[{"issuer":"https://a","algorithms":["HS256"],"hmac_secret":"` + testSecret + `","from_params":[` + strings.Join(params, ",") + `]}]}`
	want := `providers[0]: more than 64 distinct token locations over all providers`
	if _, err := parseConfig([]byte(cfg)); errString(err) != want {
		t.Errorf("parseConfig(65 params) = %v, want %s", errString(err), want)
	}
}

func TestParseRequire(t *testing.T) {
	hs := `{"issuer":"https://a","algorithms":["HS256"],"hmac_secret":"` + testSecret + `"}`
	for _, tc := range []struct {
		in   string
		want string // error, or "" for success
	}{
		{`{"claims":{"roles":["admin"],"scope":["write","admin"]}}`, ""},
		{`{"claims":{}}`, `rules[0].require.claims: must not be empty`},
		{`{}`, `rules[0].require.claims: required`},
		{`{"claims":{"roles":[]}}`, `rules[0].require.claims.roles: must not be empty`},
		{`{"claims":{"roles":"admin"}}`, `rules[0].require.claims.roles: must be an array of strings, got "admin"`},
		{`{"claims":{"roles":[1]}}`, `rules[0].require.claims.roles[0]: must be a string, got 1`},
		{`{"claim":{}}`, `rules[0].require: unknown field "claim"`},
		{`[]`, `rules[0].require: must be an object, got []`},
	} {
		cfg := `{"providers":[` + hs + `],"rules":[{"match":{"prefix":"/admin"},"require":` + tc.in + `}]}`
		c, err := parseConfig([]byte(cfg))
		if got := errString(err); (tc.want == "" && err != nil) || (tc.want != "" && got != tc.want) {
			t.Errorf("parseConfig(require %s) = %s, want %s", tc.in, got, tc.want)
		}
		if tc.want == "" && len(c.rules.Rules[0].Override.require.claims) != 2 {
			t.Errorf("parseConfig(require %s) = %+v, want 2 claims", tc.in, c.rules.Rules[0].Override)
		}
	}
}

func TestParseRules(t *testing.T) {
	hs := `"algorithms":["HS256"],"hmac_secret":"` + testSecret + `"`
	c := mustConfig(t, `{"shadow":true,"providers":[{"name":"a","issuer":"https://a",`+hs+`},{"name":"b","issuer":"https://b",`+hs+`}],
		"rules":[
			{"match":{"prefix":"/public"},"enabled":false},
			{"match":{"prefix":"/maybe"},"allow_missing":true,"shadow":false},
			{"match":{"prefix":"/admin"},"require":{"claims":{"roles":["admin"]}},"providers":["b"]}
		]}`)
	if !c.shadow || len(c.rules.Rules) != 3 {
		t.Fatalf("shadow, rules = %v, %d; want true, 3", c.shadow, len(c.rules.Rules))
	}
	r := c.rules.Rules
	if r[0].Enabled || !r[1].Enabled || !r[0].Shadow || r[1].Shadow || !r[2].Shadow {
		t.Errorf("enabled/shadow = %v/%v %v/%v %v/%v", r[0].Enabled, r[0].Shadow, r[1].Enabled, r[1].Shadow, r[2].Enabled, r[2].Shadow)
	}
	if !r[1].Override.allowMissing || r[2].Override.allowMissing {
		t.Errorf("allow_missing = %v, %v; want true, false", r[1].Override.allowMissing, r[2].Override.allowMissing)
	}
	if want := []int{1}; !reflect.DeepEqual(r[2].Override.providers, want) {
		t.Errorf("providers = %v, want %v", r[2].Override.providers, want)
	}
	if o := &r[2].Override; o.allows(0) || !o.allows(1) || !r[1].Override.allows(0) {
		t.Errorf("allows: rule 2 (0, 1) = %v, %v; rule 1 (0) = %v", o.allows(0), o.allows(1), r[1].Override.allows(0))
	}
	d := c.rules.Decide(&rules.Request{Path: "/public/../admin/x", Method: "GET"})
	if !d.Enabled || d.Rule != 2 {
		t.Errorf("Decide(/public/../admin/x) = rule %d enabled %v; want rule 2 (normalized path)", d.Rule, d.Enabled)
	}
}

// FuzzParseConfig: any configuration is either refused with a message or
// yields providers that can verify something; never a panic.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(testConfigJSON(f)))
	f.Add([]byte(fuzzConfigJSON(f)))
	f.Add([]byte(`{"providers":[{"issuer":"a","algorithms":["RS256"],"remote_jwks":{"http_uri":{"uri":"https://x/k","cluster":"c"}}}]}`))
	f.Add([]byte(`{"providers":[{"issuer":"a","algorithms":["HS256"],"hmac_secret_base64":"` + strings.Repeat("QUFB", 11) + `"}],"rules":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parseConfig(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("parseConfig(%q): empty error", data)
			}
			return
		}
		if len(c.providers) == 0 || len(c.locations) == 0 {
			t.Fatalf("parseConfig(%q) accepted without providers or locations", data)
		}
		for _, p := range c.providers {
			if p.algs == 0 || p.issuer == "" || p.locs == 0 || p.maxTokenBytes <= 0 {
				t.Fatalf("parseConfig(%q) accepted provider %+v", data, p)
			}
			if p.localKeys == nil && p.remote == nil && p.hmacSecret == nil {
				t.Fatalf("parseConfig(%q) accepted a provider without keys", data)
			}
		}
	})
}
