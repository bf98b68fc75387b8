package hostside

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/opencontainers/cgroups"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/internal/atomicfile"
)

// CgroupsPath is the cgroup a start puts container c in: under the
// service's cgroup_parent, else under the instance's parent.
func (h *Host) CgroupsPath(c container.Container) string {
	if p := c.Config.Security.CgroupParent; p != "" {
		return "/" + strings.Trim(p, "/") + "/" + c.ID
	}
	return h.CgroupParent() + "/" + c.ID
}

// cgroupRoot is where the cgroup hierarchies are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// removeCgroups removes the container's own cgroup in every hierarchy,
// killing whatever still runs in it. libcontainer removes it when it
// destroys a container it knows of; but a shim killed while libcontainer
// made the container (before its state was saved), or a state directory
// that is lost, leaves the cgroup, and maybe the container's processes,
// to whoever tears down next. With the leaf left, the instance's parent
// cgroup stays too (removeCgroupParent). Called only when no shim
// supervises the container: what is in its cgroup is no one's.
func (h *Host) removeCgroups(id string) error {
	leaf, err := h.cgroupsPath(id)
	if err != nil {
		return err
	}
	var dirs []string
	if cgroups.IsCgroup2UnifiedMode() {
		dirs = []string{filepath.Join(cgroupRoot, leaf)}
	} else {
		dirs, _ = filepath.Glob(filepath.Join(cgroupRoot, "*", leaf))
	}
	var errs []error
	for _, d := range dirs {
		if _, err := os.Stat(d); err != nil {
			continue
		}
		killCgroup(d)
		if err := cgroups.RemovePath(d); err != nil {
			errs = append(errs, fmt.Errorf("remove cgroup: %w", err))
		}
	}
	return errors.Join(errs...)
}

// cgroupsPath is the container's cgroup as its start put it (the
// instance's parent, or the service's cgroup_parent): from the spec a
// build step's start (or an older berth's) left in the run directory, else
// from the container's record (a container's start writes no spec file),
// else under the instance's parent. It always ends in the container's ID,
// so nothing else is ever killed or removed.
func (h *Host) cgroupsPath(id string) (string, error) {
	var spec struct {
		Linux struct {
			CgroupsPath string `json:"cgroupsPath"`
		} `json:"linux"`
	}
	p := h.CgroupParent() + "/" + id
	if err := atomicfile.ReadJSON(filepath.Join(h.RunDir(id), "config.json"), &spec); err == nil && spec.Linux.CgroupsPath != "" {
		p = spec.Linux.CgroupsPath
	} else if h.Containers != nil {
		if c, err := h.Containers.Get(context.Background(), id); err == nil && c.ID == id {
			p = h.CgroupsPath(c)
		}
	}
	p = path.Clean("/" + p)
	if id == "" || path.Base(p) != id {
		return "", fmt.Errorf("cgroup path %q of container %s is not the container's", p, id)
	}
	return p, nil
}

// killCgroup sends SIGKILL to every process in the cgroup dir, thawing
// it first if it is frozen (a frozen process takes its SIGKILL only when
// thawed).
func killCgroup(dir string) {
	if _, err := os.Stat(filepath.Join(dir, "cgroup.kill")); err == nil {
		_ = os.WriteFile(filepath.Join(dir, "cgroup.freeze"), []byte("0"), 0)
		_ = os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0)
		return
	}
	pids, _ := cgroups.GetAllPids(dir)
	for _, pid := range pids {
		_ = unix.Kill(pid, unix.SIGKILL)
	}
	_ = os.WriteFile(filepath.Join(dir, "freezer.state"), []byte("THAWED"), 0)
}
