package engine

import (
	"sync"
	"sync/atomic"
	"time"
)

// stuckWait is how long a caller waits for a worker that may be stuck in
// a guest callback before saying so.
const stuckWait = 2 * time.Second

// worker is one Envoy thread: a dispatcher goroutine that runs every
// callback for the VMs it owns, so a VM is never entered by two goroutines
// at once, while different workers run truly in parallel.
type worker struct {
	index int // -1 for the main thread
	host  *Host
	vms   []*VM // one per filter in the chain

	current atomic.Pointer[string] // the guest export running, if any

	mu     sync.Mutex
	tasks  []func()
	wake   chan struct{}
	closed bool
	done   chan struct{}
}

func newWorker(h *Host, index int) *worker {
	w := &worker{index: index, host: h, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go w.run()
	return w
}

// post queues fn to run on the worker. It never blocks, so a callback may
// post to its own worker (on_queue_ready for a queue it enqueued to).
func (w *worker) post(fn func()) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.tasks = append(w.tasks, fn)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// call runs fn on the worker and waits for it.
func (w *worker) call(fn func()) {
	ch := make(chan struct{})
	w.post(func() { defer close(ch); fn() })
	select {
	case <-ch:
	case <-w.done:
	}
}

// callWithin runs fn on the worker and reports false if it did not run
// within d (the worker is busy in a callback that does not return).
func (w *worker) callWithin(fn func(), d time.Duration) bool {
	ch := make(chan struct{})
	w.post(func() { defer close(ch); fn() })
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-w.done:
		return true
	case <-t.C:
		return false
	}
}

func (w *worker) running() string {
	if p := w.current.Load(); p != nil {
		return *p
	}
	return "no callback"
}

func (w *worker) run() {
	defer close(w.done)
	for {
		w.mu.Lock()
		if len(w.tasks) == 0 {
			if w.closed {
				w.mu.Unlock()
				return
			}
			w.mu.Unlock()
			<-w.wake
			continue
		}
		fn := w.tasks[0]
		w.tasks[0] = nil
		w.tasks = w.tasks[1:]
		w.mu.Unlock()
		fn()
	}
}

func (w *worker) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	select {
	case <-w.done:
	case <-time.After(stuckWait):
		// A guest looping forever keeps the goroutine; the host goes on.
	}
}
