package main

import "time"

// The token bucket in exact integer arithmetic.
//
// A limit of P tokens per interval U (nanoseconds) refills at P/U tokens per
// nanosecond. Counting credit in units where one token is worth U/g and a
// nanosecond earns P/g (g = gcd(P, U)), every refill is an exact integer
// product: no rounding, so no drift however often the bucket is refilled,
// and the same answer whatever the pattern of requests. The price is a
// bound on max_tokens × U/g (checked at configuration time).

// limit is one configured bucket shape.
type limit struct {
	name          string
	maxTokens     int64
	tokensPerFill int64
	fillInterval  time.Duration

	// Derived by prepare: the credit one token costs, the credit one
	// nanosecond earns, and the credit of a full bucket.
	tokenCost  int64
	perNano    int64
	capacity   int64
	windowSecs int64 // seconds to refill an empty bucket (IETF w=)
}

// maxCapacity keeps capacity + one refill step far from int64 overflow.
const maxCapacity = 1 << 62

// prepare derives the fixed-point constants; ok is false when the
// capacity does not fit (a huge max_tokens with a very slow refill).
func (l *limit) prepare() bool {
	u := int64(l.fillInterval)
	g := gcd(l.tokensPerFill, u)
	l.tokenCost = u / g
	l.perNano = l.tokensPerFill / g
	if l.maxTokens > maxCapacity/l.tokenCost {
		return false
	}
	l.capacity = l.maxTokens * l.tokenCost
	l.windowSecs = ceilDiv(ceilDiv(l.capacity, l.perNano), int64(time.Second))
	return true
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// ceilDiv is ⌈a/b⌉ for a ≥ 0, b > 0.
func ceilDiv(a, b int64) int64 {
	return (a + b - 1) / b
}

// bucket is one key's state for one limit: its credit and the host time
// (Unix nanoseconds) it was last refilled at.
type bucket struct {
	credit int64
	last   int64
}

// full is a new bucket, as a key never seen before gets.
func (l *limit) full(now int64) bucket {
	return bucket{credit: l.capacity, last: now}
}

// refill brings b up to now. A clock that went backwards (or another
// worker that wrote a later time) earns nothing and leaves last alone, so
// time is never counted twice.
func (l *limit) refill(b bucket, now int64) bucket {
	elapsed := now - b.last
	if elapsed <= 0 {
		return b
	}
	b.last = now
	missing := l.capacity - b.credit
	if missing <= 0 {
		b.credit = l.capacity
		return b
	}
	// elapsed × perNano may overflow for a long idle key; anything from
	// ⌈missing/perNano⌉ on fills the bucket anyway.
	if elapsed >= ceilDiv(missing, l.perNano) {
		b.credit = l.capacity
		return b
	}
	b.credit += elapsed * l.perNano
	return b
}

// remaining is the number of whole tokens in b.
func (l *limit) remaining(b bucket) int64 {
	if b.credit <= 0 {
		return 0
	}
	return b.credit / l.tokenCost
}

// untilToken is how long until b holds one whole token (0 if it does).
func (l *limit) untilToken(b bucket) time.Duration {
	short := l.tokenCost - b.credit
	if short <= 0 {
		return 0
	}
	return time.Duration(ceilDiv(short, l.perNano))
}

// untilFull is how long until b is full again.
func (l *limit) untilFull(b bucket) time.Duration {
	short := l.capacity - b.credit
	if short <= 0 {
		return 0
	}
	return time.Duration(ceilDiv(short, l.perNano))
}

// verdict is the outcome of one request against a set of buckets.
type verdict struct {
	allowed bool
	// tightest is the index of the limit the response headers describe:
	// for an allowed request the one with the fewest tokens left, for a
	// denied one the one that makes the client wait longest.
	tightest  int
	remaining int64         // whole tokens left in the tightest bucket
	reset     time.Duration // until the tightest bucket is full
	retry     time.Duration // denied: until every bucket has a token
}

// take refills every bucket to now and, only if each holds a whole token,
// takes one from each. bs is updated in place (refilled in any case).
func take(ls []limit, bs []bucket, now int64) verdict {
	v := verdict{allowed: true}
	for i := range ls {
		bs[i] = ls[i].refill(bs[i], now)
		if wait := ls[i].untilToken(bs[i]); wait > 0 {
			if v.allowed || wait > v.retry {
				v.tightest, v.retry = i, wait
			}
			v.allowed = false
		}
	}
	if v.allowed {
		for i := range ls {
			bs[i].credit -= ls[i].tokenCost
		}
		v.tightest = tightest(ls, bs)
	}
	l := &ls[v.tightest]
	v.remaining = l.remaining(bs[v.tightest])
	v.reset = l.untilFull(bs[v.tightest])
	return v
}

// tightest is the limit with the fewest whole tokens left; ties go to the
// smaller bucket, whose count moves fastest.
func tightest(ls []limit, bs []bucket) int {
	best := 0
	for i := 1; i < len(ls); i++ {
		ri, rb := ls[i].remaining(bs[i]), ls[best].remaining(bs[best])
		if ri < rb || ri == rb && ls[i].maxTokens < ls[best].maxTokens {
			best = i
		}
	}
	return best
}

// seconds rounds d up to whole seconds, as Retry-After and the reset
// headers carry them.
func seconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return ceilDiv(int64(d), int64(time.Second))
}
