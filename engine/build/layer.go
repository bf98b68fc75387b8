package build

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-dev/berth/engine/image"
	"github.com/berth-dev/berth/engine/snapshot"
)

// ensureLayers unpacks the stage's layers that are not unpacked yet
// (after an image prune, say), from their blobs.
func (r *run) ensureLayers(ctx context.Context, st *state) error {
	chains := st.chainIDs()
	img := image.Image{Ref: r.who(), Layers: st.layers}
	for i, c := range chains {
		img.DiffIDs = append(img.DiffIDs, st.layers[i].DiffID)
		if r.b.Snapshots.HasLayer(c) {
			continue
		}
		err := r.b.Snapshots.EnsureLayer(ctx, c, func(dir string) error {
			return r.b.Images.Unpack(ctx, img, i, dir)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// mounted is a writable root filesystem of a step, on top of a stage.
type mounted struct {
	key, rootfs string
}

// mount prepares a writable layer on st and mounts it.
func (r *run) mount(ctx context.Context, st *state) (*mounted, error) {
	if err := r.claim(ctx); err != nil {
		return nil, err
	}
	if err := r.ensureLayers(ctx, st); err != nil {
		return nil, err
	}
	k := r.newKey()
	ms, err := r.b.Snapshots.Prepare(ctx, k, st.chainIDs())
	if err != nil {
		return nil, err
	}
	m := &mounted{key: k, rootfs: filepath.Join(r.dir, k, "rootfs")}
	if err := snapshot.MountAll(ms, m.rootfs); err != nil {
		r.b.Snapshots.Remove(ctx, k)
		return nil, err
	}
	return m, nil
}

// release unmounts and forgets a mount that is not committed.
func (r *run) release(ctx context.Context, m *mounted) {
	snapshot.Unmount(m.rootfs)
	os.RemoveAll(filepath.Dir(m.rootfs))
	r.b.Snapshots.Remove(context.WithoutCancel(ctx), m.key)
}

// change runs fn on a writable root filesystem on st and returns the
// layer of what it changed: nil when nothing changed. The layer is
// stored and unpacked (committed) under its chain ID.
func (r *run) change(ctx context.Context, st *state, fn func(rootfs string) error) (*image.Layer, error) {
	m, err := r.mount(ctx, st)
	if err != nil {
		return nil, err
	}
	committed := false
	defer func() {
		if !committed {
			r.release(ctx, m)
		}
	}()
	if err := fn(m.rootfs); err != nil {
		return nil, err
	}
	if err := snapshot.Unmount(m.rootfs); err != nil {
		return nil, err
	}
	var stats snapshot.DiffStats
	layer, err := r.b.Images.AddLayer(ctx, func(w io.Writer) error {
		var err error
		stats, err = r.b.Snapshots.Diff(ctx, m.key, w)
		return err
	})
	if err != nil {
		return nil, err
	}
	if stats.Entries == 0 {
		return nil, nil // the empty tar's blob goes with the next gc
	}
	chains := image.ChainIDs(append(diffIDs(st.layers), layer.DiffID))
	if err := r.b.Snapshots.Commit(ctx, m.key, chains[len(chains)-1]); err != nil {
		return nil, err
	}
	committed = true
	os.RemoveAll(filepath.Dir(m.rootfs))
	return &layer, nil
}

func diffIDs(ls []image.Layer) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.DiffID
	}
	return out
}

// cachedStep applies the cached result under k, if there is one and the
// build may use it.
func (r *run) cachedStep(st *state, k string, sp *step) bool {
	if r.o.NoCache {
		return false
	}
	e, ok := r.b.Cache.get(k, r.b.Images)
	if !ok {
		return false
	}
	st.key = k
	st.addHistory(e.History, e.Layer)
	sp.cached()
	return true
}

// commitStep records a step's result in the stage and the cache.
func (r *run) commitStep(st *state, k string, layer *image.Layer, createdBy string) error {
	h := v1.History{Created: v1.Time{Time: time.Now().UTC().Truncate(time.Second)}, CreatedBy: createdBy, Comment: "buildkit.dockerfile.v0"}
	if layer == nil {
		h.Created = v1.Time{Time: st.created}
		h.EmptyLayer = true
	}
	if err := r.b.Cache.put(k, entry{Layer: layer, History: h}); err != nil {
		return fmt.Errorf("%s: %w", createdBy, err)
	}
	st.key = k
	st.addHistory(h, layer)
	return nil
}
