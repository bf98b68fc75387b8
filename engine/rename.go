package engine

import (
	"context"
	"fmt"

	"github.com/containerd/errdefs"
)

// RenameContainer gives a created or stopped container a new name (a
// recreate renames the replacement once the old container is gone).
func (e *Engine) RenameContainer(ctx context.Context, id, name string) error {
	info, err := e.Inspect(ctx, id)
	if err != nil {
		return err
	}
	if info.Running() {
		// Its DNS records and /etc/hosts carry the old name.
		return fmt.Errorf("rename container %s: it is running: %w", info.Name, errdefs.ErrFailedPrecondition)
	}
	_, err = e.Containers.Rename(ctx, info.ID, name)
	return err
}
