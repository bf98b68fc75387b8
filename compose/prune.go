package compose

import (
	"context"
	"errors"
	"maps"
	"slices"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/engine/image"
)

// SystemPruneOptions are docker system prune's flags.
type SystemPruneOptions struct {
	All     bool // -a: every image no container uses, not only dangling ones
	Volumes bool // --volumes: anonymous volumes no container mounts
}

// SystemPruned is what SystemPrune removed.
type SystemPruned struct {
	Containers []string // IDs
	Networks   []string
	Volumes    []string
	Images     image.Removed
	Layers     int // unpacked layers
}

// SystemPrune removes what docker system prune does: stopped containers
// (of every project, one-off ones too), networks no container is attached
// to, anonymous volumes no container mounts (with Volumes), dangling images
// (every unused one with All) and the blobs and layers nothing needs. Each
// project's containers and networks go under the project's lock, so no
// up or down of that project runs meanwhile.
func SystemPrune(ctx context.Context, e *engine.Engine, o SystemPruneOptions) (SystemPruned, error) {
	var out SystemPruned
	infos, err := e.ListContainers(ctx)
	if err != nil {
		return out, err
	}
	nets, err := e.Networks.List(ctx)
	if err != nil {
		return out, err
	}
	projects := map[string]bool{}
	for _, i := range infos {
		projects[i.Config.Labels[LabelProject]] = true
	}
	for _, n := range nets {
		projects[n.Labels[LabelProject]] = true
	}
	var errs []error
	for _, p := range slices.Sorted(maps.Keys(projects)) {
		if err := pruneProject(ctx, e, p, &out); err != nil {
			errs = append(errs, err)
		}
	}
	if o.Volumes {
		vols, err := PruneVolumes(ctx, e, false)
		out.Volumes = vols
		if err != nil {
			errs = append(errs, err)
		}
	}
	out.Images, out.Layers, err = e.PruneImages(ctx, o.All)
	if err != nil {
		errs = append(errs, err)
	}
	return out, errors.Join(errs...)
}

// pruneProject removes the project's stopped containers, then its
// networks no container uses any more; project "" is what no project
// labels, taken without a lock.
func pruneProject(ctx context.Context, e *engine.Engine, project string, out *SystemPruned) error {
	if project != "" {
		l, err := e.LockProject(ctx, project)
		if err != nil {
			return err
		}
		defer l.Unlock()
	}
	infos, err := e.ListContainers(ctx)
	if err != nil {
		return err
	}
	used := map[string]bool{}
	for _, i := range infos {
		if i.Config.Labels[LabelProject] == project && !i.Running() {
			// The engine checks again under the container's lock: one
			// started since is kept.
			err := e.RemoveContainer(ctx, i.ID, false)
			switch {
			case err == nil:
				out.Containers = append(out.Containers, i.ID)
				continue
			case !errors.Is(err, errdefs.ErrFailedPrecondition) && !errors.Is(err, errdefs.ErrNotFound):
				return err
			}
		}
		for _, a := range i.Config.Networks {
			used[a.Network] = true
		}
	}
	nets, err := e.Networks.List(ctx)
	if err != nil {
		return err
	}
	for _, n := range nets {
		if n.Labels[LabelProject] != project || used[n.Name] {
			continue
		}
		err := e.RemoveNetwork(ctx, n.Name)
		switch {
		case err == nil:
			out.Networks = append(out.Networks, n.Name)
		case !errors.Is(err, errdefs.ErrFailedPrecondition) && !errors.Is(err, errdefs.ErrNotFound):
			return err
		}
	}
	return nil
}
