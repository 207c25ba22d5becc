package main

import (
	"bytes"
	"testing"
)

// TestEnvelopeBudgetShared: streams of one VM share max_buffered_bytes. A
// stream the budget has no room for gives back what it holds in front of
// the chunk and passes everything after, unchanged; every way a stream lets
// its buffer go (wrapped, given up, flushed) returns its share.
func TestEnvelopeBudgetShared(t *testing.T) {
	t.Parallel()
	env := testEnvelope(t, `{"enabled": true, "max_body_bytes": 1000}`)
	b := &heldBudget{limit: 1000}
	start := func(env *envelopeConfig, cl int64) *envelopeStream {
		s := &envelopeStream{}
		s.start(env, "id", cl)
		s.budget = b
		return s
	}
	a, c := start(env, 600), start(env, 600)
	if act, _ := a.write([]byte(`[1,`), false, testNow()); act != bodyHold || b.used == 0 {
		t.Fatalf("first stream: %v, budget used %d; want hold with its buffer reserved", act, b.used)
	}
	// The second stream's buffer (600 bytes and the prefix) does not fit.
	act, out := c.write([]byte(`[2,`), false, testNow())
	if act != bodyPass || out != nil || !c.overBudget {
		t.Fatalf("second stream over the budget: %v %q overBudget=%v; want pass", act, out, c.overBudget)
	}
	if act, _ := c.write([]byte(`3]`), true, testNow()); act != bodyPass {
		t.Fatalf("second stream after giving up: %v, want pass", act)
	}
	act, out = a.write([]byte(`2]`), true, testNow())
	if act != bodyReplace || !bytes.Contains(out, []byte(`"data":[1,2]`)) {
		t.Fatalf("first stream at the end: %v %q, want its envelope", act, out)
	}
	if b.used != 0 {
		t.Fatalf("budget used %d after both streams ended, want 0", b.used)
	}

	// Growing past the budget mid-body (unknown length): the held bytes go
	// out in front of the chunk, and the budget is whole again.
	big := testEnvelope(t, `{"enabled": true, "max_body_bytes": 100000}`)
	b.limit = 10000
	g := start(big, -1) // starts with 4 KiB, then doubles
	var held []byte
	for i := 0; ; i++ {
		chunk := bytes.Repeat([]byte{' '}, 3000)
		act, out := g.write(chunk, false, testNow())
		if act == bodyHold {
			held = append(held, chunk...)
			continue
		}
		if act != bodyPrepend || !bytes.Equal(out, held) || !g.overBudget {
			t.Fatalf("chunk %d: %v (%d bytes out, %d held), want the held bytes prepended", i, act, len(out), len(held))
		}
		break
	}
	if b.used != 0 {
		t.Fatalf("budget used %d after giving up, want 0", b.used)
	}

	// A stream reset mid-body gives its share back through flush.
	f := start(env, 600)
	f.write([]byte(`[`), false, testNow())
	f.flush()
	if b.used != 0 {
		t.Fatalf("budget used %d after a flush, want 0", b.used)
	}
}
