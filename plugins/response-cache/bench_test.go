package main

import (
	"testing"
	"time"
)

// BenchmarkHitLogic is the filter's Go work for a hit, natively: parse the
// request's Cache-Control, build the key, decode a 1 KiB entry from its
// stored bytes, decide reuse. The host calls are in BenchmarkFilter.
func BenchmarkHitLogic(b *testing.B) {
	spec := &keySpec{}
	req := headerList{{":method", "GET"}, {":scheme", "https"}, {":authority", "api.example.com"},
		{":path", "/api/products/1?b=2&a=1"}, {"accept", "application/json"}, {"cache-control", "max-age=600"}}
	e := entry{kind: kindEntry, key: primaryKey(nil, spec, &keyRequest{scheme: "https", authority: "api.example.com", path: "/api/products/1?b=2&a=1"}),
		uri: []byte("https\napi.example.com\n/api/products/1"), responseTime: t0.Unix(), lifetime: 3600, status: 200,
		headers: [][2]string{{"content-type", "application/json"}, {"cache-control", "max-age=3600"}, {"etag", `"abc"`}, {"date", date(0)}},
		body:    make([]byte, 1024)}
	stored := e.appendBinary(nil)
	now := t0.Add(time.Minute)
	key := make([]byte, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		cc := parseCacheControl(req.all("cache-control")...)
		key = primaryKey(key[:0], spec, &keyRequest{scheme: req.get(":scheme"), authority: req.get(":authority"), path: req.get(":path"), header: req.get})
		got, err := decodeEntry(stored)
		if err != nil || string(got.key) != string(key) {
			b.Fatal("no hit")
		}
		st := got.state(now)
		if reuse(&cc, false, &st) != useFresh {
			b.Fatal("not fresh")
		}
	}
}

// BenchmarkStoreLogic is the Go work of a store into a 4096-slot index,
// natively, against an in-memory shared data.
func BenchmarkStoreLogic(b *testing.B) {
	sd := newMapShared()
	s := newStore(sd, "bench", 4096, 64<<20, 1<<20)
	e := testEntry("k", 1024)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.put(e.key, 1, &e, 100); err != nil {
			b.Fatal(err)
		}
	}
}
