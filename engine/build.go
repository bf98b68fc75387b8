package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/engine/build"
	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/engine/image"
	"github.com/berth-dev/berth/engine/network"
	"github.com/berth-dev/berth/engine/runtime"
	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/lockfile"
	"github.com/berth-dev/berth/internal/stopwatch"
)

// buildNetwork is the bridge RUN steps use by default, as Docker's build
// steps use its default bridge: outside access through NAT, no names of
// any project. It lives while builds run.
const buildNetwork = "berth-build"

func (e *Engine) buildCache() (*build.Cache, error) {
	return build.OpenCache(filepath.Join(e.opts.Root, "build", "cache"))
}

// Build builds an image (see build.Builder.Build) with RUN steps run as
// short-lived containers on this engine's runtime.
func (e *Engine) Build(ctx context.Context, o build.Options) (image.Image, error) {
	cache, err := e.buildCache()
	if err != nil {
		return image.Image{}, err
	}
	// Shared while this build may use the build network; its removal
	// takes it exclusively, so the last build out removes the network.
	netLock, err := lockfile.AcquireShared(ctx, filepath.Join(e.opts.Run, "build-network.lock"))
	if err != nil {
		return image.Image{}, err
	}
	defer e.releaseBuildNetwork(netLock)
	b := &build.Builder{
		Images:    e.Images,
		Snapshots: e.Snapshots,
		Cache:     cache,
		RunDir:    filepath.Join(e.opts.Run, "build"),
		MountsDir: filepath.Join(e.opts.Root, "build", "mounts"),
		Exec:      stepRunner{e},
		Pull: func(ctx context.Context, ref string) (image.Image, error) {
			return e.PullImage(ctx, ref, "", nil)
		},
	}
	return b.Build(ctx, o)
}

// releaseBuildNetwork removes the build network when no other build holds
// it.
func (e *Engine) releaseBuildNetwork(shared *lockfile.Lock) {
	shared.Unlock()
	l, free, err := lockfile.TryAcquire(filepath.Join(e.opts.Run, "build-network.lock"))
	if err != nil || !free {
		return
	}
	defer l.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := e.Networks.Get(ctx, buildNetwork); err == nil {
		_ = e.RemoveNetwork(ctx, buildNetwork)
	}
}

// PruneBuildCache forgets cached build steps not used for keep (all with
// 0) and deletes the blobs no image or remaining step needs.
func (e *Engine) PruneBuildCache(ctx context.Context, keep time.Duration) (int, image.Removed, error) {
	cache, err := e.buildCache()
	if err != nil {
		return 0, image.Removed{}, err
	}
	res, err := cache.Prune(ctx, keep)
	if err != nil {
		return res.Entries, image.Removed{}, err
	}
	os.RemoveAll(filepath.Join(e.opts.Root, "build", "mounts"))
	removed, err := e.Images.Collect(ctx, image.RemoveOptions{Users: e.imageUsers, Blobs: e.buildBlobs})
	if err != nil {
		return res.Entries, removed, err
	}
	_, err = e.pruneLayers(ctx)
	return res.Entries, removed, err
}

// buildBlobs lists the layer blobs of cached build steps, which image
// garbage collection keeps.
func (e *Engine) buildBlobs(ctx context.Context) (map[string]bool, error) {
	cache, err := e.buildCache()
	if err != nil {
		return nil, err
	}
	return cache.Blobs(ctx)
}

// stepRunner runs RUN steps as containers: a shim supervises each, as any
// container, and tears its network down when it exits.
type stepRunner struct{ e *Engine }

func (s stepRunner) Run(ctx context.Context, p build.Process) (int, error) {
	e := s.e
	runDir := e.runDir(p.ID)
	if err := os.MkdirAll(runDir, 0o700); err != nil {
		return -1, err
	}
	defer os.RemoveAll(runDir)
	net, err := e.stepNetwork(ctx, p)
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = e.host.Teardown(cctx, p.ID)
	}()
	if err != nil {
		return -1, err
	}
	spec, err := container.Spec(container.SpecOptions{
		Rootfs:      p.Rootfs,
		NetNS:       net.netns,
		CgroupsPath: e.cgroupParent() + "/" + p.ID,
		Hostname:    net.hostname,
		Process: container.Process{
			Args: p.Args, Env: p.Env, Cwd: p.Cwd, UID: p.UID, GID: p.GID, AdditionalGids: p.Groups,
		},
		Mounts: append(net.files, p.Mounts...),
	})
	if err != nil {
		return -1, err
	}
	net.applySpec(spec)
	adjustStepSpec(spec, p)
	if err := atomicfile.WriteJSON(filepath.Join(runDir, "config.json"), spec, 0o600); err != nil {
		return -1, err
	}
	cfg := runtime.Config{
		ID:         p.ID,
		Bundle:     runDir,
		StateRoot:  e.libcontainerRoot(),
		LogPath:    filepath.Join(runDir, "output.log"),
		StatusPath: filepath.Join(runDir, "status.json"),
		Socket:     filepath.Join(runDir, "shim.sock"),
		PidFile:    filepath.Join(runDir, "shim.pid"),
		Hold:       true,
	}
	// The shim creates the container and holds it; the step's output is
	// streamed from before the start, so not a line is missed.
	sh, err := runtime.Spawn(ctx, e.opts.Helper, cfg, filepath.Join(runDir, "shim.log"))
	defer sh.Release()
	if err != nil {
		return -1, err
	}
	attached := make(chan struct{})
	attachDone := make(chan error, 1)
	go func() {
		_, err := runtime.Attach(ctx, cfg.Socket, runtime.Stdio{Stdout: p.Output, Stderr: p.Output, Attached: func() { close(attached) }}, nil)
		attachDone <- err
	}()
	select {
	case <-attached:
	case err := <-attachDone:
		return -1, fmt.Errorf("attach to step %s: %w", p.ID, err)
	}
	if _, err := runtime.Call(ctx, cfg.Socket, runtime.Request{Op: runtime.OpStart}); err != nil {
		return -1, err
	}
	sh.Release()
	// A cancelled build kills its step; the shim then tears down.
	stop := context.AfterFunc(ctx, func() {
		_, _ = runtime.Call(context.Background(), cfg.Socket, runtime.Request{Op: runtime.OpKill, Signal: "SIGKILL"})
	})
	defer stop()
	// The final exit: after the shim's teardown of the step's network.
	st, err := runtime.Wait(context.WithoutCancel(ctx), cfg.Socket, runtime.ConditionExit)
	<-attachDone
	if ctx.Err() != nil {
		return -1, ctx.Err()
	}
	if err != nil {
		return -1, err
	}
	return st.ExitCode, nil
}

// stepNetwork gives a step its network, as a container of its own with
// the build network as its only one (or the host's, or none), and its
// /etc/hosts, /etc/hostname and /etc/resolv.conf.
func (e *Engine) stepNetwork(ctx context.Context, p build.Process) (netSetup, error) {
	c := container.Container{ID: p.ID, Name: p.ID, Config: container.Config{
		Hostname: "buildkitsandbox",
		Net:      container.Networking{ExtraHosts: p.ExtraHosts},
	}}
	switch p.Network {
	case "host":
		c.Config.Net.Mode = container.NetworkModeHost
	case "none":
		c.Config.Net.Mode = container.NetworkModeNone
	case "default":
		_, err := e.Networks.Create(ctx, network.Spec{Name: buildNetwork, Labels: map[string]string{"berth.build": "true"}})
		if err != nil && !errors.Is(err, errdefs.ErrAlreadyExists) {
			return netSetup{}, fmt.Errorf("build network: %w", err)
		}
		c.Config.Networks = []container.Attachment{{Network: buildNetwork}}
	default:
		return netSetup{}, fmt.Errorf("network %q: want default, host or none: %w", p.Network, errdefs.ErrInvalidArgument)
	}
	sw := stopwatch.Start(ctx, "step network", "id", p.ID)
	defer sw.Done()
	return e.prepareNetwork(ctx, c, sw)
}

// adjustStepSpec applies what a step asks beyond a normal container:
// the size of /dev/shm, ulimits.
func adjustStepSpec(s *specs.Spec, p build.Process) {
	if p.ShmSize > 0 {
		for i, m := range s.Mounts {
			if m.Destination == "/dev/shm" {
				for j, o := range m.Options {
					if strings.HasPrefix(o, "size=") {
						s.Mounts[i].Options[j] = fmt.Sprintf("size=%d", p.ShmSize)
					}
				}
			}
		}
	}
	for _, u := range p.Ulimits {
		replaced := false
		for i, r := range s.Process.Rlimits {
			if r.Type == u.Type {
				s.Process.Rlimits[i], replaced = u, true
			}
		}
		if !replaced {
			s.Process.Rlimits = append(s.Process.Rlimits, u)
		}
	}
}
