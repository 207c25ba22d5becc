package main

import (
	"bytes"
	"reflect"
	"testing"
)

func sampleEntry() entry {
	return entry{
		kind: kindEntry, key: []byte("http\na\n/p"), uri: []byte("http\na\n/p"),
		responseTime: 1767355200, initialAge: 3, lifetime: 60, staleIfError: -1, staleWhileRevalidate: -1, flags: flagMustRevalidate, status: 200,
		headers: [][2]string{{"content-type", "text/plain"}, {"etag", `"v1"`}},
		tags:    []string{"product-1"},
		body:    []byte("hello"),
	}
}

func TestEntryRoundTrip(t *testing.T) {
	for _, e := range []entry{sampleEntry(), {kind: kindVaried, key: []byte("k"), vary: []string{"accept"}}} {
		b := e.appendBinary(nil)
		got, err := decodeEntry(b)
		if err != nil {
			t.Fatalf("decodeEntry(appendBinary(%+v)): %v", e, err)
		}
		if !reflect.DeepEqual(normalize(got), normalize(e)) {
			t.Errorf("round trip = %+v, want %+v", got, e)
		}
	}
}

// normalize makes empty and nil slices compare equal.
func normalize(e entry) entry {
	if len(e.body) == 0 {
		e.body = nil
	}
	if len(e.uri) == 0 {
		e.uri = nil
	}
	return e
}

func TestDecodeEntryRefuses(t *testing.T) {
	good := sampleEntry()
	b := good.appendBinary(nil)
	for i := 0; i < len(b); i++ {
		if _, err := decodeEntry(b[:i]); err == nil {
			t.Errorf("decodeEntry(first %d of %d bytes) accepted", i, len(b))
		}
	}
	if _, err := decodeEntry(append(bytes.Clone(b), 0)); err == nil {
		t.Errorf("decodeEntry(trailing byte) accepted")
	}
	bad := bytes.Clone(b)
	bad[1] = 99
	if _, err := decodeEntry(bad); err == nil {
		t.Errorf("decodeEntry(version 99) accepted")
	}
}

func FuzzDecodeEntry(f *testing.F) {
	e := sampleEntry()
	f.Add(e.appendBinary(nil))
	v := entry{kind: kindVaried, key: []byte("k"), vary: []string{"accept"}}
	f.Add(v.appendBinary(nil))
	f.Add([]byte{entryMagic, entryVersion, kindEntry, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEntry(b)
		if err != nil {
			return
		}
		// What decodes re-encodes to an equal entry, so nothing is
		// silently dropped (varints may have been spelt longer than need be).
		again, err := decodeEntry(e.appendBinary(nil))
		if err != nil || !reflect.DeepEqual(normalize(again), normalize(e)) {
			t.Fatalf("re-encoding %x: %+v, %v; want %+v", b, again, err, e)
		}
	})
}
