package compose

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/engine/volume"
)

// VolumeSummary is one row of berth volume ls and one object of berth
// volume inspect, with Docker's field names.
type VolumeSummary struct {
	CreatedAt  string
	Driver     string
	Labels     map[string]string
	Mountpoint string
	Name       string
	Options    map[string]string
	Scope      string
	InUse      []string `json:"-"` // containers mounting it
}

// VolumeFilter selects volumes as docker volume ls --filter does.
type VolumeFilter struct {
	Name     string // name contains
	Label    string // "key" or "key=value"
	Dangling *bool  // mounted by no container
}

func summarizeVolume(v volume.Volume, users []string) VolumeSummary {
	return VolumeSummary{
		CreatedAt: v.Created.Format("2006-01-02T15:04:05Z07:00"), Driver: "local", Labels: v.Labels,
		Mountpoint: v.Mountpoint, Name: v.Name, Options: v.Options, Scope: "local", InUse: users,
	}
}

// volumeUsers maps every volume to the containers that mount it.
func volumeUsers(ctx context.Context, e *engine.Engine) (map[string][]string, error) {
	infos, err := e.ListContainers(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, i := range infos {
		for _, m := range i.Config.Mounts {
			if m.Type == "volume" {
				out[m.Source] = append(out[m.Source], i.Name)
			}
		}
	}
	return out, nil
}

// Volumes lists the host's named volumes that match f, by name.
func Volumes(ctx context.Context, e *engine.Engine, f VolumeFilter) ([]VolumeSummary, error) {
	vols, err := e.Volumes.List(ctx)
	if err != nil {
		return nil, err
	}
	users, err := volumeUsers(ctx, e)
	if err != nil {
		return nil, err
	}
	var out []VolumeSummary
	for _, v := range vols {
		if !strings.Contains(v.Name, f.Name) {
			continue
		}
		if f.Label != "" {
			k, val, hasValue := strings.Cut(f.Label, "=")
			got, ok := v.Labels[k]
			if !ok || (hasValue && got != val) {
				continue
			}
		}
		if f.Dangling != nil && *f.Dangling != (len(users[v.Name]) == 0) {
			continue
		}
		out = append(out, summarizeVolume(v, users[v.Name]))
	}
	return out, nil
}

// InspectVolumes describes the named volumes; one that does not exist is
// errdefs.ErrNotFound.
func InspectVolumes(ctx context.Context, e *engine.Engine, names []string) ([]VolumeSummary, error) {
	users, err := volumeUsers(ctx, e)
	if err != nil {
		return nil, err
	}
	var out []VolumeSummary
	for _, n := range names {
		v, err := e.Volumes.Get(ctx, n)
		if err != nil {
			return nil, fmt.Errorf("no such volume: %s: %w", n, err)
		}
		out = append(out, summarizeVolume(v, users[n]))
	}
	return out, nil
}

// CreateVolume makes a named volume (a name of "" gets a random one, as
// anonymous volumes do) with labels and the local driver's options.
func CreateVolume(ctx context.Context, e *engine.Engine, name string, labels, opts map[string]string) (string, error) {
	if name == "" {
		name = engine.NewVolumeName()
	}
	v, err := e.Volumes.CreateWithOptions(ctx, name, labels, opts)
	if errors.Is(err, errdefs.ErrAlreadyExists) {
		return v.Name, nil // docker volume create is idempotent
	}
	return v.Name, err
}

// RemoveVolumes removes the named volumes; a volume in use is refused
// (errdefs.ErrFailedPrecondition naming the containers) and kept.
func RemoveVolumes(ctx context.Context, e *engine.Engine, names []string) error {
	var errs []error
	for _, n := range names {
		if err := e.RemoveVolume(ctx, n); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// PruneVolumes removes the volumes no container mounts: anonymous ones, or
// every one with all (as docker volume prune -a). It returns their names.
func PruneVolumes(ctx context.Context, e *engine.Engine, all bool) ([]string, error) {
	dangling := true
	vols, err := Volumes(ctx, e, VolumeFilter{Dangling: &dangling})
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, v := range vols {
		if _, anon := v.Labels[engine.LabelAnonymousVolume]; !anon && !all {
			continue
		}
		// The engine checks again, under the volume's lock.
		err := e.RemoveVolume(ctx, v.Name)
		switch {
		case err == nil:
			removed = append(removed, v.Name)
		case errors.Is(err, errdefs.ErrFailedPrecondition), errors.Is(err, errdefs.ErrNotFound):
		default:
			return removed, err
		}
	}
	slices.Sort(removed)
	return removed, nil
}
