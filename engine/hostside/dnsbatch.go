package hostside

import (
	"context"
	"sync"
)

// publishBatch lets the concurrent callers of one publication share it:
// the starts of one up level publish their DNS records with one write and
// one server reload instead of one each. A publication reads the state
// (every network's endpoints) when it begins, so a caller is served by the
// first one that begins after it asked: its endpoint was recorded before.
type publishBatch struct {
	mu      sync.Mutex
	next    *publishRound // the round callers asking now will get
	running bool          // a goroutine is running rounds
}

type publishRound struct {
	done chan struct{}
	err  error
}

// do waits for a run of publish that began after the call, started by this
// caller or by another one. publish runs in a goroutine of its own,
// without the callers' cancellation (a caller that gives up leaves the
// others served), one round at a time.
func (b *publishBatch) do(ctx context.Context, publish func(context.Context) error) error {
	b.mu.Lock()
	if b.next == nil {
		b.next = &publishRound{done: make(chan struct{})}
	}
	r := b.next
	if !b.running {
		b.running = true
		go b.run(context.WithoutCancel(ctx), publish)
	}
	b.mu.Unlock()
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *publishBatch) run(ctx context.Context, publish func(context.Context) error) {
	for {
		b.mu.Lock()
		r := b.next
		b.next = nil
		if r == nil {
			b.running = false
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		r.err = publish(ctx)
		close(r.done)
	}
}
