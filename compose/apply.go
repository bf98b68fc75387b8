package compose

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sync/errgroup"

	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/engine/network"
)

// parallelism bounds how many services of one level are worked on at once.
// Stops mostly wait out their grace period, so a small bound makes down of
// a wide stack take several grace periods; starts are CPU-bound either way.
const parallelism = 32

// Progress receives one line per finished step ("Container hello-web-1
// Started"); the CLI prints it. It must be safe for concurrent use.
type Progress func(kind, name, status string)

// Applier executes plans against an engine. It makes no decisions.
type Applier struct {
	Engine      *engine.Engine
	Progress    Progress
	StopTimeout *time.Duration // overrides each service's stop grace period
}

// Apply runs the plan: setup, then each level (services in parallel), then
// cleanup. It stops at the first error; what was done stays done and is
// visible to the next observe.
func (a *Applier) Apply(ctx context.Context, p Plan) error {
	for _, s := range p.Setup {
		if err := a.step(ctx, s); err != nil {
			return err
		}
	}
	for _, lvl := range p.Levels {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(parallelism)
		for _, ss := range lvl {
			g.Go(func() error {
				for _, name := range ss.AwaitSuccess {
					if err := a.awaitSuccess(gctx, ss.Service, name); err != nil {
						return err
					}
				}
				for _, s := range ss.Steps {
					if err := a.step(gctx, s); err != nil {
						return err
					}
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
	}
	var errs []error
	for _, s := range p.Cleanup {
		// Cleanup goes on past a failure so down removes all it can.
		if err := a.step(ctx, s); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (a *Applier) report(kind, name, status string) {
	if a.Progress != nil {
		a.Progress(kind, name, status)
	}
}

func (a *Applier) step(ctx context.Context, s Step) error {
	e := a.Engine
	switch s.Kind {
	case StepCreateNetwork:
		_, err := e.CreateNetwork(ctx, network.Spec{Name: s.Name, Labels: s.Labels, Internal: s.Internal})
		if errors.Is(err, errdefs.ErrAlreadyExists) {
			err = nil
		}
		if err != nil {
			return fmt.Errorf("network %s: %w", s.Name, err)
		}
		a.report("Network", s.Name, "Created")
	case StepRemoveNetwork:
		err := e.RemoveNetwork(ctx, s.Name)
		switch {
		case errors.Is(err, errdefs.ErrFailedPrecondition):
			// Containers outside the plan (orphans, kept without
			// --remove-orphans) still use it: docker compose warns and
			// goes on, and so do we.
			a.report("Network", s.Name, "Resource is still in use")
			return nil
		case err != nil && !errors.Is(err, errdefs.ErrNotFound):
			return fmt.Errorf("network %s: %w", s.Name, err)
		}
		a.report("Network", s.Name, "Removed")
	case StepCreateVolume:
		if _, err := e.Volumes.Create(ctx, s.Name, s.Labels); err != nil && !errors.Is(err, errdefs.ErrAlreadyExists) {
			return fmt.Errorf("volume %s: %w", s.Name, err)
		}
		a.report("Volume", s.Name, "Created")
	case StepRemoveVolume:
		if err := e.Volumes.Remove(ctx, s.Name); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return fmt.Errorf("volume %s: %w", s.Name, err)
		}
		a.report("Volume", s.Name, "Removed")
	case StepCreate:
		if _, err := e.CreateContainer(ctx, s.Name, s.Config); err != nil {
			return fmt.Errorf("service %q: %w", s.Service, err)
		}
		a.report("Container", s.Name, "Created")
	case StepStart:
		id := s.ID
		if id == "" {
			id = s.Name
		}
		if err := e.StartContainer(ctx, id); err != nil {
			if errors.Is(err, errdefs.ErrConflict) {
				// The one conflict a start meets is a published port.
				return fmt.Errorf("service %q: ports: %w", s.Service, err)
			}
			return fmt.Errorf("service %q: %w", s.Service, err)
		}
		a.report("Container", s.Name, "Started")
	case StepStop:
		info, err := e.Inspect(ctx, s.ID)
		if err != nil {
			return err
		}
		timeout := 10 * time.Second
		if info.Config.StopGrace > 0 {
			timeout = info.Config.StopGrace
		}
		if a.StopTimeout != nil {
			timeout = *a.StopTimeout
		}
		if err := e.StopContainer(ctx, s.ID, timeout); err != nil {
			return err
		}
		a.report("Container", s.Name, "Stopped")
	case StepRemove:
		if err := e.RemoveContainer(ctx, s.ID, true); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return err
		}
		a.report("Container", s.Name, "Removed")
	default:
		return fmt.Errorf("unknown step %q: %w", s.Kind, errdefs.ErrNotImplemented)
	}
	return nil
}

// dependencyFailed marks an up that built the stack but whose dependency
// job then failed: what it made stays, so its logs can be read.
type dependencyFailed struct{ error }

func (d dependencyFailed) Unwrap() error { return d.error }

// awaitSuccess waits for a dependency's container to exit and fails unless
// it exited with code 0, as depends_on service_completed_successfully asks.
func (a *Applier) awaitSuccess(ctx context.Context, service, name string) error {
	for {
		info, err := a.Engine.Inspect(ctx, name)
		if err != nil {
			return fmt.Errorf("service %q: depends_on: %w", service, err)
		}
		if !info.Running() && info.Status.State != "created" {
			if info.Status.ExitCode != 0 {
				return dependencyFailed{fmt.Errorf("service %q: depends_on: %s did not complete successfully: exit %d: %w",
					service, name, info.Status.ExitCode, errdefs.ErrFailedPrecondition)}
			}
			a.report("Container", name, "Exited")
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// PlainProgress writes docker-compose-like progress lines to w.
func PlainProgress(w io.Writer) Progress {
	var mu sync.Mutex
	return func(kind, name, status string) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, " %s %s  %s\n", kind, name, status)
	}
}
