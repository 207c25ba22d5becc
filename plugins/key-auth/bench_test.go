package main

import (
	"testing"
)

// BenchmarkAuthenticate is the native cost of the request path (find the
// key, hash it, look it up, check permissions) with 10 and with 10,000
// consumers: the lookup is one SHA-256 and one map access either way.
func BenchmarkAuthenticate(b *testing.B) {
	for _, n := range []struct {
		name string
		n    int
	}{{"10-consumers", 10}, {"10000-consumers", 10000}} {
		c := mustParse(b, manyConsumers(n.n, ""))
		headers := [][2]string{{":method", "GET"}, {":path", "/api/x"}, {":authority", "api.example.com"},
			{"x-request-id", "req-1"}, {"accept", "*/*"}, {"x-api-key", consumerKey(n.n / 2)}}
		b.Run(n.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if out := c.authenticate(headers, "/api/x", "GET", nil, clockAt(testNow)); !out.allowed() {
					b.Fatal(out.reason.slug())
				}
			}
		})
		b.Run(n.name+"/unknown-key", func(b *testing.B) {
			bad := append(headers[:len(headers)-1:len(headers)-1], [2]string{"x-api-key", "not-a-key-of-anyone-0000000000"})
			b.ReportAllocs()
			for b.Loop() {
				if out := c.authenticate(bad, "/api/x", "GET", nil, clockAt(testNow)); out.reason != reasonUnknown {
					b.Fatal(out.reason.slug())
				}
			}
		})
	}
}

// BenchmarkParseConfig is the start-up cost natively: parse and index a
// configuration of 10 and 10,000 consumers.
func BenchmarkParseConfig(b *testing.B) {
	for _, n := range []struct {
		name string
		n    int
	}{{"10-consumers", 10}, {"10000-consumers", 10000}} {
		doc := []byte(manyConsumers(n.n, ""))
		b.Run(n.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := parseConfig(doc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
