package engine

import (
	"context"
	"time"
)

// handlerPool runs upstream handlers on goroutines that are kept for the
// next request instead of starting one per request: a fresh goroutine
// starts on a small stack that a net/http handler grows (copying it)
// every time, which cost the request path more than the handler itself.
// A goroutine idle for poolIdle, or the host closing, ends it.
type handlerPool struct {
	ctx  context.Context
	work chan func()
}

const poolIdle = 10 * time.Second

func newHandlerPool(ctx context.Context) *handlerPool {
	return &handlerPool{ctx: ctx, work: make(chan func())}
}

// run starts fn on an idle goroutine, or a new one when none is idle: it
// never waits for a busy handler.
func (p *handlerPool) run(fn func()) {
	select {
	case p.work <- fn:
	default:
		go p.loop(fn)
	}
}

func (p *handlerPool) loop(fn func()) {
	idle := time.NewTimer(poolIdle)
	defer idle.Stop()
	for {
		fn()
		fn = nil
		idle.Reset(poolIdle)
		select {
		case fn = <-p.work:
		case <-idle.C:
			return
		case <-p.ctx.Done():
			return
		}
	}
}
