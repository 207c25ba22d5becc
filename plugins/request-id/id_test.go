package main

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// seededRand returns a deterministic randomness source for tests.
func seededRand(tb testing.TB, seed byte) io.Reader {
	tb.Helper()
	var s [32]byte
	s[0] = seed
	return rand.NewChaCha8(s)
}

// testNow returns a fixed instant for tests that need one value of the
// clock; it is an input to pure functions, not a frozen host clock.
func testNow() time.Time { return time.Date(2026, 11, 27, 4, 40, 18, 123456789, time.UTC) }

func TestValidIncomingID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want bool
	}{
		{"a", true},
		{"0191e3c4-7b8e-7c1a-9f2e-3d4c5b6a7980", true},
		{"req.1_2:3-4", true},
		{"ABCxyz019", true},
		{strings.Repeat("a", 128), true},
		{strings.Repeat("a", 129), false},
		{"", false},
		{" ", false},
		{"abc def", false},
		{"abc\r\nx-evil: 1", false},
		{"abc\n", false},
		{"abc\r", false},
		{"abc\x00", false},
		{"abc\t", false},
		{"a,b", false}, // two header lines joined by a proxy
		{"a;b", false},
		{`a"b`, false},
		{"a/b", false},
		{"a=b", false},
		{"a+b", false},
		{"é", false},
		{"caf\u00e9", false},
		{"\xff", false},
		{"id\u2028", false},
		{"😀", false},
	}
	for _, tt := range tests {
		if got := validIncomingID(tt.in); got != tt.want {
			t.Errorf("validIncomingID(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// checkUUID fails unless s is a canonical lowercase UUID of version with the
// RFC 9562 variant (10xx: 8, 9, a or b).
func checkUUID(tb testing.TB, s string, version byte) {
	tb.Helper()
	if len(s) != 36 {
		tb.Fatalf("uuid %q: length %d, want 36", s, len(s))
	}
	for i := 0; i < len(s); i++ {
		want := "lowercase hex"
		ok := strings.IndexByte(hexDigits, s[i]) >= 0
		if i == 8 || i == 13 || i == 18 || i == 23 {
			want, ok = `"-"`, s[i] == '-'
		}
		if !ok {
			tb.Fatalf("uuid %q: byte %d is %q, want %s", s, i, s[i], want)
		}
	}
	if s[14] != version {
		tb.Errorf("uuid %q: version %c, want %c", s, s[14], version)
	}
	if !strings.Contains("89ab", s[19:20]) {
		tb.Errorf("uuid %q: variant nibble %c, want one of 8, 9, a, b", s, s[19])
	}
	if !validIncomingID(s) {
		tb.Errorf("validIncomingID(%q) = false, want true: generated IDs must survive a hop", s)
	}
}

func TestNewUUIDv4(t *testing.T) {
	t.Parallel()
	r := seededRand(t, 1)
	seen := make(map[string]bool)
	for range 1000 {
		id, err := newUUIDv4(r)
		if err != nil {
			t.Fatalf("newUUIDv4() error = %v", err)
		}
		checkUUID(t, id, '4')
		if seen[id] {
			t.Fatalf("newUUIDv4() = %q twice", id)
		}
		seen[id] = true
	}
}

func TestUUIDBitsFromExtremeRandomness(t *testing.T) {
	t.Parallel()
	for _, fill := range []byte{0x00, 0xff} {
		r := bytes.NewReader(bytes.Repeat([]byte{fill}, 1024))
		v4, err := newUUIDv4(r)
		if err != nil {
			t.Fatalf("newUUIDv4(all %#x) error = %v", fill, err)
		}
		checkUUID(t, v4, '4')
		var st v7State
		v7, err := newUUIDv7(testNow(), r, &st)
		if err != nil {
			t.Fatalf("newUUIDv7(all %#x) error = %v", fill, err)
		}
		checkUUID(t, v7, '7')
	}
	if got, want := mustUUIDv4(t, bytes.NewReader(make([]byte, 16))), "00000000-0000-4000-8000-000000000000"; got != want {
		t.Errorf("newUUIDv4(zeros) = %q, want %q", got, want)
	}
	if got, want := mustUUIDv4(t, bytes.NewReader(bytes.Repeat([]byte{0xff}, 16))), "ffffffff-ffff-4fff-bfff-ffffffffffff"; got != want {
		t.Errorf("newUUIDv4(ones) = %q, want %q", got, want)
	}
}

func mustUUIDv4(tb testing.TB, r io.Reader) string {
	tb.Helper()
	id, err := newUUIDv4(r)
	if err != nil {
		tb.Fatalf("newUUIDv4() error = %v", err)
	}
	return id
}

// v7Timestamp decodes the 48-bit millisecond timestamp of a UUIDv7 string.
func v7Timestamp(tb testing.TB, s string) int64 {
	tb.Helper()
	hex := strings.ReplaceAll(s, "-", "")[:12]
	var ms int64
	for i := 0; i < len(hex); i++ {
		ms = ms<<4 | int64(strings.IndexByte(hexDigits, hex[i]))
	}
	return ms
}

func TestNewUUIDv7Format(t *testing.T) {
	t.Parallel()
	var st v7State
	id, err := newUUIDv7(testNow(), seededRand(t, 2), &st)
	if err != nil {
		t.Fatalf("newUUIDv7() error = %v", err)
	}
	checkUUID(t, id, '7')
	if got, want := v7Timestamp(t, id), testNow().UnixMilli(); got != want {
		t.Errorf("newUUIDv7(%v) timestamp = %d, want %d", testNow(), got, want)
	}
	// The first ID of a millisecond has a counter seed with its top bit
	// clear (the rollover guard).
	if c := id[15]; c > '7' {
		t.Errorf("newUUIDv7() = %q, counter seed nibble %c, want <= 7", id, c)
	}
}

// TestNewUUIDv7Monotonic generates 10,000 IDs with the clock stuck in one
// millisecond, then across milliseconds and with the clock going backwards:
// every ID sorts strictly after the previous one.
func TestNewUUIDv7Monotonic(t *testing.T) {
	t.Parallel()
	clocks := map[string]func(i int) time.Time{
		"within one ms": func(int) time.Time { return testNow() },
		"across ms":     func(i int) time.Time { return testNow().Add(time.Duration(i) * 37 * time.Microsecond) },
		"backwards":     func(i int) time.Time { return testNow().Add(-time.Duration(i) * time.Millisecond) },
		"epoch":         func(int) time.Time { return time.Unix(0, 0) },
	}
	for name, clock := range clocks {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var st v7State
			r := seededRand(t, 3)
			prev := ""
			for i := range 10000 {
				id, err := newUUIDv7(clock(i), r, &st)
				if err != nil {
					t.Fatalf("newUUIDv7() error = %v", err)
				}
				if id <= prev {
					t.Fatalf("newUUIDv7() #%d = %q, want > previous %q", i, id, prev)
				}
				if i%997 == 0 {
					checkUUID(t, id, '7')
				}
				prev = id
			}
		})
	}
}

// TestNewUUIDv7CounterRollover: 10,000 IDs in one millisecond overflow the
// 12-bit counter; the timestamp is borrowed from the next milliseconds, and
// the clock catching up continues from there.
func TestNewUUIDv7CounterRollover(t *testing.T) {
	t.Parallel()
	var st v7State
	r := seededRand(t, 4)
	var last string
	for range 10000 {
		last, _ = newUUIDv7(testNow(), r, &st)
	}
	ms := testNow().UnixMilli()
	got := v7Timestamp(t, last)
	if got <= ms || got > ms+5 {
		t.Errorf("10,000th newUUIDv7(%d ms) timestamp = %d, want in (%d, %d]", ms, got, ms, ms+5)
	}
	next, _ := newUUIDv7(testNow().Add(time.Millisecond), r, &st)
	if next <= last {
		t.Errorf("newUUIDv7(+1ms) = %q, want > %q", next, last)
	}
	later, _ := newUUIDv7(testNow().Add(time.Second), r, &st)
	if got, want := v7Timestamp(t, later), ms+1000; got != want {
		t.Errorf("newUUIDv7(+1s) timestamp = %d, want %d (back on the clock)", got, want)
	}
}

// TestGeneratorsDeterministic pins the output for a seeded randomness source
// and a given clock: generation depends on nothing else.
func TestGeneratorsDeterministic(t *testing.T) {
	t.Parallel()
	var st v7State
	r := seededRand(t, 42)
	var got []string
	for i := range 3 {
		id, err := newUUIDv7(testNow().Add(time.Duration(i/2)*time.Millisecond), r, &st)
		if err != nil {
			t.Fatalf("newUUIDv7() error = %v", err)
		}
		got = append(got, id)
	}
	id, err := newUUIDv4(r)
	if err != nil {
		t.Fatalf("newUUIDv4() error = %v", err)
	}
	got = append(got, id)
	tp, err := newTraceparent(r)
	if err != nil {
		t.Fatalf("newTraceparent() error = %v", err)
	}
	got = append(got, tp)
	want := []string{
		"01a21b4d-dfcb-7007-a230-1fb8d82978da", // counter seeded: 007
		"01a21b4d-dfcb-7008-b056-14969f3403d0", // same ms: counter + 1
		"01a21b4d-dfcc-740a-b3f5-594495798d34", // next ms: new seed
		"17e8f9c9-3b9d-409d-afc7-4d92b4a1351f",
		"00-2a09302503de9d5632618f6d62c63416-9cd2f690fc649a57-01",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("seeded generation = %q, want %q", got, want)
	}

	// The same through idGenerator, from the same seed.
	g := newIDGenerator(generatorUUIDv7, seededRand(t, 42))
	for i := range 3 {
		id, err := g.next(testNow().Add(time.Duration(i/2) * time.Millisecond))
		if err != nil || id != want[i] {
			t.Errorf("idGenerator.next() #%d = %q, %v, want %q, nil", i, id, err, want[i])
		}
	}
}

func TestIDGenerator(t *testing.T) {
	t.Parallel()
	for _, kind := range []generatorKind{generatorUUIDv4, generatorUUIDv7} {
		g := newIDGenerator(kind, seededRand(t, 5))
		version := byte('7')
		if kind == generatorUUIDv4 {
			version = '4'
		}
		for range 100 {
			id, err := g.next(testNow())
			if err != nil {
				t.Fatalf("idGenerator{%v}.next() error = %v", kind, err)
			}
			checkUUID(t, id, version)
		}
	}
}

type failingReader struct{ err error }

func (r failingReader) Read([]byte) (int, error) { return 0, r.err }

func TestGeneratorsRandomnessError(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	short := bytes.NewReader([]byte{1, 2, 3})
	if id, err := newUUIDv4(failingReader{boom}); !errors.Is(err, boom) || id != "" {
		t.Errorf("newUUIDv4(failing) = %q, %v, want \"\", %v", id, err, boom)
	}
	if id, err := newUUIDv4(short); err == nil || id != "" {
		t.Errorf("newUUIDv4(short) = %q, %v, want \"\", error", id, err)
	}
	var st v7State
	if id, err := newUUIDv7(testNow(), failingReader{boom}, &st); !errors.Is(err, boom) || id != "" {
		t.Errorf("newUUIDv7(failing) = %q, %v, want \"\", %v", id, err, boom)
	}
	if tp, err := newTraceparent(failingReader{boom}); !errors.Is(err, boom) || tp != "" {
		t.Errorf("newTraceparent(failing) = %q, %v, want \"\", %v", tp, err, boom)
	}
	g := newIDGenerator(generatorUUIDv7, failingReader{boom})
	if id, err := g.next(testNow()); !errors.Is(err, boom) || id != "" {
		t.Errorf("idGenerator.next(failing) = %q, %v, want \"\", %v", id, err, boom)
	}
}

func TestDecideID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		incoming       string
		present, trust bool
		want           idOutcome
	}{
		{"", false, true, idGenerated},
		{"", false, false, idGenerated},
		{"abc", true, true, idKept},
		{"abc", true, false, idReplaced},
		{"", true, true, idReplaced},
		{"a b", true, true, idReplaced},
		{strings.Repeat("a", 129), true, true, idReplaced},
	}
	for _, tt := range tests {
		if got := decideID(tt.incoming, tt.present, tt.trust); got != tt.want {
			t.Errorf("decideID(%q, present %v, trust %v) = %v, want %v", tt.incoming, tt.present, tt.trust, got, tt.want)
		}
	}
}
