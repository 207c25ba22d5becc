package engine

import (
	"sort"
	"sync"
	"time"
)

// Clock is the host's time source: real time plus a test-controlled offset.
// Real time always flows underneath because a monotonic clock that moves
// only when a test says so stalls the Go GC inside a plugin (RATIONALE.md,
// "Why does the clock keep real time flowing?"); Advance only ever adds to it.
type Clock struct {
	mu        sync.Mutex
	realStart time.Time // carries Go's monotonic reading
	wallStart time.Time
	offset    time.Duration
	timers    []*timer
	seq       uint64
	wake      chan struct{}
	stop      chan struct{}
	stopOnce  sync.Once
	advancing sync.Mutex
}

// monoBase keeps the guest's monotonic clock far from zero, as a real
// host's uptime-based clock is.
const monoBase = time.Hour

type timer struct {
	deadline time.Duration // in monotonic clock units (since realStart + offset)
	seq      uint64
	w        *worker
	fn       func()
	stopped  bool
	index    int
}

// NewClock starts a clock at the current real time.
func NewClock() *Clock {
	now := time.Now()
	c := &Clock{realStart: now, wallStart: now.Round(0), wake: make(chan struct{}, 1), stop: make(chan struct{})}
	go c.loop()
	return c
}

func (c *Clock) elapsedLocked() time.Duration { return time.Since(c.realStart) + c.offset }

// Now is the wall clock (WASI CLOCK_REALTIME).
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.wallStart.Add(c.elapsedLocked())
}

// Monotonic is WASI CLOCK_MONOTONIC in nanoseconds.
func (c *Clock) Monotonic() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return int64(monoBase + c.elapsedLocked())
}

func (c *Clock) elapsed() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.elapsedLocked()
}

// afterFunc posts fn to w's dispatcher once d has passed on this clock.
func (c *Clock) afterFunc(d time.Duration, w *worker, fn func()) *timer {
	c.mu.Lock()
	c.seq++
	t := &timer{deadline: c.elapsedLocked() + d, seq: c.seq, w: w, fn: fn}
	c.timers = append(c.timers, t)
	c.mu.Unlock()
	c.poke()
	return t
}

func (c *Clock) cancel(t *timer) {
	if t == nil {
		return
	}
	c.mu.Lock()
	t.stopped = true
	for i, x := range c.timers {
		if x == t {
			c.timers = append(c.timers[:i], c.timers[i+1:]...)
			break
		}
	}
	c.mu.Unlock()
}

func (c *Clock) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// popDueLocked removes and returns timers due at or before limit, in order.
func (c *Clock) popDueLocked(limit time.Duration) []*timer {
	sort.Slice(c.timers, func(i, j int) bool {
		if c.timers[i].deadline != c.timers[j].deadline {
			return c.timers[i].deadline < c.timers[j].deadline
		}
		return c.timers[i].seq < c.timers[j].seq
	})
	n := 0
	for n < len(c.timers) && c.timers[n].deadline <= limit {
		n++
	}
	due := append([]*timer(nil), c.timers[:n]...)
	c.timers = append(c.timers[:0], c.timers[n:]...)
	return due
}

// loop fires timers as real time reaches them.
func (c *Clock) loop() {
	rt := time.NewTimer(time.Hour)
	defer rt.Stop()
	for {
		c.mu.Lock()
		due := c.popDueLocked(c.elapsedLocked())
		wait := time.Hour
		if len(c.timers) > 0 {
			min := c.timers[0].deadline
			for _, t := range c.timers {
				if t.deadline < min {
					min = t.deadline
				}
			}
			wait = min - c.elapsedLocked()
			if wait < 0 {
				wait = 0
			}
		}
		c.mu.Unlock()
		for _, t := range due {
			t.w.post(t.fn)
		}
		if len(due) > 0 {
			continue
		}
		rt.Reset(wait)
		select {
		case <-c.stop:
			return
		case <-c.wake:
			if !rt.Stop() {
				select {
				case <-rt.C:
				default:
				}
			}
		case <-rt.C:
		}
	}
}

// Advance moves the clock forward by d as if d had passed: timers due in
// between fire in deadline order (a tick period of 1s fires ten times over
// Advance(10s)), and Advance returns once the callbacks they posted have run.
func (c *Clock) Advance(d time.Duration) {
	c.advancing.Lock()
	defer c.advancing.Unlock()
	target := c.elapsed() + d
	for {
		c.mu.Lock()
		var next *timer
		for _, t := range c.timers {
			if t.deadline <= target && (next == nil || t.deadline < next.deadline || (t.deadline == next.deadline && t.seq < next.seq)) {
				next = t
			}
		}
		if next == nil {
			if e := c.elapsedLocked(); e < target {
				c.offset += target - e
			}
			c.mu.Unlock()
			return
		}
		if e := c.elapsedLocked(); e < next.deadline {
			c.offset += next.deadline - e
		}
		due := c.popDueLocked(next.deadline)
		c.mu.Unlock()
		var wg sync.WaitGroup
		for _, t := range due {
			wg.Add(1)
			fn := t.fn
			t.w.post(func() { defer wg.Done(); fn() })
		}
		wg.Wait()
	}
}

func (c *Clock) close() { c.stopOnce.Do(func() { close(c.stop) }) }
