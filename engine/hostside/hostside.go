// Package hostside holds what a container's start leaves on the host
// outside its own namespaces (network endpoints and sandbox, DNS records,
// the root filesystem and /dev/shm mounts, the container's cgroups and the
// instance's cgroup parent),
// the DNS publication that follows every change of endpoints, and the
// teardown that undoes it all. The engine uses it at every start and
// removal; a container's shim uses it alone when the container exits, so
// the shim (and libcontainer's init, which runs the same binary) links
// neither the image store nor anything else of the engine it does not run.
package hostside

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/engine/network"
	"github.com/berth-dev/berth/engine/runtime"
	"github.com/berth-dev/berth/engine/snapshot"
	"github.com/berth-dev/berth/internal/lockfile"
	"github.com/berth-dev/berth/internal/stopwatch"
)

// Host is one engine instance's host-side state: where it lives, and the
// stores teardown and DNS publication read.
type Host struct {
	run      string // $BERTH_RUN
	helper   string // the binary that runs the DNS server
	instance string // kernel object prefix (engine.Instance)

	Networks   *network.Manager
	Containers *container.Store

	dnsSync, dnsDrop publishBatch // DNS publications shared by concurrent starts, teardowns
}

// Config locates a Host.
type Config struct {
	Root, Run string // absolute state directories
	Helper    string // runs "dns"
	Instance  string // kernel object prefix
	// Pools are where new networks get subnets; nil is the built-in
	// default. A shim never creates a network and leaves it nil.
	Pools []network.Pool
}

// Open opens the container store and the network manager of an instance.
func Open(c Config) (*Host, error) {
	h := &Host{run: c.Run, helper: c.Helper, instance: c.Instance}
	var err error
	if h.Containers, err = container.Open(filepath.Join(c.Root, "containers")); err != nil {
		return nil, err
	}
	h.Networks, err = network.New(network.Config{
		StateDir: filepath.Join(c.Root, "network"),
		RunDir:   filepath.Join(c.Run, "network"),
		Table:    c.Instance,
		Pools:    c.Pools,
	})
	if err != nil {
		return nil, err
	}
	return h, nil
}

// RunDir is where a container's volatile state lives.
func (h *Host) RunDir(id string) string { return filepath.Join(h.run, "containers", id) }

// RootfsDir is a container's root filesystem mount point.
func (h *Host) RootfsDir(id string) string { return filepath.Join(h.RunDir(id), "rootfs") }

// ShmDir is where a container's shareable /dev/shm is mounted.
func (h *Host) ShmDir(id string) string { return filepath.Join(h.RunDir(id), "shm") }

// DNSDir is where the instance's DNS server keeps its records.
func (h *Host) DNSDir() string { return filepath.Join(h.run, "dns") }

// LibcontainerRoot is libcontainer's state root, the shims' StateRoot,
// which also holds the cgroup-parent lock (runtime.CgroupParentLock).
func (h *Host) LibcontainerRoot() string { return filepath.Join(h.run, "runc") }

// CgroupParent is the instance's parent cgroup.
func (h *Host) CgroupParent() string { return "/" + h.instance }

// Teardown undoes what a start did, in reverse. Every step tolerates the
// thing being gone already, so it can run after a crash at any point.
func (h *Host) Teardown(ctx context.Context, id string) error {
	sw := stopwatch.Start(ctx, "teardown", "id", id[:12])
	defer sw.Done()
	var errs []error
	if err := h.removeCgroups(id); err != nil {
		errs = append(errs, err)
	}
	sw.Lap("cgroups")
	if err := h.Networks.Unpublish(ctx, id); err != nil {
		errs = append(errs, err)
	}
	sw.Lap("unpublish")
	nets, err := h.Networks.List(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	for _, n := range nets {
		if err := h.Networks.Disconnect(ctx, n.Name, id); err != nil {
			errs = append(errs, err)
		}
	}
	sw.Lap("disconnect")
	if err := h.Networks.RemoveSandbox(ctx, id); err != nil {
		errs = append(errs, err)
	}
	sw.Lap("sandbox")
	if err := h.DropDNS(ctx); err != nil {
		errs = append(errs, err)
	}
	sw.Lap("dns")
	if err := snapshot.Unmount(h.RootfsDir(id)); err != nil {
		errs = append(errs, err)
	}
	if err := h.unmountShm(id); err != nil {
		errs = append(errs, err)
	}
	sw.Lap("unmount")
	h.removeCgroupParent()
	if len(errs) == 0 {
		// The empty mount point is the marker that a start made something
		// to undo (see NeedsTeardown); with everything undone, drop it.
		if err := os.Remove(h.RootfsDir(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// NeedsTeardown reports whether a start left something to undo. A start
// creates the rootfs mount point before any other host object, and
// Teardown removes it last, so its presence is a safe marker.
func (h *Host) NeedsTeardown(id string) bool {
	_, err := os.Stat(h.RootfsDir(id))
	return err == nil
}

// unmountShm undoes the engine's mount of a shareable /dev/shm; a
// container without one has nothing to undo.
func (h *Host) unmountShm(id string) error {
	dir := h.ShmDir(id)
	if err := snapshot.Unmount(dir); err != nil {
		return err
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// removeCgroupParent removes the instance's parent cgroup once it is empty;
// libcontainer removes only each container's own leaf. A start making its
// cgroups holds the lock shared: then the parent is left for it.
func (h *Host) removeCgroupParent() {
	l, ok, err := lockfile.TryAcquire(runtime.CgroupParentLock(h.LibcontainerRoot()))
	if err != nil || !ok {
		return
	}
	defer l.Unlock()
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*" + h.CgroupParent())
	dirs = append(dirs, "/sys/fs/cgroup"+h.CgroupParent())
	for _, d := range dirs {
		_ = unix.Rmdir(d) // fails while another container still uses it
	}
}

// RunShim is the body of "berth shim CONFIG": it supervises one container
// and, when it exits, tears down its network and mounts, since no daemon is
// left to do so.
func (h *Host) RunShim(ctx context.Context, cfg runtime.Config) error {
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	return runtime.Serve(ctx, cfg, runtime.Hooks{
		Running: func() { go h.watchDNS(wctx) },
		Exit: func(ctx context.Context, _ runtime.Status) error {
			stopWatch()
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			return h.Teardown(ctx, cfg.ID)
		},
	})
}

// Default locations of persistent and volatile state.
const (
	DefaultRoot = "/var/lib/berth"
	DefaultRun  = "/run/berth"
)

// StateFromEnv reads BERTH_ROOT and BERTH_RUN, falling back to defaults.
func StateFromEnv() (root, run string) {
	root, run = os.Getenv("BERTH_ROOT"), os.Getenv("BERTH_RUN")
	if root == "" {
		root = DefaultRoot
	}
	if run == "" {
		run = DefaultRun
	}
	return root, run
}

// Instance names the kernel objects shared per engine (nftables table,
// cgroup parent): "berth" for the default root, "berth-<hash>" for others, so
// engines with different roots never touch each other's objects.
func Instance(root string) string {
	if root == DefaultRoot {
		return "berth"
	}
	sum := sha256.Sum256([]byte(root))
	return "berth-" + hex.EncodeToString(sum[:4])
}

// OpenFromEnv opens the Host of the instance BERTH_ROOT and BERTH_RUN name,
// as a shim or the DNS server sees it: they never create a network (no
// pools) and run the DNS server from their own binary.
func OpenFromEnv() (*Host, error) {
	root, run := StateFromEnv()
	var err error
	if root, err = filepath.Abs(root); err != nil {
		return nil, err
	}
	if run, err = filepath.Abs(run); err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return Open(Config{Root: root, Run: run, Helper: exe, Instance: Instance(root)})
}
