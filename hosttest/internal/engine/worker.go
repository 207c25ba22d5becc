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
	// plugins holds each filter's root context, in chain order; filters
	// with the same vm_config point into one VM.
	plugins []*plugin

	current atomic.Pointer[string] // the guest export running, if any

	mu     sync.Mutex
	tasks  []task
	spare  []task // the batch run last, reused for the next
	wake   chan struct{}
	closed bool
	done   chan struct{}
	// open holds the streams not yet finished, for the host closing to
	// free whoever waits on their flow; per worker, so that no lock is
	// shared by the workers on the request path.
	open map[*Stream]struct{}
}

// liveVM is w's VM for key that has not failed, if any: a plugin that
// starts or reloads joins it (cpp-host drops a failed VM from its
// thread-local cache, so a reload builds a fresh one).
func (w *worker) liveVM(key vmKey) *VM {
	for _, p := range w.plugins {
		if p != nil && p.vm.key == key && !p.vm.failed {
			return p.vm
		}
	}
	return nil
}

// task is one function for the worker to run; done, if set, is signalled
// once it has run (call and callWithin wait on it).
type task struct {
	fn   func()
	done chan struct{}
}

// doneChans recycles the one-slot channels call waits on.
var doneChans = sync.Pool{New: func() any { return make(chan struct{}, 1) }}

func newWorker(h *Host, index int) *worker {
	w := &worker{index: index, host: h, wake: make(chan struct{}, 1), done: make(chan struct{}), open: map[*Stream]struct{}{}}
	go w.run()
	return w
}

// post queues fn to run on the worker. It never blocks, so a callback may
// post to its own worker (on_queue_ready for a queue it enqueued to).
func (w *worker) post(fn func()) { w.enqueue(task{fn: fn}) }

func (w *worker) enqueue(t task) bool {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return false
	}
	w.tasks = append(w.tasks, t)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return true
}

// call runs fn on the worker and waits for it.
func (w *worker) call(fn func()) {
	ch := doneChans.Get().(chan struct{})
	if !w.enqueue(task{fn: fn, done: ch}) {
		doneChans.Put(ch)
		<-w.done
		return
	}
	select {
	case <-ch:
		doneChans.Put(ch)
	case <-w.done:
		// The worker ended with fn queued or running: ch may still be
		// signalled, so it is not reused.
	}
}

// callWithin runs fn on the worker and reports false if it did not run
// within d (the worker is busy in a callback that does not return).
func (w *worker) callWithin(fn func(), d time.Duration) bool {
	ch := make(chan struct{}, 1)
	if !w.enqueue(task{fn: fn, done: ch}) {
		<-w.done
		return true
	}
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
		// Take the whole queue; tasks posted meanwhile form the next batch.
		batch := w.tasks
		w.tasks, w.spare = w.spare[:0], nil
		w.mu.Unlock()
		for i := range batch {
			t := batch[i]
			batch[i] = task{}
			t.fn()
			if t.done != nil {
				t.done <- struct{}{}
			}
		}
		w.mu.Lock()
		w.spare = batch[:0]
		w.mu.Unlock()
	}
}

// track and untrack keep the set of open streams; endOpenFlows frees
// their flow waiters when the host closes.
func (w *worker) track(s *Stream) {
	w.mu.Lock()
	w.open[s] = struct{}{}
	w.mu.Unlock()
	// Checked after the insert: a host closing from here on has either
	// seen s in endOpenFlows or is seen closed now.
	if w.host.ctx.Err() != nil {
		s.endFlow()
	}
}

func (w *worker) untrack(s *Stream) {
	w.mu.Lock()
	delete(w.open, s)
	w.mu.Unlock()
}

func (w *worker) endOpenFlows() {
	w.mu.Lock()
	open := make([]*Stream, 0, len(w.open))
	for s := range w.open {
		open = append(open, s)
	}
	w.mu.Unlock()
	for _, s := range open {
		s.endFlow()
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
