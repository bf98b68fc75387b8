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
	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/engine"
)

// UpRequest is everything berth up needs besides the project.
type UpRequest struct {
	Options UpOptions
	Detach  bool
	// Explain prints the plan, every step with its reason, and then
	// applies it (a dry run only prints it).
	Explain bool
	Logs    LogOptions // for the attached (foreground) mode
	ApplyOptions
	Pull      string // --pull: always, missing or never; "" follows each service's pull_policy
	QuietPull bool   // --quiet-pull: pull without showing progress
	// Build (--build) builds every image that has a build section first;
	// NoBuild (--no-build) builds none, even a missing one.
	Build, NoBuild bool
	// Watch (--watch) acts on develop.watch while up runs.
	Watch bool
}

// Up brings the project to its desired state. On failure it removes what
// this call created, so a failed up leaves nothing half-made. In the
// foreground it streams logs until every container has exited or ctx is
// cancelled (Ctrl-C), and then stops the stack.
func Up(ctx context.Context, e *engine.Engine, p *types.Project, r UpRequest) error {
	if err := pullForUp(ctx, e, p, r); err != nil {
		return inFile(p, err)
	}
	if err := buildForUp(ctx, e, p, r); err != nil {
		return inFile(p, err)
	}
	if err := apply(ctx, e, p, r); err != nil {
		return err
	}
	if r.Watch && !r.DryRun {
		return upWatch(ctx, e, p, r)
	}
	if r.Detach || r.DryRun {
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
		return inFile(p, err)
	}
	if err := preflight(ctx, e, plan); err != nil {
		return inFile(p, err)
	}
	if r.Explain && !r.DryRun {
		printPlan(r.Out, plan)
	}
	rep, err := r.apply(ctx, e, plan)
	if err == nil {
		return nil
	}
	if errors.As(err, new(dependencyFailed)) {
		return inFile(p, err)
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	if rerr := rollback(rctx, e, rep); rerr != nil {
		return errors.Join(inFile(p, err), fmt.Errorf("rollback: %w", rerr))
	}
	return inFile(p, err)
}

// printPlan writes the plan for --dry-run and --explain.
func printPlan(w io.Writer, plan Plan) {
	if plan.Empty() {
		fmt.Fprintln(w, "nothing to do: the project is up to date")
		return
	}
	fmt.Fprint(w, plan)
}

// rollback takes back what a failed up made, from the typed record of what
// it completed: containers it created (a replacement is kept once the
// container it replaced is gone, and the replaced one is started again if
// the up stopped it), then networks and volumes it created.
func rollback(ctx context.Context, e *engine.Engine, rep Report) error {
	var errs []error
	doneOn := func(a Action, id string) bool {
		for _, r := range rep.Results {
			if r.Done && r.Step.Action == a && r.Step.Container == id {
				return true
			}
		}
		return false
	}
	for _, c := range rep.Created() {
		old := c.Step.Replaces
		if old != "" && doneOn(ActRemove, old) {
			continue // the replacement is all that is left of the service
		}
		if err := e.RemoveContainer(ctx, c.Container, true); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			errs = append(errs, err)
		}
		if old != "" && doneOn(ActStop, old) {
			if err := e.StartContainer(ctx, old); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, r := range rep.Results {
		if !r.Done || r.Err != nil {
			continue
		}
		var err error
		switch r.Step.Action {
		case ActCreateNetwork:
			err = e.RemoveNetwork(ctx, r.Step.Name)
		case ActCreateVolume:
			err = e.RemoveVolume(ctx, r.Step.Name)
		}
		if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
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
	if serr := Stop(sctx, e, p, StopRequest{Timeout: r.Options.Timeout, ApplyOptions: r.ApplyOptions}); serr != nil {
		return serr
	}
	return ctx.Err()
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
