package main

import (
	"testing"
	"time"
)

func mustLimit(t testing.TB, max, perFill int64, every time.Duration) limit {
	t.Helper()
	l := limit{name: "l", maxTokens: max, tokensPerFill: perFill, fillInterval: every}
	if !l.prepare() {
		t.Fatalf("prepare(%d, %d, %s) = false", max, perFill, every)
	}
	return l
}

func TestBucketBurstThenRefill(t *testing.T) {
	l := mustLimit(t, 5, 1, time.Second)
	ls := []limit{l}
	now := int64(1_000_000_000_000)
	bs := []bucket{l.full(now)}
	for i := 0; i < 5; i++ {
		if v := take(ls, bs, now); !v.allowed || v.remaining != int64(4-i) {
			t.Fatalf("take %d = %+v, want allowed with %d left", i, v, 4-i)
		}
	}
	v := take(ls, bs, now)
	if v.allowed || v.retry != time.Second {
		t.Fatalf("6th take = %+v, want denied, retry 1s", v)
	}
	// Continuous refill: 0.5s gives half a token, not enough; 1s one.
	if v := take(ls, bs, now+int64(500*time.Millisecond)); v.allowed || v.retry != 500*time.Millisecond {
		t.Fatalf("take at +0.5s = %+v, want denied, retry 0.5s", v)
	}
	if v := take(ls, bs, now+int64(time.Second)); !v.allowed || v.remaining != 0 {
		t.Fatalf("take at +1s = %+v, want allowed with 0 left", v)
	}
}

// TestBucketNoDriftOverADay: 10 tokens per 3s (a rate with no exact
// nanosecond period) over a simulated day, with a request every 7ms:
// the admissions are exactly what the rate allows, neither more nor less.
func TestBucketNoDriftOverADay(t *testing.T) {
	l := mustLimit(t, 10, 10, 3*time.Second)
	ls := []limit{l}
	start := int64(0)
	bs := []bucket{l.full(start)}
	admitted := int64(0)
	const day = int64(24 * time.Hour)
	step := int64(7 * time.Millisecond)
	var now int64
	for now = start; now <= day; now += step {
		if take(ls, bs, now).allowed {
			admitted++
		}
	}
	last := now - step
	// Requests arrive far faster than the refill, so every token is taken
	// as soon as it exists: max_tokens + ⌊elapsed × rate⌋ in all.
	want := 10 + last*10/int64(3*time.Second)
	if admitted != want {
		t.Fatalf("admitted %d over a day, want exactly %d", admitted, want)
	}
}

func TestBucketRefillNeverExceedsCapacity(t *testing.T) {
	l := mustLimit(t, 3, 1000, time.Millisecond)
	b := bucket{credit: 0, last: 0}
	for _, d := range []int64{1, int64(time.Millisecond), int64(time.Hour), 1 << 62} {
		got := l.refill(b, d)
		if got.credit > l.capacity || l.remaining(got) > 3 {
			t.Fatalf("refill after %dns = %+v, capacity %d", d, got, l.capacity)
		}
	}
	if got := l.refill(bucket{credit: l.capacity, last: 0}, int64(time.Hour)); got.credit != l.capacity {
		t.Fatalf("refill of a full bucket = %d, want %d", got.credit, l.capacity)
	}
}

func TestBucketClockBackwardsMintsNothing(t *testing.T) {
	l := mustLimit(t, 2, 1, time.Second)
	ls := []limit{l}
	t0 := int64(100 * time.Second)
	bs := []bucket{l.full(t0)}
	take(ls, bs, t0)
	take(ls, bs, t0)
	// The clock jumps back 50s, then forward to just before t0+1s: no
	// token may appear before a full second past t0 has passed.
	for _, now := range []int64{t0 - int64(50*time.Second), t0 - 1, t0, t0 + int64(999*time.Millisecond)} {
		if v := take(ls, bs, now); v.allowed {
			t.Fatalf("take at %v after the clock went back = allowed, want denied", time.Duration(now-t0))
		}
	}
	if v := take(ls, bs, t0+int64(time.Second)); !v.allowed {
		t.Fatalf("take at t0+1s = %+v, want allowed", v)
	}
}

// TestMultipleLimitsAllOrNothing: a request passes only if every bucket
// has a token, and takes from each only then.
func TestMultipleLimitsAllOrNothing(t *testing.T) {
	perSec := mustLimit(t, 2, 2, time.Second)
	perMin := mustLimit(t, 3, 3, time.Minute)
	perMin.name = "minute"
	ls := []limit{perSec, perMin}
	bs := []bucket{perSec.full(0), perMin.full(0)}
	for i := 0; i < 2; i++ {
		if !take(ls, bs, 0).allowed {
			t.Fatalf("take %d denied", i)
		}
	}
	v := take(ls, bs, 0)
	if v.allowed || v.tightest != 0 {
		t.Fatalf("3rd take at 0 = %+v, want denied by the per-second limit", v)
	}
	if perMin.remaining(bs[1]) != 1 {
		t.Fatalf("the per-minute bucket has %d left after a denied request, want 1 (nothing taken)", perMin.remaining(bs[1]))
	}
	if !take(ls, bs, int64(time.Second)).allowed {
		t.Fatal("take at 1s denied")
	}
	v = take(ls, bs, int64(2*time.Second))
	if v.allowed || v.tightest != 1 || v.retry != 20*time.Second-2*time.Second {
		t.Fatalf("take at 2s = %+v, want denied by the minute limit, retry 18s", v)
	}
	if perSec.remaining(bs[0]) != 2 {
		t.Fatalf("per-second bucket = %d, want 2 (untouched by the denial)", perSec.remaining(bs[0]))
	}
}

func TestPrepareRefusesOverflow(t *testing.T) {
	l := limit{maxTokens: 1 << 40, tokensPerFill: 1, fillInterval: 24 * time.Hour}
	if l.prepare() {
		t.Fatalf("prepare(%+v) = true, want false (capacity overflows)", l)
	}
}

func TestSecondsAndRetryAfter(t *testing.T) {
	for _, c := range []struct {
		d     time.Duration
		secs  int64
		retry int64
	}{{0, 0, 1}, {1, 1, 1}, {time.Second, 1, 1}, {time.Second + 1, 2, 2}, {90 * time.Second, 90, 90}} {
		if got := seconds(c.d); got != c.secs {
			t.Errorf("seconds(%v) = %d, want %d", c.d, got, c.secs)
		}
		if got := retryAfter(c.d); got != c.retry {
			t.Errorf("retryAfter(%v) = %d, want %d", c.d, got, c.retry)
		}
	}
}
