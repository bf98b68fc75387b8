package engine

import (
	"context"
	"fmt"
	"strings"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/engine/runtime"
)

// Conditions WaitContainer waits for; see runtime.Condition.
const (
	// WaitExited: the container does not run (any more), and its network
	// and mounts are gone. Docker's "not-running".
	WaitExited = runtime.ConditionExit
	// WaitNextExit: the current run ends, even one the restart policy
	// will restart. Docker's "next-exit".
	WaitNextExit = runtime.ConditionNextExit
	// WaitRunning: the container runs. An error if it cannot get there
	// (never started, or its start failed).
	WaitRunning = runtime.ConditionRunning
	// WaitHealthy: the healthcheck says healthy. An error when it says
	// unhealthy, when there is no healthcheck, or when the container exits.
	WaitHealthy = runtime.ConditionHealthy
)

// WaitContainer blocks until the container meets cond and returns its
// status then. The wait is an event from the container's shim, not a poll;
// a shim that dies meanwhile is noticed and its container recovered. It
// returns ctx's error when ctx ends first.
func (e *Engine) WaitContainer(ctx context.Context, id string, cond runtime.Condition) (runtime.Status, error) {
	info, err := e.Inspect(ctx, id)
	if err != nil {
		return runtime.Status{}, err
	}
	for {
		st := info.Status
		if done, err := settledWithoutShim(info, cond, e.shimLive(info.ID)); done {
			return st, err
		}
		st, err = runtime.Wait(ctx, e.shimSocket(info.ID), cond)
		if !errdefs.IsUnavailable(err) {
			if err != nil && ctx.Err() == nil {
				err = named(info.Name, err)
			}
			return st, err
		}
		// The shim went away while we waited: look again (Inspect
		// recovers what a lost shim left) and judge from the record.
		if info, err = e.Inspect(ctx, id); err != nil {
			return runtime.Status{}, err
		}
	}
}

// settledWithoutShim answers a wait from the record alone when no shim is
// needed (or none is there) to answer it.
func settledWithoutShim(info Info, cond runtime.Condition, live bool) (bool, error) {
	st := info.Status
	notRunning := fmt.Errorf("container %s is not running: %w", info.Name, errdefs.ErrFailedPrecondition)
	switch cond {
	case WaitRunning:
		if st.State == runtime.StateRunning || st.State == runtime.StatePaused {
			return true, nil
		}
		if !live || st.Protocol < 2 {
			// A protocol 1 shim knows only the final exit.
			return true, notRunning
		}
	case WaitHealthy:
		if !live {
			return true, notRunning
		}
		if st.Protocol < 2 && st.Health == nil {
			// A shim from before healthchecks (protocol 1) has none.
			return true, fmt.Errorf("container %s has no healthcheck: %w", info.Name, errdefs.ErrFailedPrecondition)
		}
	case WaitExited, WaitNextExit:
		if !live && !st.Up() {
			return true, nil
		}
	}
	return false, nil
}

// named puts the container's name into a shim's message: "container is
// unhealthy" becomes "container web-1 is unhealthy", as Compose says it.
func named(name string, err error) error {
	class := errdefs.Resolve(err)
	msg := strings.TrimSuffix(err.Error(), ": "+class.Error())
	if rest, ok := strings.CutPrefix(msg, "container "); ok {
		return fmt.Errorf("container %s %s: %w", name, rest, class)
	}
	return fmt.Errorf("container %s: %s: %w", name, msg, class)
}
