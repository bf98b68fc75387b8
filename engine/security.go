package engine

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/engine/runtime"
)

// defaultShmSize is Docker's /dev/shm size.
const defaultShmSize = 64 << 20

// isolationOpts are the spec options of a container's security and
// resource keys, with what only the engine can resolve: group names in
// the image, the namespaces of the containers it shares them with, a
// shareable /dev/shm, the init.
func (e *Engine) isolationOpts(ctx context.Context, c container.Container, rootfs string) ([]container.SpecOpt, error) {
	sec := c.Config.Security
	opts := container.SecurityOpts(sec, c.Config.Resources)
	if err := checkRealtime(c); err != nil {
		return nil, err
	}
	if len(sec.GroupAdd) > 0 {
		gids, err := container.ResolveGroups(rootfs, sec.GroupAdd)
		if err != nil {
			return nil, fmt.Errorf("container %s: group_add: %w", c.Name, err)
		}
		opts = append(opts, container.WithAdditionalGids(gids))
	}
	if sec.Init {
		if err := runtime.CheckInitBinary(e.opts.Helper); err != nil {
			return nil, fmt.Errorf("container %s: %w: %w", c.Name, err, errdefs.ErrFailedPrecondition)
		}
		opts = append(opts, func(s *specs.Spec) error {
			s.Process.Args = runtime.InitArgs(s.Process.Args)
			return nil
		})
	}
	switch ipc := sec.Ipc; {
	case ipc == "shareable":
		shm, err := e.mountShm(c)
		if err != nil {
			return nil, err
		}
		opts = append(opts, container.WithShm(shm))
	case ipc == "host":
		opts = append(opts, container.WithHostNamespace(specs.IPCNamespace), container.WithShm("/dev/shm"))
	case ipc == "none":
		opts = append(opts, container.WithShm(""))
	case strings.HasPrefix(ipc, "container:"):
		donor, pid, err := e.sharer(ctx, c, "ipc", ipc)
		if err != nil {
			return nil, err
		}
		if donor.Config.Security.Ipc != "shareable" {
			return nil, fmt.Errorf("container %s: ipc: %s does not share its IPC namespace; give it ipc: shareable: %w", c.Name, donor.Name, errdefs.ErrFailedPrecondition)
		}
		opts = append(opts,
			container.WithNamespacePath(specs.IPCNamespace, fmt.Sprintf("/proc/%d/ns/ipc", pid)),
			container.WithShm(e.shmDir(donor.ID)))
	}
	if strings.HasPrefix(sec.Pid, "container:") {
		_, pid, err := e.sharer(ctx, c, "pid", sec.Pid)
		if err != nil {
			return nil, err
		}
		opts = append(opts, container.WithNamespacePath(specs.PIDNamespace, fmt.Sprintf("/proc/%d/ns/pid", pid)))
	}
	return opts, nil
}

// sharer finds the running container whose namespace c joins ("ipc" or
// "pid" set to "container:NAME") and the pid of its init.
func (e *Engine) sharer(ctx context.Context, c container.Container, key, ref string) (container.Container, int, error) {
	name := strings.TrimPrefix(ref, "container:")
	info, err := e.Inspect(ctx, name)
	if err != nil {
		return container.Container{}, 0, fmt.Errorf("container %s: %s: %w", c.Name, key, err)
	}
	if info.Status.State != "running" || info.Status.Pid <= 0 {
		return container.Container{}, 0, fmt.Errorf("container %s: %s: container %s is not running: %w", c.Name, key, info.Name, errdefs.ErrFailedPrecondition)
	}
	return info.Container, info.Status.Pid, nil
}

func (e *Engine) shmDir(id string) string { return e.host.ShmDir(id) }

// mountShm mounts a container's shareable /dev/shm on the host, where
// containers that join its IPC namespace find it too. Teardown unmounts it.
func (e *Engine) mountShm(c container.Container) (string, error) {
	dir := e.shmDir(c.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	size := c.Config.Security.ShmSize
	if size == 0 {
		size = defaultShmSize
	}
	opts := "mode=1777,size=" + strconv.FormatInt(size, 10)
	if err := unix.Mount("shm", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, opts); err != nil {
		return "", fmt.Errorf("container %s: mount shareable /dev/shm: %w", c.Name, err)
	}
	return dir, nil
}

// cgroupsPath is where a container's cgroup goes: under the instance's
// parent, or under its cgroup_parent as Docker puts it.
func (e *Engine) cgroupsPath(c container.Container) string { return e.host.CgroupsPath(c) }
