package compose

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-dev/berth/engine"
)

// UpRequest is everything berth up needs besides the project.
type UpRequest struct {
	Options     UpOptions
	Detach      bool
	Logs        LogOptions // for the attached (foreground) mode
	StopTimeout *time.Duration
	Out, Err    io.Writer
}

// Up brings the project to its desired state. On failure it removes what
// this call created, so a failed up leaves nothing half-made. In the
// foreground it streams logs until every container has exited or ctx is
// cancelled (Ctrl-C), and then stops the stack.
func Up(ctx context.Context, e *engine.Engine, p *types.Project, r UpRequest) error {
	if err := apply(ctx, e, p, r); err != nil {
		return err
	}
	if r.Detach {
		return nil
	}
	return attach(ctx, e, p, r)
}

// apply is up's change to the host, under the project lock; attaching to
// the logs happens outside it so a down from another terminal can proceed.
func apply(ctx context.Context, e *engine.Engine, p *types.Project, r UpRequest) error {
	l, err := e.LockProject(ctx, p.Name)
	if err != nil {
		return err
	}
	defer l.Unlock()
	obs, err := Observe(ctx, e, p.Name)
	if err != nil {
		return err
	}
	obs.Images = ObserveImages(ctx, e, p)
	plan, err := PlanUp(p, obs, r.Options)
	if err != nil {
		return err
	}
	for _, w := range plan.Warnings {
		fmt.Fprintln(r.Err, "WARN", w)
	}
	j := &journal{}
	a := &Applier{Engine: e, Progress: j.wrap(PlainProgress(r.Err)), StopTimeout: r.StopTimeout}
	if err := a.Apply(ctx, plan); err != nil {
		if errors.As(err, new(dependencyFailed)) {
			return inFile(p, err)
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		if rerr := j.rollback(rctx, e, p.Name); rerr != nil {
			return errors.Join(inFile(p, err), fmt.Errorf("rollback: %w", rerr))
		}
		return inFile(p, err)
	}
	return nil
}

// attach follows every container's log until all have exited, or ctx is
// cancelled, in which case it stops the stack the way docker compose does.
func attach(ctx context.Context, e *engine.Engine, p *types.Project, r UpRequest) error {
	ts, err := logTargets(ctx, e, p.Name, nil)
	if err != nil {
		return err
	}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	o := r.Logs
	o.Follow, o.Tail = true, -1
	err = followTargets(lctx, e, ts, r.Out, o, func(t logTarget) {
		info, ierr := e.Inspect(context.WithoutCancel(ctx), t.ID)
		if ierr != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(r.Out, "%s exited with code %d\n", t.Prefix, info.Status.ExitCode)
	})
	if ctx.Err() == nil {
		return err
	}
	fmt.Fprintln(r.Err, "Gracefully stopping... (press Ctrl+C again to force)")
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
	defer scancel()
	if serr := Stop(sctx, e, p, nil, r.StopTimeout, r.Err); serr != nil {
		return serr
	}
	return ctx.Err()
}

// journal remembers what an up created so a failed up can take it back.
type journal struct {
	mu         sync.Mutex
	containers []string
	networks   []string
	volumes    []string
}

func (j *journal) wrap(next Progress) Progress {
	return func(kind, name, status string) {
		if status == "Created" {
			j.mu.Lock()
			switch kind {
			case "Container":
				j.containers = append(j.containers, name)
			case "Network":
				j.networks = append(j.networks, name)
			case "Volume":
				j.volumes = append(j.volumes, name)
			}
			j.mu.Unlock()
		}
		next(kind, name, status)
	}
}

func (j *journal) rollback(ctx context.Context, e *engine.Engine, project string) error {
	var errs []error
	for i := len(j.containers) - 1; i >= 0; i-- {
		if err := e.RemoveContainer(ctx, j.containers[i], true); err != nil {
			errs = append(errs, err)
		}
	}
	for _, n := range j.networks {
		if err := e.RemoveNetwork(ctx, n); err != nil {
			errs = append(errs, err)
		}
	}
	for _, v := range j.volumes {
		if err := e.Volumes.Remove(ctx, v); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// inFile prefixes an error about the project's services with the compose
// file they come from, as load errors are, so every bad-input line names
// the file. Cancellation is passed through untouched.
func inFile(p *types.Project, err error) error {
	if len(p.ComposeFiles) == 0 || errors.Is(err, context.Canceled) {
		return err
	}
	name := p.ComposeFiles[0]
	if rel, rerr := filepath.Rel(p.WorkingDir, name); rerr == nil && !strings.HasPrefix(rel, "..") {
		name = rel
	}
	return fmt.Errorf("%s: %w", name, err)
}
