package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
	return cfg
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
	return e.info(ctx, c)
}

// ListContainers returns every container with its status.
func (e *Engine) ListContainers(ctx context.Context) ([]Info, error) {
	cs, err := e.Containers.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Info, 0, len(cs))
	for _, c := range cs {
		i, err := e.info(ctx, c)
		if err != nil {
			return nil, err
		}
		out = append(out, i)
	}
	return out, nil
}

func (e *Engine) info(ctx context.Context, c container.Container) (Info, error) {
	st, err := runtime.ReadStatus(e.Containers.StatusPath(c.ID))
	if err != nil {
		return Info{}, err
	}
	if st.Up() && !e.shimLive(c.ID) {
		// The shim is gone without recording an exit (killed, or a reboot
		// wiped $BERTH_RUN): nobody supervises the container any more. Stop
		// it and tear down what it held.
		st, err = e.recoverLostShim(ctx, c.ID, st)
		if err != nil {
			return Info{}, err
		}
	}
	return Info{Container: c, Status: st}, nil
}

func (e *Engine) lockContainer(ctx context.Context, id string) (*lockfile.Lock, error) {
	return lockfile.Acquire(ctx, filepath.Join(e.opts.Run, "locks", id))
}

// StartContainer mounts the root filesystem, wires the network and DNS, and
// hands the container to a new shim. Starting a running container is a no-op.
func (e *Engine) StartContainer(ctx context.Context, id string) (err error) {
	l, err := e.lockContainer(ctx, id)
	if err != nil {
		return err
	}
	defer l.Unlock()
	info, err := e.Inspect(ctx, id)
	if err != nil {
		return err
	}
	if info.Running() {
		return nil
	}
	c := info.Container
	if e.shimLive(c.ID) {
		// A start interrupted after the spawn: its shim is still bringing
		// the container up. Let it finish instead of racing it.
		if err := e.awaitShim(ctx, c); !errors.Is(err, errShimGone) {
			return err
		}
	}
	if e.needsTeardown(c.ID) {
		// A start or a shim was interrupted: undo what it left (mount,
		// netns, rules) so this start begins from scratch.
		if err := e.teardown(ctx, c.ID); err != nil {
			return fmt.Errorf("clean up after an interrupted start of %s: %w", c.Name, err)
		}
	}
	defer func() {
		// Leave nothing half-made, so the next start begins from scratch;
		// unless a shim runs (the spawn was cancelled, not refused): then
		// the container is the shim's, and so is its teardown.
		if err != nil && !e.shimLive(c.ID) {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			_ = e.teardown(cctx, c.ID)
		}
	}()
	sw := stopwatch.Start(ctx, "start", "container", c.Name)
	defer sw.Done()
	if err := e.prepare(ctx, c); err != nil {
		return err
	}
	sw.Lap("prepare")
	runDir := e.runDir(c.ID)
	cfg := runtime.Config{
		ID:         c.ID,
		Bundle:     runDir,
		StateRoot:  e.libcontainerRoot(),
		LogPath:    e.Containers.LogPath(c.ID),
		StatusPath: e.Containers.StatusPath(c.ID),
		Socket:     filepath.Join(runDir, "shim.sock"),
		PidFile:    filepath.Join(runDir, "shim.pid"),
		Restart:    c.Config.Restart,
	}
	if _, err := runtime.Spawn(ctx, e.opts.Exe, cfg, filepath.Join(runDir, "shim.log")); err != nil {
		return fmt.Errorf("start container %s: %w", c.Name, err)
	}
	sw.Lap("shim")
	return nil
}

// settled inspects a container after letting a shim that is still starting
// it (spawned by a command that was killed) finish, so stop and remove never
// pull the root filesystem or network from under a starting container.
func (e *Engine) settled(ctx context.Context, id string) (Info, error) {
	info, err := e.Inspect(ctx, id)
	if err != nil || info.Running() || !e.shimLive(info.ID) {
		return info, err
	}
	if err := e.awaitShim(ctx, info.Container); err != nil && !errors.Is(err, errShimGone) {
		return info, err
	}
	return e.Inspect(ctx, id)
}

// errShimGone: the shim awaitShim waited for exited without running the
// container; the caller starts afresh.
var errShimGone = errors.New("shim gone")

// awaitShim waits for a shim that another command spawned to report the
// container running, or to go away.
func (e *Engine) awaitShim(ctx context.Context, c container.Container) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		st, err := runtime.ReadStatus(e.Containers.StatusPath(c.ID))
		if err != nil {
			return err
		}
		if !e.shimLive(c.ID) {
			return errShimGone
		}
		// The status may still be an earlier run's until this shim writes
		// its own; with the shim live, an up state is this run's.
		if st.Up() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return fmt.Errorf("start container %s: a shim from an earlier start did not finish: %w", c.Name, errdefs.ErrUnavailable)
}

// StopContainer asks the shim to stop the container: its stop signal, then
// SIGKILL after timeout. A stopped container is left as it is.
func (e *Engine) StopContainer(ctx context.Context, id string, timeout time.Duration) error {
	info, err := e.settled(ctx, id)
	if err != nil {
		return err
	}
	if !info.Running() {
		return nil
	}
	req := runtime.Request{Op: runtime.OpStop, Signal: info.Config.StopSignal, Timeout: timeout.Milliseconds()}
	_, err = runtime.Call(ctx, e.shimSocket(info.ID), req)
	if errors.Is(err, errdefs.ErrUnavailable) {
		// The shim went away between our look and our call.
		_, err = e.recoverLostShim(ctx, info.ID, info.Status)
	}
	if err != nil {
		return fmt.Errorf("stop container %s: %w", info.Name, err)
	}
	return e.waitExited(ctx, info.ID)
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
	_, err = runtime.Call(ctx, e.shimSocket(info.ID), runtime.Request{Op: runtime.OpKill, Signal: signal})
	return err
}

// waitExited waits until the shim has written the final status, so a stop
// returns only after the container's network and mounts are gone.
func (e *Engine) waitExited(ctx context.Context, id string) error {
	for {
		st, err := runtime.ReadStatus(e.Containers.StatusPath(id))
		if err != nil {
			return err
		}
		if !st.Up() {
			return nil
		}
		if !e.shimLive(id) {
			_, err := e.recoverLostShim(ctx, id, st)
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// RemoveContainer deletes a stopped container; force stops it first.
func (e *Engine) RemoveContainer(ctx context.Context, id string, force bool) error {
	info, err := e.settled(ctx, id)
	if err != nil {
		return err
	}
	if info.Running() {
		if !force {
			return fmt.Errorf("container %s is running: stop it first or force: %w", info.Name, errdefs.ErrFailedPrecondition)
		}
		if err := e.StopContainer(ctx, info.ID, 0); err != nil {
			return err
		}
	}
	if e.needsTeardown(info.ID) {
		if err := e.teardown(ctx, info.ID); err != nil {
			return err
		}
	}
	if err := e.Snapshots.Remove(ctx, info.ID); err != nil {
		return err
	}
	os.RemoveAll(e.runDir(info.ID))
	os.Remove(filepath.Join(e.opts.Run, "locks", info.ID))
	return e.Containers.Remove(ctx, info.ID)
}

// shimLive reports whether the container's shim runs. The shim holds its
// lock for its whole life, so unlike a pid this cannot be fooled by reuse,
// after a reboot say.
func (e *Engine) shimLive(id string) bool { return runtime.ShimActive(e.runDir(id)) }

func (e *Engine) shimSocket(id string) string { return filepath.Join(e.runDir(id), "shim.sock") }
