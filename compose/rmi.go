package compose

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/compose/progress"
	"github.com/berth-dev/berth/engine"
)

// CheckRemoveImages checks down --rmi's value.
func CheckRemoveImages(which string) error {
	switch which {
	case "", "local", "all":
		return nil
	}
	return fmt.Errorf("--rmi %q: want local or all: %w", which, errdefs.ErrInvalidArgument)
}

// RemoveServiceImages removes the images of the named services (all when
// none) once down has removed their containers, as docker compose down
// --rmi does: "all" every service's image, "local" only the ones Compose
// names itself (a service without image: builds <project>-<service>). An
// image still in use or already gone is reported on the display, as
// Compose does, not an error.
func RemoveServiceImages(ctx context.Context, e *engine.Engine, p *types.Project, which string, services []string, w progress.Writer) error {
	if err := CheckRemoveImages(which); err != nil || which == "" {
		return err
	}
	refs := map[string]bool{}
	for name, s := range p.Services {
		if len(services) > 0 && !slices.Contains(services, name) {
			continue
		}
		switch {
		case s.Image == "":
			refs[p.Name+"-"+name] = true
		case which == "all":
			refs[s.Image] = true
		}
	}
	var errs []error
	for _, ref := range slices.Sorted(maps.Keys(refs)) {
		ev := progress.Event{ID: "Image " + ref, State: progress.Working, Text: "Removing"}
		w.Event(ev)
		_, err := e.RemoveImage(ctx, ref, false)
		switch {
		case err == nil:
			ev.State, ev.Text = progress.Done, "Removed"
		case errors.Is(err, errdefs.ErrNotFound):
			ev.State, ev.Text = progress.Warning, "No resource found to remove"
		case errors.Is(err, errdefs.ErrConflict):
			ev.State, ev.Text, ev.Detail = progress.Warning, "Resource is still in use", Message(err)
		default:
			ev.State, ev.Text, ev.Detail = progress.Error, "Error", Message(err)
			errs = append(errs, err)
		}
		w.Event(ev)
	}
	return errors.Join(errs...)
}
