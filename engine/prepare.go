package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	securejoin "github.com/cyphar/filepath-securejoin"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/engine/snapshot"
	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/stopwatch"
)

// prepare builds everything a start needs, in an order where each step only
// adds to the host: the caller's teardown undoes any prefix of it. It
// returns the container's OCI spec, which goes to the spawner in memory:
// no start reads a config.json (BERTH_DEBUG still writes one in the run
// directory, for a look or another runtime).
func (e *Engine) prepare(ctx context.Context, c container.Container) (*specs.Spec, error) {
	sw := stopwatch.Start(ctx, "prepare", "container", c.Name)
	defer sw.Done()
	img, err := e.Images.Get(ctx, c.Config.ImageID)
	if err != nil {
		return nil, fmt.Errorf("image %q of container %s: %w", c.Config.Image, c.Name, err)
	}
	if err := e.unpack(ctx, img); err != nil {
		return nil, err
	}
	runDir := e.runDir(c.ID)
	if err := os.MkdirAll(runDir, 0o700); err != nil {
		return nil, err
	}
	mounts, err := e.Snapshots.Prepare(ctx, c.ID, img.ChainIDs)
	if err != nil {
		return nil, err
	}
	rootfs := e.rootfsDir(c.ID)
	if err := snapshot.MountAll(mounts, rootfs); err != nil {
		return nil, fmt.Errorf("mount root filesystem: %w", err)
	}
	sw.Lap("rootfs")

	net, err := e.prepareNetwork(ctx, c, sw)
	if err != nil {
		return nil, err
	}
	uid, gid, groups, err := container.ResolveUser(rootfs, c.Config.User)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", c.Name, err)
	}
	cwd := c.Config.WorkingDir
	if cwd == "" {
		cwd = "/"
	}
	// Docker creates a missing working directory; so do we, inside the root.
	if p, err := securejoin.SecureJoin(rootfs, cwd); err == nil {
		_ = os.MkdirAll(p, 0o755)
	}
	volMounts, err := e.volumeMounts(ctx, c, rootfs)
	if err != nil {
		return nil, err
	}
	opts, err := e.isolationOpts(ctx, c, rootfs)
	if err != nil {
		return nil, err
	}
	spec, err := container.Spec(container.SpecOptions{
		Rootfs:      rootfs,
		NetNS:       net.netns,
		CgroupsPath: e.cgroupsPath(c),
		Hostname:    net.hostname,
		Process: container.Process{
			Args: append(append([]string(nil), c.Config.Entrypoint...), c.Config.Cmd...),
			Env:  append(c.Config.Env, "HOSTNAME="+net.hostname),
			Cwd:  cwd, UID: uid, GID: gid, AdditionalGids: groups,
		},
		Mounts: append(net.files, volMounts...),
	}, opts...)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", c.Name, err)
	}
	net.applySpec(spec)
	applyRun(spec, c.Config.Run)
	rootPropagation(spec)
	sw.Lap("spec")
	if os.Getenv("BERTH_DEBUG") != "" {
		if err := atomicfile.ReplaceJSON(filepath.Join(runDir, "config.json"), spec, 0o600); err != nil {
			return nil, err
		}
	}
	return spec, nil
}

// volumeMounts turns the container's volumes, binds, tmpfs mounts,
// secrets and configs into spec mounts (mounts.go).
func (e *Engine) volumeMounts(ctx context.Context, c container.Container, rootfs string) ([]specs.Mount, error) {
	var out []specs.Mount
	for _, m := range c.Config.Mounts {
		sm, err := e.mountSpec(ctx, c, rootfs, m)
		if err != nil {
			return nil, err
		}
		out = append(out, sm)
	}
	files, err := e.fileMounts(c)
	return append(out, files...), err
}
