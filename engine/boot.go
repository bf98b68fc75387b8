package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/engine/runtime"
)

// BackAtBoot reports whether a container comes back when the host boots,
// as Docker's come back when its daemon starts: restart always (even one
// a command stopped), or unless-stopped and not stopped by a command.
// Containers that never ran stay as they are.
func BackAtBoot(c container.Container, st runtime.Status) bool {
	if st.StartedAt.IsZero() {
		return false
	}
	switch c.Config.Restart {
	case "always":
		return true
	case "unless-stopped":
		return !st.StoppedByUser
	}
	return false
}

// Boot starts every container of the state root, whatever its project,
// that BackAtBoot says comes back; the oldest first, so a container starts
// after those it was created after (its dependencies, in a Compose
// project). It is what runs at boot (berth system boot, from the systemd
// unit), when no shim survived and $BERTH_RUN is empty: listing first
// recovers each lost shim (under the container's lock), and each start
// takes the lock too, so a ps or a start of the same container at the same
// moment is safe, and a container already running is left alone. One that
// fails to start does not keep the others down: the errors are joined.
func (e *Engine) Boot(ctx context.Context) (started []string, err error) {
	infos, err := e.ListContainers(ctx)
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(infos, func(a, b Info) int { return a.Created.Compare(b.Created) })
	var errs []error
	for _, i := range infos {
		if i.Running() || !BackAtBoot(i.Container, i.Status) {
			continue
		}
		if err := e.StartContainer(ctx, i.ID); err != nil {
			if ctx.Err() != nil {
				return started, ctx.Err()
			}
			errs = append(errs, fmt.Errorf("start %s: %w", i.Name, err))
			continue
		}
		started = append(started, i.Name)
	}
	return started, errors.Join(errs...)
}
