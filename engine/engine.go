package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/engine/image"
	"github.com/berth-dev/berth/engine/network"
	"github.com/berth-dev/berth/engine/snapshot"
	"github.com/berth-dev/berth/engine/volume"
	"github.com/berth-dev/berth/internal/lockfile"
	"github.com/berth-dev/berth/internal/names"
)

// Default locations of persistent and volatile state.
const (
	DefaultRoot = "/var/lib/berth"
	DefaultRun  = "/run/berth"
)

// Options locate an engine's state. Two engines with different roots share
// nothing, which is how tests stay out of each other's way.
type Options struct {
	Root string // persistent state; $BERTH_ROOT
	Run  string // state that dies with a reboot; $BERTH_RUN
	Exe  string // the berth binary
	// Helper is the binary that runs shims (and, through them,
	// libcontainer's init, the container entry and init: true's init) and
	// the DNS server: berth's lean helper (cmd/berth-helper), or Exe when
	// empty.
	Helper string
}

// OptionsFromEnv reads BERTH_ROOT and BERTH_RUN, falling back to defaults.
func OptionsFromEnv() Options {
	o := Options{Root: os.Getenv("BERTH_ROOT"), Run: os.Getenv("BERTH_RUN")}
	if o.Root == "" {
		o.Root = DefaultRoot
	}
	if o.Run == "" {
		o.Run = DefaultRun
	}
	return o
}

// Engine ties the stores together and runs container lifecycles.
type Engine struct {
	opts     Options
	instance string

	Images     *image.Store
	Snapshots  *snapshot.Store
	Volumes    *volume.Store
	Networks   *network.Manager
	Containers *container.Store

	dnsSync, dnsDrop publishBatch // DNS publications shared by concurrent starts, teardowns
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

// Open prepares the state directories and opens every store.
func Open(ctx context.Context, o Options) (*Engine, error) {
	if o.Root == "" || o.Run == "" {
		d := OptionsFromEnv()
		if o.Root == "" {
			o.Root = d.Root
		}
		if o.Run == "" {
			o.Run = d.Run
		}
	}
	var err error
	if o.Root, err = filepath.Abs(o.Root); err != nil {
		return nil, err
	}
	if o.Run, err = filepath.Abs(o.Run); err != nil {
		return nil, err
	}
	if o.Exe == "" {
		// os.Executable, not /proc/self/exe, so ps shows "berth shim".
		if o.Exe, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	if o.Helper == "" {
		o.Helper = o.Exe
	}
	for _, d := range []string{o.Root, o.Run} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("state dir: %w", err)
		}
		if err := os.Chmod(d, 0o700); err != nil {
			return nil, err
		}
	}
	e := &Engine{opts: o, instance: Instance(o.Root)}
	if e.Images, err = image.Open(filepath.Join(o.Root, "image")); err != nil {
		return nil, err
	}
	if e.Snapshots, err = snapshot.Open(filepath.Join(o.Root, "snapshot")); err != nil {
		return nil, err
	}
	if e.Volumes, err = volume.Open(filepath.Join(o.Root, "volumes")); err != nil {
		return nil, err
	}
	if e.Containers, err = container.Open(filepath.Join(o.Root, "containers")); err != nil {
		return nil, err
	}
	pools, err := networkPools()
	if err != nil {
		return nil, err
	}
	e.Networks, err = network.New(network.Config{
		StateDir: filepath.Join(o.Root, "network"),
		RunDir:   filepath.Join(o.Run, "network"),
		Table:    e.instance,
		Pools:    pools,
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

// LockProject serialises commands that change one project (up, down), so
// two of them never plan from the same observation. Unlock when done.
func (e *Engine) LockProject(ctx context.Context, project string) (*lockfile.Lock, error) {
	if err := names.Project(project); err != nil {
		return nil, err
	}
	return lockfile.Acquire(ctx, filepath.Join(e.opts.Run, "projects", project+".lock"))
}

// Options returns the engine's resolved options.
func (e *Engine) Options() Options { return e.opts }

// InstanceName is the engine's kernel object prefix (see Instance).
func (e *Engine) InstanceName() string { return e.instance }

func (e *Engine) runDir(id string) string    { return filepath.Join(e.opts.Run, "containers", id) }
func (e *Engine) rootfsDir(id string) string { return filepath.Join(e.runDir(id), "rootfs") }
func (e *Engine) libcontainerRoot() string   { return filepath.Join(e.opts.Run, "runc") }
func (e *Engine) dnsDir() string             { return filepath.Join(e.opts.Run, "dns") }
func (e *Engine) cgroupParent() string       { return "/" + e.instance }
