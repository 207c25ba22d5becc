package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Test keys. Only their digests appear in most configurations, as in
// production.
const (
	acmeKey    = "acme-key-0123456789abcdef"
	acmeNewKey = "acme-key-rotated-fedcba9876543210"
	globexKey  = "globex-key-5555555555555555"
	adminKey   = "admin-key-7777777777777777"
)

func digest(key string) string {
	d := sha256.Sum256([]byte(key))
	return hex.EncodeToString(d[:])
}

// testConfig is the standard configuration: three consumers, digests only,
// extra top-level members appended (`,"rules":[...]`).
func testConfig(extra string) string {
	return `{"consumers":[
		{"name":"acme","permissions":["read"],"keys":[{"key_sha256":"` + digest(acmeKey) + `"}]},
		{"name":"globex","permissions":["read","write"],"keys":[{"key_sha256":"` + digest(globexKey) + `"}]},
		{"name":"ops","permissions":["read","write","admin"],"keys":[{"key_sha256":"` + strings.ToUpper(digest(adminKey)) + `"}]}
	]` + extra + `}`
}

func mustParse(tb testing.TB, doc string) *config {
	tb.Helper()
	c, err := parseConfig([]byte(doc))
	if err != nil {
		tb.Fatalf("parseConfig(%s) error: %v", doc, err)
	}
	return &c
}

// manyConsumers is a configuration of n consumers with one digest each;
// consumer i's key is consumerKey(i).
func manyConsumers(n int, extra string) string {
	var b strings.Builder
	b.WriteString(`{"consumers":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"name":"c%d","permissions":["read","write"],"keys":[{"key_sha256":%q}]}`, i, digest(consumerKey(i)))
	}
	b.WriteString("]" + extra + "}")
	return b.String()
}

func consumerKey(i int) string { return fmt.Sprintf("key-of-consumer-%06d-abcdefgh", i) }

// rfc3339 formats t as the configuration expects.
func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func wantEqual[T comparable](tb testing.TB, what string, got, want T) {
	tb.Helper()
	if got != want {
		tb.Errorf("%s = %v, want %v", what, got, want)
	}
}

// clockAt is a clock that always says t.
func clockAt(t time.Time) func() time.Time { return func() time.Time { return t } }
