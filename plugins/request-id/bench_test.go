package main

import (
	"crypto/rand"
	"strconv"
	"testing"
	"time"
)

// benchBody returns a realistic JSON array of objects of about n bytes.
func benchBody(tb testing.TB, n int) []byte {
	tb.Helper()
	b := []byte{'['}
	for i := 0; len(b) < n-120; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `,"name":"user `...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `","email":"user@example.com","active":true,"score":12.5,"tags":["a","b"]}`...)
	}
	return append(b, ']')
}

func BenchmarkNewID(b *testing.B) {
	for _, kind := range []generatorKind{generatorUUIDv4, generatorUUIDv7} {
		b.Run(kind.String()+"/crypto", func(b *testing.B) {
			g := newIDGenerator(kind, rand.Reader)
			now := time.Now()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := g.next(now); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(kind.String()+"/seeded", func(b *testing.B) {
			g := newIDGenerator(kind, seededRand(b, 1))
			now := time.Now()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := g.next(now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkNewUUIDFuncs(b *testing.B) {
	r := seededRand(b, 1)
	b.Run("newUUIDv4", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = newUUIDv4(r)
		}
	})
	b.Run("newUUIDv7", func(b *testing.B) {
		var st v7State
		now := time.Now()
		b.ReportAllocs()
		for b.Loop() {
			_, _ = newUUIDv7(now, r, &st)
		}
	})
	b.Run("newTraceparent", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = newTraceparent(r)
		}
	})
}

func BenchmarkEnvelope(b *testing.B) {
	env := testEnvelope(b, `{"enabled": true}`)
	const id = "0191e3c4-7b8e-7c1a-9f2e-3d4c5b6a7980"
	headers := [][2]string{{"content-type", "application/json; charset=utf-8"}, {"content-length", "1024"}}
	b.Run("decide", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !env.decide("GET", 200, headers).wrap {
				b.Fatal("decide: no wrap")
			}
		}
	})
	for _, size := range []int{1 << 10, 64 << 10} {
		body := benchBody(b, size)
		name := strconv.Itoa(size>>10) + "KiB"
		b.Run("wrap/"+name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := env.wrap(nil, body, id, time.Now()); !ok {
					b.Fatal("not wrapped")
				}
			}
		})
		// 16 KiB chunks, as Envoy delivers bodies, content-length unknown.
		parts := chunks(body, 16<<10, true)
		b.Run("stream/"+name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			var s envelopeStream
			for b.Loop() {
				s.start(env, id, -1)
				for i, c := range parts {
					if act, _ := s.write(c, i == len(parts)-1, time.Now()); i == len(parts)-1 && act != bodyReplace {
						b.Fatalf("last write = %v", act)
					}
				}
			}
		})
		b.Run("stream-content-length/"+name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			var s envelopeStream
			for b.Loop() {
				s.start(env, id, int64(len(body)))
				for i, c := range parts {
					s.write(c, i == len(parts)-1, time.Now())
				}
			}
		})
		invalid := append(append([]byte(nil), body...), 'x')
		b.Run("invalid/"+name, func(b *testing.B) {
			b.SetBytes(int64(len(invalid)))
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := env.wrap(nil, invalid, id, time.Now()); ok {
					b.Fatal("wrapped invalid JSON")
				}
			}
		})
	}
}

// BenchmarkRequest is the per-request work without the envelope: validate
// the incoming ID, make a fresh one, format the access-log line.
func BenchmarkRequest(b *testing.B) {
	g := newIDGenerator(generatorUUIDv7, rand.Reader)
	b.ReportAllocs()
	for b.Loop() {
		now := time.Now()
		id := "client-supplied id"
		if !validIncomingID(id) {
			id, _ = g.next(now)
		}
		_ = formatAccessLog(accessLogEntry{requestID: id, method: "GET", path: "/api/users/1?x=1", status: 200, duration: time.Since(now), bytes: 1234})
	}
}

func BenchmarkAccessLog(b *testing.B) {
	e := accessLogEntry{requestID: "0191e3c4-7b8e-7c1a-9f2e-3d4c5b6a7980", method: "GET", path: "/api/users/1?x=1", status: 200, duration: 1234567, bytes: 1234}
	b.ReportAllocs()
	for b.Loop() {
		_ = formatAccessLog(e)
	}
}
