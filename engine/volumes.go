package engine

import (
	"context"
	"fmt"
	"strings"

	"github.com/containerd/errdefs"
)

// RemoveVolume deletes a named volume and its data, unless a container (of
// any project, running or not) mounts it: then it is
// errdefs.ErrFailedPrecondition naming the containers, and nothing changes.
func (e *Engine) RemoveVolume(ctx context.Context, name string) error {
	return e.Volumes.RemoveUnless(ctx, name, func() error {
		users, err := e.VolumeUsers(ctx, name)
		if err != nil {
			return err
		}
		if len(users) > 0 {
			return fmt.Errorf("volume %q is in use by container %s: %w", name, strings.Join(users, ", "), errdefs.ErrFailedPrecondition)
		}
		return nil
	})
}

// VolumeUsers names the containers that mount the volume, oldest first.
func (e *Engine) VolumeUsers(ctx context.Context, name string) ([]string, error) {
	cs, err := e.Containers.List(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, c := range cs {
		for _, m := range c.Config.Mounts {
			if m.Type == "volume" && m.Source == name {
				out = append(out, c.Name)
				break
			}
		}
	}
	return out, nil
}
