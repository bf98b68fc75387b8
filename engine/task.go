package engine

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/engine/runtime"
)

// running inspects a container that must be running (paused or not) for a
// request to its shim.
func (e *Engine) running(ctx context.Context, id string) (Info, error) {
	info, err := e.Inspect(ctx, id)
	if err != nil {
		return Info{}, err
	}
	if !info.Running() || info.Status.State == runtime.StateRestarting {
		return Info{}, fmt.Errorf("container %s is not running: %w", info.Name, errdefs.ErrFailedPrecondition)
	}
	return info, nil
}

// call sends one request to a running container's shim.
func (e *Engine) call(ctx context.Context, id string, req runtime.Request) (runtime.Response, Info, error) {
	info, err := e.running(ctx, id)
	if err != nil {
		return runtime.Response{}, info, err
	}
	resp, err := runtime.Call(ctx, e.shimSocket(info.ID), req)
	if err != nil {
		return resp, info, named(info.Name, err)
	}
	return resp, info, nil
}

// PauseContainer freezes every process of a running container (the cgroup
// freezer, v1 or v2).
func (e *Engine) PauseContainer(ctx context.Context, id string) error {
	_, _, err := e.call(ctx, id, runtime.Request{Op: runtime.OpPause})
	return err
}

// UnpauseContainer thaws a paused container.
func (e *Engine) UnpauseContainer(ctx context.Context, id string) error {
	_, _, err := e.call(ctx, id, runtime.Request{Op: runtime.OpResume})
	return err
}

// ContainerStats samples a running container's resource usage.
func (e *Engine) ContainerStats(ctx context.Context, id string) (runtime.Stats, error) {
	resp, _, err := e.call(ctx, id, runtime.Request{Op: runtime.OpStats})
	if err != nil || resp.Stats == nil {
		return runtime.Stats{}, err
	}
	return *resp.Stats, nil
}

// ContainerPids lists the host pids of a running container's processes.
func (e *Engine) ContainerPids(ctx context.Context, id string) ([]int, error) {
	resp, _, err := e.call(ctx, id, runtime.Request{Op: runtime.OpPids})
	return resp.Pids, err
}

// AttachOptions connect a client to a container's main process.
type AttachOptions struct {
	Stdin          io.Reader // nil: output only (--no-stdin)
	Stdout, Stderr io.Writer
	ConsoleSize    *runtime.WindowSize
	Resize         <-chan runtime.WindowSize
	DetachKeys     []byte
}

// Attach streams the running container's output (and its input, when the
// container keeps stdin open) until its process exits, and returns its
// exit code; runtime.ErrDetached when the user detached.
func (e *Engine) Attach(ctx context.Context, id string, o AttachOptions) (int, error) {
	info, err := e.running(ctx, id)
	if err != nil {
		return -1, err
	}
	if info.Status.State == runtime.StatePaused {
		return -1, fmt.Errorf("container %s is paused; unpause it first: %w", info.Name, errdefs.ErrConflict)
	}
	stdio := runtime.Stdio{Stdin: o.Stdin, Stdout: o.Stdout, Stderr: o.Stderr, Resize: o.Resize, DetachKeys: o.DetachKeys}
	code, err := runtime.Attach(ctx, e.shimSocket(info.ID), stdio, o.ConsoleSize)
	if err != nil && ctx.Err() == nil && !errors.Is(err, runtime.ErrDetached) {
		err = named(info.Name, err)
	}
	return code, err
}
