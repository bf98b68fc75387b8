package engine

import (
	"context"
	"fmt"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/engine/runtime"
)

// StartAttached starts a created container with a client attached from
// before its first byte of output (berth run in the foreground): its
// stdio as o says until its process exits. It returns the exit code, or
// runtime.ErrDetached when the user detached (the container runs on).
func (e *Engine) StartAttached(ctx context.Context, id string, o AttachOptions) (int, error) {
	// The shim creates the container and holds it until the start below;
	// it never outlives a spawner that lets go without starting it.
	sh, err := e.startContainer(ctx, id, runtime.Config{Hold: true})
	defer sh.Release()
	if err != nil {
		return -1, err
	}
	if sh == nil {
		return -1, fmt.Errorf("container %s is already running: %w", id, errdefs.ErrConflict)
	}
	socket := e.shimSocket(id)
	type result struct {
		code int
		err  error
	}
	attached, done := make(chan struct{}), make(chan result, 1)
	go func() {
		stdio := runtime.Stdio{Stdin: o.Stdin, Stdout: o.Stdout, Stderr: o.Stderr, Resize: o.Resize, DetachKeys: o.DetachKeys,
			Attached: func() { close(attached) }}
		code, err := runtime.Attach(ctx, socket, stdio, o.ConsoleSize)
		done <- result{code, err}
	}()
	select {
	case <-attached:
	case r := <-done:
		return -1, fmt.Errorf("attach: %w", r.err)
	}
	_, err = runtime.Call(ctx, socket, runtime.Request{Op: runtime.OpStart})
	sh.Release() // started, or to be stopped by its shim
	r := <-done
	if err != nil {
		return -1, err
	}
	return r.code, r.err
}
