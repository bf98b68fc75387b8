package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"time"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/engine/image"
	"github.com/berth-dev/berth/engine/runtime"
	"github.com/berth-dev/berth/internal/lockfile"
	"github.com/berth-dev/berth/internal/stopwatch"
)

// Info is a container record with its current status.
type Info struct {
	container.Container
	Status runtime.Status
}

// Running reports whether the container is up: its process is alive, or
// its shim is between two runs of a restart policy.
func (i Info) Running() bool { return i.Status.Up() }

// CreateContainer resolves the image, unpacks its layers and stores the
// record. Unset process fields in cfg are filled from the image, as Docker
// does: an entrypoint given here drops the image's command.
func (e *Engine) CreateContainer(ctx context.Context, name string, cfg container.Config) (container.Container, error) {
	// Held until the record names the image, so an image rm or prune
	// cannot take the image away in between.
	hold, err := e.Images.Hold(ctx)
	if err != nil {
		return container.Container{}, err
	}
	defer hold.Unlock()
	img, err := e.Images.Get(ctx, cfg.Image)
	if err != nil {
		if errors.Is(err, errdefs.ErrNotFound) {
			return container.Container{}, fmt.Errorf("image %q not found; import or pull it first: %w", cfg.Image, errdefs.ErrNotFound)
		}
		return container.Container{}, err
	}
	cfg = mergeImageConfig(cfg, img.Config)
	cfg.ImageID = img.ID
	if len(cfg.Entrypoint)+len(cfg.Cmd) == 0 {
		return container.Container{}, fmt.Errorf("image %q has no command and none was given: %w", cfg.Image, errdefs.ErrInvalidArgument)
	}
	if err := e.unpack(ctx, img); err != nil {
		return container.Container{}, err
	}
	return e.createRecord(ctx, name, cfg)
}

func mergeImageConfig(cfg container.Config, ic image.Config) container.Config {
	if cfg.Entrypoint == nil {
		cfg.Entrypoint = ic.Entrypoint
		if cfg.Cmd == nil {
			cfg.Cmd = ic.Cmd
		}
	}
	env := append([]string(nil), ic.Env...)
	cfg.Env = mergeEnv(env, cfg.Env)
	if !hasEnv(cfg.Env, "PATH") {
		cfg.Env = append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, cfg.Env...)
	}
	if cfg.WorkingDir == "" {
		cfg.WorkingDir = ic.WorkingDir
	}
	if cfg.User == "" {
		cfg.User = ic.User
	}
	if cfg.StopSignal == "" {
		cfg.StopSignal = ic.StopSignal
	}
	cfg.Labels = mergeLabels(ic.Labels, cfg.Labels)
	cfg.Expose = slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(cfg.Expose), ic.ExposedPorts...))))
	// The image's VOLUMEs the container does not mount otherwise become
	// anonymous volumes (made when the record is, filled from the image).
	for _, v := range ic.Volumes {
		if !slices.ContainsFunc(cfg.Mounts, func(m container.Mount) bool { return path.Clean(m.Target) == path.Clean(v) }) {
			cfg.Mounts = append(cfg.Mounts, container.Mount{Type: "volume", Target: v})
		}
	}
	cfg.Run.Healthcheck = runtime.MergeHealth(cfg.Run.Healthcheck, imageHealth(ic.Healthcheck))
	return cfg
}

// imageHealth is an image's HEALTHCHECK as the runtime runs it.
func imageHealth(h *image.Healthcheck) *runtime.HealthConfig {
	if h == nil {
		return nil
	}
	return &runtime.HealthConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout, StartPeriod: h.StartPeriod, Retries: h.Retries}
}

// mergeLabels gives a container its image's labels under its own, as
// Docker does.
func mergeLabels(image, own map[string]string) map[string]string {
	if len(image) == 0 {
		return own
	}
	out := maps.Clone(image)
	maps.Copy(out, own)
	return out
}

// unpack makes sure every layer of img exists as a snapshot layer.
func (e *Engine) unpack(ctx context.Context, img image.Image) error {
	hold, err := e.Images.Hold(ctx)
	if err != nil {
		return err
	}
	defer hold.Unlock()
	for i, chain := range img.ChainIDs {
		err := e.Snapshots.EnsureLayer(ctx, chain, func(dir string) error {
			return e.Images.Unpack(ctx, img, i, dir)
		})
		if err != nil {
			return fmt.Errorf("unpack layer %d of %s: %w", i, img.Ref, err)
		}
	}
	return nil
}

// Inspect returns a container and its status, noticing a shim that died.
func (e *Engine) Inspect(ctx context.Context, ref string) (Info, error) {
	c, err := e.Containers.Get(ctx, ref)
	if err != nil {
		return Info{}, err
	}
	return e.info(ctx, c, false)
}

// ListContainers returns every container with its status.
func (e *Engine) ListContainers(ctx context.Context) ([]Info, error) {
	cs, err := e.Containers.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Info, 0, len(cs))
	for _, c := range cs {
		i, err := e.info(ctx, c, false)
		if err != nil {
			return nil, err
		}
		out = append(out, i)
	}
	return out, nil
}

// info reads a container's status. A status that says up while no shim
// holds its lock is a lost shim (killed, or a reboot wiped $BERTH_RUN):
// nobody supervises the container any more. Recovery (kill what is left,
// tear down, record the exit) runs only under the container's lock: with
// it held (locked), or taken here if free; a command that holds it is
// starting, stopping or removing the container and will see to it, so the
// status is only shown as it will be.
func (e *Engine) info(ctx context.Context, c container.Container, locked bool) (Info, error) {
	st, err := runtime.ReadStatus(e.Containers.StatusPath(c.ID))
	if err != nil {
		return Info{}, err
	}
	if !st.Up() || e.shimLive(c.ID) {
		return Info{Container: c, Status: st}, nil
	}
	if !locked {
		l, free, err := lockfile.TryAcquire(e.lockPath(c.ID))
		if err != nil {
			return Info{}, err
		}
		if !free {
			return Info{Container: c, Status: lostStatus(st)}, nil
		}
		defer l.Unlock()
		// Someone may have recovered or restarted it meanwhile.
		if st, err = runtime.ReadStatus(e.Containers.StatusPath(c.ID)); err != nil {
			return Info{}, err
		}
		if !st.Up() || e.shimLive(c.ID) {
			return Info{Container: c, Status: st}, nil
		}
	}
	st, err = e.recoverLostShim(ctx, c.ID, st)
	if err != nil && locked {
		return Info{}, err
	}
	// A reader (ps, inspect) shows a container whose remains could not
	// be cleaned up as dead, as Docker lists one; the next command that
	// starts, stops or removes it tries again and reports the error.
	return Info{Container: c, Status: st}, nil
}

func (e *Engine) lockPath(id string) string { return filepath.Join(e.opts.Run, "locks", id) }

func (e *Engine) lockContainer(ctx context.Context, id string) (*lockfile.Lock, error) {
	return lockfile.Acquire(ctx, e.lockPath(id))
}

// StartContainer mounts the root filesystem, wires the network and DNS, and
// hands the container to a new shim. Starting a running container is a no-op.
func (e *Engine) StartContainer(ctx context.Context, id string) error {
	sh, err := e.startContainer(ctx, id, runtime.Config{})
	sh.Release()
	return err
}

// startContainer starts a container with the shim settings in extra (Hold,
// stdin); it returns the spawned shim, nil when the container was running.
func (e *Engine) startContainer(ctx context.Context, id string, extra runtime.Config) (sh *runtime.Spawned, err error) {
	c, err := e.Containers.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	l, err := e.lockContainer(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	defer l.Unlock()
	info, err := e.info(ctx, c, true)
	if err != nil {
		return nil, err
	}
	if info.Running() {
		return nil, nil
	}
	if e.shimLive(c.ID) {
		// A shim spawned by a command that was killed while it started the
		// container, or one holding a container created for run -it. Let
		// it finish, or end it, before starting afresh.
		// The shim's answer says whether it runs (its waiters hear of a
		// change only once the status file has it).
		if running, err := e.settle(ctx, c.ID); err != nil || running {
			return nil, err
		}
	}
	if e.host.NeedsTeardown(c.ID) {
		// A start or a shim was interrupted: undo what it left (mount,
		// netns, rules) so this start begins from scratch.
		if err := e.host.Teardown(ctx, c.ID); err != nil {
			return nil, fmt.Errorf("clean up after an interrupted start of %s: %w", c.Name, err)
		}
	}
	defer func() {
		// Leave nothing half-made, so the next start begins from scratch;
		// unless a shim runs (the spawn was cancelled, not refused): then
		// the container is the shim's, and so is its teardown.
		if err != nil && !e.shimLive(c.ID) {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			_ = e.host.Teardown(cctx, c.ID)
		}
	}()
	sw := stopwatch.Start(ctx, "start", "container", c.Name)
	defer sw.Done()
	spec, err := e.prepare(ctx, c)
	if err != nil {
		return nil, err
	}
	sw.Lap("prepare")
	runDir := e.runDir(c.ID)
	cfg := extra
	cfg.ID = c.ID
	cfg.Bundle = runDir
	cfg.Spec = spec
	cfg.StateRoot = e.libcontainerRoot()
	cfg.LogPath = e.Containers.LogPath(c.ID)
	cfg.Log = c.Config.Run.Log
	cfg.StatusPath = e.Containers.StatusPath(c.ID)
	cfg.Socket = e.shimSocket(c.ID)
	cfg.PidFile = filepath.Join(runDir, "shim.pid")
	cfg.Restart = c.Config.Restart
	cfg.SeccompCache = filepath.Join(e.opts.Run, "seccomp")
	cfg.StopSignal = c.Config.StopSignal
	cfg.Health = c.Config.Run.Healthcheck
	cfg.OpenStdin = cfg.OpenStdin || c.Config.Run.OpenStdin
	sh, err = runtime.Spawn(ctx, e.opts.Helper, cfg, filepath.Join(runDir, "shim.log"))
	if err != nil {
		return sh, fmt.Errorf("start container %s: %w", c.Name, err)
	}
	sw.Lap("shim")
	return sh, nil
}

// settle waits for a live shim of a container that does not run, one
// still starting it: it answers once the container runs, or goes away
// when it gives up. A shim that holds the container for a start (run -it)
// belongs to the command that will start it. running reports the shim's
// answer. Called with the container's lock held.
func (e *Engine) settle(ctx context.Context, id string) (running bool, err error) {
	st, err := runtime.Wait(ctx, e.shimSocket(id), runtime.ConditionStarted)
	switch {
	case errdefs.IsUnavailable(err), errdefs.IsFailedPrecondition(err):
		// The shim gave up: start afresh once it has let go of the
		// container (it answers before its cleanup is done).
		return false, runtime.AwaitShimExit(ctx, e.runDir(id))
	case err != nil:
		return false, err
	case st.State == runtime.StateCreated:
		return false, fmt.Errorf("container is being started by another command: %w", errdefs.ErrConflict)
	}
	return st.Up(), nil
}

// StopContainer asks the shim to stop the container: its stop signal, then
// SIGKILL after timeout. It returns once the container has exited and its
// network and mounts are gone. A stopped container is left as it is.
func (e *Engine) StopContainer(ctx context.Context, id string, timeout time.Duration) error {
	c, err := e.Containers.Get(ctx, id)
	if err != nil {
		return err
	}
	l, err := e.lockContainer(ctx, c.ID)
	if err != nil {
		return err
	}
	defer l.Unlock()
	return e.stopLocked(ctx, c, timeout)
}

func (e *Engine) stopLocked(ctx context.Context, c container.Container, timeout time.Duration) error {
	info, err := e.info(ctx, c, true)
	if err != nil {
		return err
	}
	if !e.shimLive(c.ID) {
		return nil // info recovered what a lost shim left
	}
	// Whatever the shim is doing (starting, holding or running the
	// container), a stop ends it; the answer comes after the final exit.
	req := runtime.Request{Op: runtime.OpStop, Signal: info.Config.StopSignal, Timeout: timeout.Milliseconds()}
	_, err = runtime.Call(ctx, e.shimSocket(c.ID), req)
	if errdefs.IsUnavailable(err) {
		// The shim went away between our look and our call.
		_, err = e.info(ctx, c, true)
	}
	if err != nil {
		return fmt.Errorf("stop container %s: %w", c.Name, err)
	}
	return nil
}

// KillContainer sends a signal to the container's init.
func (e *Engine) KillContainer(ctx context.Context, id, signal string) error {
	info, err := e.Inspect(ctx, id)
	if err != nil {
		return err
	}
	if !info.Running() {
		return fmt.Errorf("container %s is not running: %w", info.Name, errdefs.ErrFailedPrecondition)
	}
	if _, err := runtime.Call(ctx, e.shimSocket(info.ID), runtime.Request{Op: runtime.OpKill, Signal: signal}); err != nil {
		return fmt.Errorf("kill container %s: %w", info.Name, err)
	}
	return nil
}

// RemoveContainer deletes a container that does not run; force stops it
// first.
func (e *Engine) RemoveContainer(ctx context.Context, id string, force bool) error {
	c, err := e.Containers.Get(ctx, id)
	if err != nil {
		return err
	}
	l, err := e.lockContainer(ctx, c.ID)
	if err != nil {
		return err
	}
	// The lock file goes with the container; whoever waits on it finds
	// the container gone.
	defer l.Remove()
	info, err := e.info(ctx, c, true)
	if err != nil {
		return err
	}
	if info.Running() && !force {
		return fmt.Errorf("container %s is running: stop it first or force: %w", info.Name, errdefs.ErrFailedPrecondition)
	}
	if err := e.stopLocked(ctx, c, 0); err != nil {
		return err
	}
	if e.host.NeedsTeardown(c.ID) {
		if err := e.host.Teardown(ctx, c.ID); err != nil {
			return err
		}
	}
	if err := e.Snapshots.Remove(ctx, c.ID); err != nil {
		return err
	}
	os.RemoveAll(e.runDir(c.ID))
	return e.Containers.Remove(ctx, c.ID)
}

// shimLive reports whether the container's shim runs. The shim holds its
// lock for its whole life, so unlike a pid this cannot be fooled by reuse,
// after a reboot say.
func (e *Engine) shimLive(id string) bool { return runtime.ShimActive(e.runDir(id)) }

func (e *Engine) shimSocket(id string) string { return filepath.Join(e.runDir(id), "shim.sock") }
