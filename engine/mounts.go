package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	securejoin "github.com/cyphar/filepath-securejoin"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/internal/atomicfile"
)

// LabelAnonymousVolume marks a volume made for one container, as Docker
// marks them.
const LabelAnonymousVolume = "com.docker.volume.anonymous"

// resolveMounts completes a container's mounts before it is recorded: the
// mounts of the containers named by VolumesFrom are added, and an anonymous
// volume without a name gets a new volume.
func (e *Engine) resolveMounts(ctx context.Context, name string, cfg container.Config) (container.Config, error) {
	mounts := slices.Clone(cfg.Mounts)
	for _, ref := range cfg.VolumesFrom {
		src, mode, _ := strings.Cut(ref, ":")
		from, err := e.Containers.Get(ctx, src)
		if err != nil {
			return cfg, fmt.Errorf("container %s: volumes_from %q: %w", name, ref, err)
		}
		for _, m := range from.Config.Mounts {
			if slices.ContainsFunc(mounts, func(o container.Mount) bool { return o.Target == m.Target }) {
				continue // the container's own mount wins
			}
			switch mode {
			case "ro":
				m.ReadOnly = true
			case "rw":
				m.ReadOnly = false
			}
			// Shared, not owned: removing this container keeps them.
			m.Anonymous = false
			mounts = append(mounts, m)
		}
	}
	for i, m := range mounts {
		if m.Type != "volume" || m.Source != "" {
			continue
		}
		v, err := e.Volumes.Create(ctx, NewVolumeName(), map[string]string{LabelAnonymousVolume: ""})
		if err != nil {
			cfg.Mounts = mounts // the ones made so far, for the caller to remove
			return cfg, fmt.Errorf("container %s: anonymous volume at %s: %w", name, m.Target, err)
		}
		mounts[i].Source, mounts[i].Anonymous = v.Name, true
	}
	cfg.Mounts, cfg.VolumesFrom = mounts, nil
	return cfg, nil
}

// NewVolumeName is a random volume name, as Docker gives anonymous volumes.
func NewVolumeName() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// mountSpec turns one of the container's mounts into a runtime mount. A
// named volume first receives the image's content at its target (unless
// nocopy), as in Docker.
func (e *Engine) mountSpec(ctx context.Context, c container.Container, rootfs string, m container.Mount) (specs.Mount, error) {
	opts := []string{"rbind"}
	if m.Propagation != "" {
		opts = append(opts, m.Propagation)
	} else {
		opts = append(opts, "rprivate")
	}
	if m.ReadOnly {
		opts = append(opts, "ro")
	}
	src := m.Source
	switch m.Type {
	case "volume":
		v, err := e.Volumes.Get(ctx, m.Source)
		if err != nil {
			return specs.Mount{}, fmt.Errorf("container %s: volume %q: %w", c.Name, m.Source, err)
		}
		if !m.NoCopy && m.SubPath == "" {
			if inImage, err := securejoin.SecureJoin(rootfs, m.Target); err == nil {
				if err := e.Volumes.CopyUpOnce(ctx, m.Source, inImage); err != nil {
					return specs.Mount{}, err
				}
			}
		}
		src = v.Mountpoint
		if m.SubPath != "" {
			p, err := securejoin.SecureJoin(v.Mountpoint, m.SubPath)
			if err != nil {
				return specs.Mount{}, err
			}
			if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
				return specs.Mount{}, fmt.Errorf("container %s: volume %q: subpath %q is not a directory of the volume: %w", c.Name, m.Source, m.SubPath, errdefs.ErrInvalidArgument)
			}
			src = p
		}
	case "bind":
		if _, err := os.Stat(src); errors.Is(err, os.ErrNotExist) {
			if !m.CreateHostPath {
				return specs.Mount{}, fmt.Errorf("container %s: bind source path %s does not exist: %w", c.Name, src, errdefs.ErrInvalidArgument)
			}
			if err := os.MkdirAll(src, 0o755); err != nil {
				return specs.Mount{}, err
			}
		}
		if err := checkPropagation(c.Name, src, m.Propagation); err != nil {
			return specs.Mount{}, err
		}
	case "tmpfs":
		mode := m.TmpfsMode
		if mode == 0 {
			mode = 0o1777
		}
		topts := []string{"nosuid", "nodev", "mode=" + strconv.FormatUint(uint64(mode), 8)}
		if m.TmpfsSize > 0 {
			topts = append(topts, "size="+strconv.FormatInt(m.TmpfsSize, 10))
		}
		if m.ReadOnly {
			topts = append(topts, "ro")
		}
		return specs.Mount{Destination: m.Target, Type: "tmpfs", Source: "tmpfs", Options: topts}, nil
	default:
		return specs.Mount{}, fmt.Errorf("container %s: mount type %q: %w", c.Name, m.Type, errdefs.ErrNotImplemented)
	}
	return specs.Mount{Destination: m.Target, Type: "bind", Source: src, Options: opts}, nil
}

// fileMounts writes the container's secrets and configs under its state
// directory, owned and moded as asked, and mounts each read-only at its
// target.
func (e *Engine) fileMounts(c container.Container) ([]specs.Mount, error) {
	if len(c.Config.Files) == 0 {
		return nil, nil
	}
	dir := filepath.Join(e.Containers.Dir(c.ID), "files")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var out []specs.Mount
	for i, f := range c.Config.Files {
		mode := os.FileMode(f.Mode)
		if mode == 0 {
			mode = 0o444
		}
		p := filepath.Join(dir, strconv.Itoa(i))
		if err := atomicfile.Write(p, f.Content, mode); err != nil {
			return nil, err
		}
		if err := os.Chown(p, f.UID, f.GID); err != nil {
			return nil, err
		}
		// atomicfile honours the umask; the mode asked for is exact.
		if err := os.Chmod(p, mode); err != nil {
			return nil, err
		}
		out = append(out, specs.Mount{Destination: f.Target, Type: "bind", Source: p, Options: []string{"rbind", "rprivate", "ro"}})
	}
	return out, nil
}

// createRecord resolves the mounts and stores the container; the anonymous
// volumes made for a record that could not be stored are removed again.
func (e *Engine) createRecord(ctx context.Context, name string, cfg container.Config) (container.Container, error) {
	resolved, err := e.resolveMounts(ctx, name, cfg)
	if err == nil {
		var c container.Container
		if c, err = e.Containers.Create(ctx, name, resolved); err == nil {
			return c, nil
		}
	}
	for _, m := range resolved.Mounts {
		if m.Anonymous && !slices.ContainsFunc(cfg.Mounts, func(o container.Mount) bool { return o.Source == m.Source }) {
			_ = e.Volumes.Remove(context.WithoutCancel(ctx), m.Source)
		}
	}
	return container.Container{}, err
}
