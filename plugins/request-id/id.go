package main

import (
	"io"
	"time"
)

// maxIncomingIDLen is the longest incoming request ID that is kept.
const maxIncomingIDLen = 128

// validIncomingID reports whether an incoming request ID may be kept: 1–128
// characters of [A-Za-z0-9._:-] and nothing else. This excludes CR/LF,
// spaces, commas (so two header lines joined by a proxy are rejected), quotes
// and any non-ASCII byte, so a kept ID is safe in headers, log lines and JSON.
func validIncomingID(s string) bool {
	if len(s) == 0 || len(s) > maxIncomingIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// idOutcome is what the filter does with the request ID header of one
// request. Every request the filter handles gets exactly one outcome, and
// each outcome has its own counter.
type idOutcome uint8

const (
	idGenerated idOutcome = iota // no incoming ID: a fresh one is set
	idKept                       // a valid, trusted incoming ID is kept
	idReplaced                   // an incoming ID was dropped for a fresh one
)

// decideID says what to do with the incoming ID header: present reports
// whether the request had the header at all (an empty value is present,
// and replaced). An incoming ID is kept only when it is trusted and valid.
func decideID(incoming string, present, trust bool) idOutcome {
	switch {
	case !present:
		return idGenerated
	case trust && validIncomingID(incoming):
		return idKept
	}
	return idReplaced
}

// generatorKind selects how fresh request IDs are made (config "generator").
type generatorKind uint8

const (
	generatorUUIDv7 generatorKind = iota // default: time-ordered
	generatorUUIDv4
)

// String returns the configuration spelling of k.
func (k generatorKind) String() string {
	if k == generatorUUIDv4 {
		return "uuidv4"
	}
	return "uuidv7"
}

// uuidLen is the length of a UUID in its canonical 8-4-4-4-12 text form.
const uuidLen = 36

const hexDigits = "0123456789abcdef"

// formatUUID writes u in canonical lowercase 8-4-4-4-12 form.
func formatUUID(u *[16]byte) [uuidLen]byte {
	var out [uuidLen]byte
	j := 0
	for i, b := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out[j] = '-'
			j++
		}
		out[j] = hexDigits[b>>4]
		out[j+1] = hexDigits[b&0x0f]
		j += 2
	}
	return out
}

// setVersionVariant sets the 4-bit version field and the 2-bit variant 10
// (RFC 9562 §4.1, §4.2).
func setVersionVariant(u *[16]byte, version byte) {
	u[6] = u[6]&0x0f | version<<4
	u[8] = u[8]&0x3f | 0x80
}

// fillUUIDv4 fills u with a random UUID version 4 (RFC 9562 §5.4): 122 bits
// from rand, then the version and variant bits.
func fillUUIDv4(u *[16]byte, rand io.Reader) error {
	if _, err := io.ReadFull(rand, u[:]); err != nil {
		return err
	}
	setVersionVariant(u, 4)
	return nil
}

// newUUIDv4 returns a random UUID version 4 in canonical text form. rand is
// the randomness source (in the plugin, the host's WASI random_get; see random_wasip1.go).
func newUUIDv4(rand io.Reader) (string, error) {
	var u [16]byte
	if err := fillUUIDv4(&u, rand); err != nil {
		return "", err
	}
	s := formatUUID(&u)
	return string(s[:]), nil
}

// v7State keeps what UUIDv7 generation needs to stay monotonic: one per VM
// (a proxy-wasm VM is single-threaded, so no locking). The zero value is ready.
//
// Monotonicity follows RFC 9562 §6.2 method 1 (fixed-length dedicated
// counter): the 12-bit rand_a field is a counter. last holds the previous
// 48-bit millisecond timestamp and 12-bit counter as one 60-bit number
// (ms<<12 | counter); every new ID is strictly greater than the previous one:
//   - in a new millisecond the counter is seeded with 11 random bits (top bit
//     clear, the rollover guard of §6.2), so IDs do not reveal how many were
//     made in that millisecond;
//   - within the same millisecond, or if the clock goes backwards, the
//     counter is incremented, and when it rolls over the increment carries
//     into the timestamp (§6.2 "Counter Rollover Handling": the timestamp is
//     borrowed from the future until the clock catches up).
//
// rand_b (62 bits) is fresh randomness for every ID.
type v7State struct {
	last    uint64   // ms<<12 | counter of the previous ID; 0 before the first
	scratch [10]byte // 8 bytes for rand_b, 2 for the counter seed
}

// fillUUIDv7 fills u with a UUID version 7 (RFC 9562 §5.7) for time now.
func fillUUIDv7(u *[16]byte, now time.Time, rand io.Reader, st *v7State) error {
	if _, err := io.ReadFull(rand, st.scratch[:]); err != nil {
		return err
	}
	ms := now.UnixMilli()
	if ms < 0 {
		ms = 0 // before 1970: the field is unsigned
	}
	ms &= 1<<48 - 1
	seed := uint64(st.scratch[8])<<8 | uint64(st.scratch[9])
	next := uint64(ms)<<12 | seed&0x7ff
	if next <= st.last || uint64(ms) == st.last>>12 {
		next = st.last + 1
	}
	st.last = next

	ts := next >> 12
	counter := next & 0xfff
	u[0] = byte(ts >> 40)
	u[1] = byte(ts >> 32)
	u[2] = byte(ts >> 24)
	u[3] = byte(ts >> 16)
	u[4] = byte(ts >> 8)
	u[5] = byte(ts)
	u[6] = byte(counter >> 8)
	u[7] = byte(counter)
	copy(u[8:], st.scratch[:8])
	setVersionVariant(u, 7)
	return nil
}

// newUUIDv7 returns a time-ordered UUID version 7 in canonical text form.
// now is the host's clock, rand the host's randomness, st the VM's state; IDs
// from one state are strictly increasing (as bytes and as strings).
func newUUIDv7(now time.Time, rand io.Reader, st *v7State) (string, error) {
	var u [16]byte
	if err := fillUUIDv7(&u, now, rand, st); err != nil {
		return "", err
	}
	s := formatUUID(&u)
	return string(s[:]), nil
}

// idGenerator makes fresh request IDs for one VM. It is what the wiring
// keeps per VM: it remembers the UUIDv7 state and reuses one scratch array,
// so next allocates only the returned string.
type idGenerator struct {
	kind generatorKind
	rand io.Reader
	v7   v7State
	u    [16]byte
}

// newIDGenerator returns a generator of kind reading randomness from rand.
func newIDGenerator(kind generatorKind, rand io.Reader) *idGenerator {
	return &idGenerator{kind: kind, rand: rand}
}

// next returns a fresh ID; now is only used by UUIDv7.
func (g *idGenerator) next(now time.Time) (string, error) {
	var err error
	if g.kind == generatorUUIDv4 {
		err = fillUUIDv4(&g.u, g.rand)
	} else {
		err = fillUUIDv7(&g.u, now, g.rand, &g.v7)
	}
	if err != nil {
		return "", err
	}
	s := formatUUID(&g.u)
	return string(s[:]), nil
}
