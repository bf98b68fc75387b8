package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/engine/hostside"
	"github.com/berth-dev/berth/engine/image"
	"github.com/berth-dev/berth/engine/network"
	"github.com/berth-dev/berth/engine/snapshot"
	"github.com/berth-dev/berth/engine/volume"
	"github.com/berth-dev/berth/internal/lockfile"
	"github.com/berth-dev/berth/internal/names"
)

// Default locations of persistent and volatile state.
const (
	DefaultRoot = hostside.DefaultRoot
	DefaultRun  = hostside.DefaultRun
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
	root, run := hostside.StateFromEnv()
	return Options{Root: root, Run: run}
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

	host *hostside.Host // what starts leave on the host: teardown, DNS publication
}

// Instance names the kernel objects shared per engine (see
// hostside.Instance).
func Instance(root string) string { return hostside.Instance(root) }

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
	pools, err := networkPools()
	if err != nil {
		return nil, err
	}
	if e.host, err = hostside.Open(hostside.Config{Root: o.Root, Run: o.Run, Helper: o.Helper, Instance: e.instance, Pools: pools}); err != nil {
		return nil, err
	}
	e.Networks, e.Containers = e.host.Networks, e.host.Containers
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

func (e *Engine) runDir(id string) string    { return e.host.RunDir(id) }
func (e *Engine) rootfsDir(id string) string { return e.host.RootfsDir(id) }
func (e *Engine) libcontainerRoot() string   { return e.host.LibcontainerRoot() }
func (e *Engine) cgroupParent() string       { return e.host.CgroupParent() }

// DNSDir is where the DNS server of this engine keeps its records.
func (e *Engine) DNSDir() string { return e.host.DNSDir() }
