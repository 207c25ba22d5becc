package main

import (
	"bytes"
	"encoding/hex"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestParseConfigDefaults(t *testing.T) {
	t.Parallel()
	c := mustParse(t, testConfig(""))
	wantEqual(t, "header", c.header, "x-api-key")
	wantEqual(t, "query_param", c.queryParam, "")
	wantEqual(t, "hide_credentials", c.hideCredentials, true)
	wantEqual(t, "allow_missing", c.allowMissing, false)
	wantEqual(t, "consumer_header", c.consumerHeader, "x-consumer")
	wantEqual(t, "permissions_header", c.permissionsHeader, "x-consumer-permissions")
	wantEqual(t, "keys", len(c.keys), 3)
	wantEqual(t, "challenge", c.challenge(), "Key")
	if want := []string{"x-user-id", "x-user-roles", "x-consumer", "x-consumer-permissions"}; !reflect.DeepEqual(c.guard.Names(), want) {
		t.Errorf("guard owns %q, want %q", c.guard.Names(), want)
	}
	for m, want := range map[string]string{"GET": "read", "HEAD": "read", "OPTIONS": "read", "POST": "write", "DELETE": "write", "PURGE": "write"} {
		wantEqual(t, "permission of "+m, c.perms.of(m), want)
	}
	wantEqual(t, "plaintext keys", len(c.plaintext), 0)
}

func TestParseConfigOptions(t *testing.T) {
	t.Parallel()
	c := mustParse(t, `{"consumers":[{"name":"dev","keys":[{"key":"dev-key-1"},{"key_sha256":"`+digest("x")+`","not_before":"2026-01-01T00:00:00Z","not_after":"2026-02-01T00:00:00.5+01:00"}]}],
		"header":"X-Partner-Key","query_param":"apikey","hide_credentials":false,"allow_missing":true,
		"permission_by_method":{"get":"view","*":"","POST":"create"},"consumer_header":"X-Partner","permissions_header":"x-partner-perms",
		"realm":"partners","error_format":"problem+json","shadow":true,
		"rules":[{"match":{"prefix":"/admin"},"require":["admin"],"allow_missing":false}]}`)
	wantEqual(t, "header", c.header, "x-partner-key")
	wantEqual(t, "query_param", c.queryParam, "apikey")
	wantEqual(t, "hide_credentials", c.hideCredentials, false)
	wantEqual(t, "allow_missing", c.allowMissing, true)
	wantEqual(t, "consumer_header", c.consumerHeader, "x-partner")
	wantEqual(t, "challenge", c.challenge(), `Key realm="partners"`)
	wantEqual(t, "shadow", c.shadow, true)
	wantEqual(t, "permission of GET", c.perms.of("GET"), "view")
	wantEqual(t, "permission of POST", c.perms.of("POST"), "create")
	wantEqual(t, "permission of PUT", c.perms.of("PUT"), "")
	if want := []string{"consumers[0].keys[0]"}; !reflect.DeepEqual(c.plaintext, want) {
		t.Errorf("plaintext = %q, want %q", c.plaintext, want)
	}
	ov := c.rules.Rules[0].Override
	if ov.allowMissing || !reflect.DeepEqual(ov.require, []string{"admin"}) {
		t.Errorf("rules[0] override = %+v, want allow_missing false, require [admin]", ov)
	}
	// A rule without allow_missing inherits the top-level one.
	c = mustParse(t, testConfig(`,"allow_missing":true,"rules":[{"match":{"prefix":"/x"},"require":["a"]}]`))
	wantEqual(t, "inherited allow_missing", c.rules.Rules[0].Override.allowMissing, true)
	wantEqual(t, "inherited allow_missing lowers protection", c.rules.Rules[0].LowersProtection, false)
	// allow_missing where the top level has none lowers protection: the
	// rule then applies only when every form of the request matches.
	c = mustParse(t, testConfig(`,"rules":[{"match":{"prefix":"/open/"},"allow_missing":true},{"match":{"prefix":"/x"},"require":["a"]}]`))
	wantEqual(t, "rules[0] lowers protection", c.rules.Rules[0].LowersProtection, true)
	wantEqual(t, "rules[1] lowers protection", c.rules.Rules[1].LowersProtection, false)
}

// TestParseConfigErrors pins the exact messages: each names the field path
// and the value (a plaintext key is never quoted back).
func TestParseConfigErrors(t *testing.T) {
	t.Parallel()
	d := digest(acmeKey)
	one := func(keys string) string {
		return `{"consumers":[{"name":"a","keys":[` + keys + `]}]}`
	}
	tests := []struct {
		name, doc, want string
	}{
		{"empty", ``, `consumers: required`},
		{"not JSON", `{"consumers":`, ``},
		{"unknown top-level", `{"consumer":[]}`, `unknown field "consumer"`},
		{"consumers empty", `{"consumers":[]}`, `consumers: must not be empty`},
		{"consumers not array", `{"consumers":{}}`, `consumers: must be an array of objects, got {}`},
		{"unknown consumer field", `{"consumers":[{"name":"a","key":"x"}]}`, `consumers[0]: unknown field "key"`},
		{"no name", `{"consumers":[{"keys":[{"key_sha256":"` + d + `"}]}]}`, `consumers[0].name: required`},
		{"bad name", `{"consumers":[{"name":"a b","keys":[{"key_sha256":"` + d + `"}]}]}`, `consumers[0].name: must be 1 to 64 letters, digits, '-' or '_', got "a b"`},
		{"duplicate name", `{"consumers":[{"name":"a","keys":[{"key_sha256":"` + d + `"}]},{"name":"a","keys":[{"key":"k"}]}]}`, `consumers[1].name: duplicate "a" (also consumers[0])`},
		{"names sharing a metric", `{"consumers":[{"name":"a-b","keys":[{"key_sha256":"` + d + `"}]},{"name":"a_b","keys":[{"key":"k"}]}]}`, `consumers[1].name: "a_b" and consumers[0] "a-b" would share a metric name`},
		{"no keys", `{"consumers":[{"name":"a"}]}`, `consumers[0].keys: required`},
		{"keys empty", one(``), `consumers[0].keys: must not be empty`},
		{"bad permission", `{"consumers":[{"name":"a","permissions":["read,write"],"keys":[{"key":"k"}]}]}`, "consumers[0].permissions[0]: must be a permission name (letters, digits, and !#$%&'*+-.^_`|~), got \"read,write\""},
		{"duplicate permission", `{"consumers":[{"name":"a","permissions":["r","r"],"keys":[{"key":"k"}]}]}`, `consumers[0].permissions[1]: duplicate "r"`},
		{"unknown key field", one(`{"key_sha":"` + d + `"}`), `consumers[0].keys[0]: unknown field "key_sha"`},
		{"neither", one(`{"not_before":"2026-01-01T00:00:00Z"}`), `consumers[0].keys[0]: needs key_sha256 (recommended) or key`},
		{"both", one(`{"key":"k","key_sha256":"` + d + `"}`), `consumers[0].keys[0]: set either key_sha256 or key, not both`},
		{"short digest", one(`{"key_sha256":"abc"}`), `consumers[0].keys[0].key_sha256: must be 64 hex digits (printf %s "$KEY" | sha256sum), got 3 characters`},
		{"non-hex digest", one(`{"key_sha256":"` + strings.Repeat("g", 64) + `"}`), `consumers[0].keys[0].key_sha256: must be 64 hex digits, got a non-hex character`},
		{"empty key", one(`{"key":""}`), `consumers[0].keys[0].key: must not be empty`},
		{"key with spaces", one(`{"key":" secret"}`), `consumers[0].keys[0].key: must be printable without leading or trailing spaces (it travels in a header)`},
		{"key with newline", one(`{"key":"sec\nret"}`), `consumers[0].keys[0].key: must be printable without leading or trailing spaces (it travels in a header)`},
		{"long key", one(`{"key":"` + strings.Repeat("k", 1025) + `"}`), `consumers[0].keys[0].key: must be at most 1024 bytes, got 1025`},
		{"bad not_before", one(`{"key":"k","not_before":"2026-01-01"}`), `consumers[0].keys[0].not_before: must be an RFC 3339 time like "2026-01-31T00:00:00Z", got "2026-01-01"`},
		{"window backwards", one(`{"key":"k","not_before":"2026-02-01T00:00:00Z","not_after":"2026-01-01T00:00:00Z"}`), `consumers[0].keys[0].not_after: must be after not_before (2026-02-01T00:00:00Z), got 2026-01-01T00:00:00Z`},
		{"window empty", one(`{"key":"k","not_before":"2026-02-01T00:00:00Z","not_after":"2026-02-01T00:00:00Z"}`), `consumers[0].keys[0].not_after: must be after not_before (2026-02-01T00:00:00Z), got 2026-02-01T00:00:00Z`},
		{"duplicate key in one consumer", one(`{"key_sha256":"` + d + `"},{"key_sha256":"` + d + `"}`), `consumers[0].keys[1]: duplicate key: the same key as consumers[0].keys[0] (consumer "a")`},
		{"duplicate digest across consumers", `{"consumers":[{"name":"a","keys":[{"key_sha256":"` + d + `"}]},{"name":"b","keys":[{"key_sha256":"` + strings.ToUpper(d) + `"}]}]}`,
			`consumers[1].keys[0]: duplicate key: the same key as consumers[0].keys[0] (consumer "a")`},
		{"plaintext equal to another's digest", `{"consumers":[{"name":"a","keys":[{"key_sha256":"` + d + `"}]},{"name":"b","keys":[{"key":"` + acmeKey + `"}]}]}`,
			`consumers[1].keys[0]: duplicate key: the same key as consumers[0].keys[0] (consumer "a")`},
		{"plaintext twice", `{"consumers":[{"name":"a","keys":[{"key":"twin-secret"}]},{"name":"b","keys":[{"key":"other"},{"key":"twin-secret"}]}]}`,
			`consumers[1].keys[1]: duplicate key: the same key as consumers[0].keys[0] (consumer "a")`},
		{"bad header", `{"consumers":[{"name":"a","keys":[{"key":"k"}]}],"header":"x api"}`, `header: must be a header name, got "x api"`},
		{"header is identity", `{"consumers":[{"name":"a","keys":[{"key":"k"}]}],"header":"X-Consumer"}`, `header: "x-consumer" is an identity header this filter removes`},
		{"header is identity, underscore", `{"consumers":[{"name":"a","keys":[{"key":"k"}]}],"header":"x_user_id"}`, `header: "x_user_id" is an identity header this filter removes`},
		{"header is permissions header", `{"consumers":[{"name":"a","keys":[{"key":"k"}]}],"header":"x-p","permissions_header":"x-p"}`, `header: "x-p" is an identity header this filter removes`},
		{"empty query_param", `{"consumers":[{"name":"a","keys":[{"key":"k"}]}],"query_param":""}`, `query_param: must not be empty`},
		{"reserved consumer_header", `{"consumers":[{"name":"a","keys":[{"key":"k"}]}],"consumer_header":"Authorization"}`, `consumer_header: "authorization" may not carry the consumer`},
		{"same identity headers", `{"consumers":[{"name":"a","keys":[{"key":"k"}]}],"consumer_header":"x-c","permissions_header":"X-C"}`, `permissions_header: must differ from consumer_header, both are "x-c"`},
		{"realm quote", `{"consumers":[{"name":"a","keys":[{"key":"k"}]}],"realm":"a\"b"}`, `realm: must not contain quotes, backslashes or control characters, got "a\"b"`},
		{"hide_credentials type", `{"consumers":[{"name":"a","keys":[{"key":"k"}]}],"hide_credentials":"yes"}`, `hide_credentials: must be a boolean, got "yes"`},
		{"permission_by_method without *", `{"consumers":[{"name":"a","keys":[{"key":"k"}]}],"permission_by_method":{"GET":"read"}}`, `permission_by_method: needs a "*" entry: the permission of every method not listed`},
		{"permission_by_method bad method", `{"consumers":[{"name":"a","keys":[{"key":"k"}]}],"permission_by_method":{"G T":"read","*":"w"}}`, `permission_by_method: "G T" is not an HTTP method`},
		{"permission_by_method duplicate", `{"consumers":[{"name":"a","keys":[{"key":"k"}]}],"permission_by_method":{"get":"read","GET":"r","*":"w"}}`, `permission_by_method.GET: duplicate method "GET"`},
		{"permission_by_method bad value", `{"consumers":[{"name":"a","keys":[{"key":"k"}]}],"permission_by_method":{"*":"a b"}}`, `permission_by_method.*: must be a permission name or "", got "a b"`},
		{"error_format", `{"consumers":[{"name":"a","keys":[{"key":"k"}]}],"error_format":"xml"}`, `error_format: must be one of "json", "problem+json", got "xml"`},
		{"rule require empty", `{"consumers":[{"name":"a","keys":[{"key":"k"}]}],"rules":[{"match":{"prefix":"/a"},"require":[]}]}`, `rules[0].require: must not be empty`},
		{"rule require bad", `{"consumers":[{"name":"a","keys":[{"key":"k"}]}],"rules":[{"match":{"prefix":"/a"},"require":["a b"]}]}`, `rules[0].require[0]: must be a permission name, got "a b"`},
		{"rule unknown override", `{"consumers":[{"name":"a","keys":[{"key":"k"}]}],"rules":[{"match":{"prefix":"/a"},"requires":["a"]}]}`, `rules[0]: unknown field "requires"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseConfig([]byte(tt.doc))
			if err == nil {
				t.Fatalf("parseConfig(%s) error = nil, want %q", tt.doc, tt.want)
			}
			if tt.want != "" && err.Error() != tt.want {
				t.Errorf("parseConfig(%s) error =\n  %s\nwant\n  %s", tt.doc, err, tt.want)
			}
			for _, secret := range []string{acmeKey, "secret", "sec\nret", "twin-secret", strings.Repeat("k", 1025)} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("parseConfig error %q quotes a plaintext key", err)
				}
			}
		})
	}
}

// TestDecodeHexAgreesWithEncodingHex pins the copy-free decoder of
// key_sha256 to encoding/hex: every byte value, at an odd and an even
// position, is accepted or refused alike and decodes alike.
func TestDecodeHexAgreesWithEncodingHex(t *testing.T) {
	t.Parallel()
	base := []byte(strings.Repeat("0123456789abcdefABCDEF", 3)[:64])
	for c := range 256 {
		for _, at := range []int{0, 63} {
			s := slices.Clone(base)
			s[at] = byte(c)
			want, err := hex.DecodeString(string(s))
			got := make([]byte, 32)
			ok := decodeHex(got, string(s))
			if ok != (err == nil) || ok && !bytes.Equal(got, want) {
				t.Fatalf("decodeHex(%q) = %x, %v; encoding/hex: %x, %v", s, got, ok, want, err)
			}
		}
	}
}
