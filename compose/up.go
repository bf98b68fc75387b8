package compose

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"
	"golang.org/x/sync/errgroup"

	"github.com/berth-dev/berth/compose/progress"
	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/engine/runtime"
)

// UpRequest is everything berth up needs besides the project.
type UpRequest struct {
	// Wait waits for the services to run, or be healthy (--wait, implies
	// detach), at most WaitTimeout (0: no bound).
	Wait        bool
	WaitTimeout time.Duration
	// Foreground: stop the stack when a container exits (AbortOnExit), or
	// exits non-zero (AbortOnFailure); ExitCodeFrom implies AbortOnExit
	// and makes that service's exit code berth's.
	AbortOnExit, AbortOnFailure bool
	ExitCodeFrom                string
	// Attach and NoAttach choose the services whose logs are shown;
	// AttachDependencies adds those the named services depend on.
	Attach, NoAttach   []string
	AttachDependencies bool
	Options            UpOptions
	Detach             bool
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
	// IfUpToDate makes Up change nothing and return ErrNotUpToDate unless
	// it has nothing to do (a detached up with no image to pull or build
	// and an empty plan): the lean helper serves a no-op up -d so, and
	// hands anything else to berth (cmd/internal/fastpath).
	IfUpToDate bool
}

// ErrNotUpToDate is Up's answer to IfUpToDate when it has work to do.
var ErrNotUpToDate = errors.New("up has work to do")

// Up brings the project to its desired state. On failure it removes what
// this call created, so a failed up leaves nothing half-made. In the
// foreground it streams logs until every container has exited or ctx is
// cancelled (Ctrl-C), and then stops the stack.
func Up(ctx context.Context, e *engine.Engine, p *types.Project, r UpRequest) error {
	if !r.Detach && !r.Wait && !r.Options.NoStart {
		// A bad --attach or --exit-code-from fails before anything changes.
		if _, err := attachedServices(p, r); err != nil {
			return inFile(p, err)
		}
	}
	if r.IfUpToDate && !nothingToFetch(ctx, e, p, r) {
		return ErrNotUpToDate
	}
	if err := pullForUp(ctx, e, p, r); err != nil {
		return inFile(p, err)
	}
	if err := buildForUp(ctx, e, p, r); err != nil {
		return inFile(p, err)
	}
	if err := apply(ctx, e, p, r); err != nil {
		return err
	}
	switch {
	case r.DryRun, r.Options.NoStart:
		// --no-start: created is all Compose does, attached or not.
		return nil
	case r.Watch:
		return upWatch(ctx, e, p, r)
	case r.Wait:
		return waitUp(ctx, e, p, r)
	case r.Detach:
		return nil
	}
	return attach(ctx, e, p, r)
}

// nothingToFetch says whether a detached up (r.IfUpToDate's only kind)
// has no image to pull or build.
func nothingToFetch(ctx context.Context, e *engine.Engine, p *types.Project, r UpRequest) bool {
	if !r.Detach || r.Wait || r.Watch || r.DryRun || r.Explain || r.Options.NoStart {
		return false
	}
	pulls, err := pullsNeeded(ctx, e, p, r.Pull)
	if err != nil || len(pulls) > 0 {
		return false
	}
	builds, err := buildsNeeded(ctx, e, p, r)
	return err == nil && len(builds) == 0
}

// ExitStatus is the exit code up passes on from a container
// (--exit-code-from, --abort-on-container-exit); as an error it carries
// no message of its own.
type ExitStatus int

func (e ExitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

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
	if r.IfUpToDate && (err != nil || !plan.Empty()) {
		return ErrNotUpToDate
	}
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

// attach follows the logs of the containers up attaches to until all have
// exited, or ctx is cancelled (Ctrl-C), or one exits and the request says
// to abort then: then it stops the stack the way docker compose does.
func attach(ctx context.Context, e *engine.Engine, p *types.Project, r UpRequest) error {
	services, err := attachedServices(p, r)
	if err != nil {
		return err
	}
	join := joiner(p.Name, services, 0)
	if len(services) == 0 {
		join = func(engine.Info) (logTarget, bool) { return logTarget{}, false }
	}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu      sync.Mutex
		aborted bool
		code    int
	)
	abortOnExit := r.AbortOnExit || r.ExitCodeFrom != ""
	o := r.Logs
	o.Follow, o.Tail = true, -1
	err = followTargets(lctx, e, join, r.Out, o, func(t logTarget) {
		info, ierr := e.Inspect(context.WithoutCancel(ctx), t.ID)
		if ierr != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		exit := info.Status.ExitCode
		fmt.Fprintf(r.Out, "%s exited with code %d\n", t.Prefix, exit)
		if aborted || ctx.Err() != nil || !(abortOnExit || (r.AbortOnFailure && exit != 0)) {
			return
		}
		aborted, code = true, exit
		cancel()
	})
	switch {
	case ctx.Err() != nil:
		fmt.Fprintln(r.Err, "Gracefully stopping... (press Ctrl+C again to force)")
	case aborted:
		fmt.Fprintln(r.Err, "Aborting on container exit...")
	default:
		if err != nil {
			return err
		}
		// Every attached container ended by itself.
		return exitCodeFrom(ctx, e, p, r.ExitCodeFrom, 0)
	}
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
	defer scancel()
	if serr := Stop(sctx, e, p, StopRequest{Timeout: r.Options.Timeout, ApplyOptions: r.ApplyOptions}); serr != nil {
		return serr
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return exitCodeFrom(sctx, e, p, r.ExitCodeFrom, code)
}

// exitCodeFrom is up's outcome: the exit code of the named service's
// container (--exit-code-from), or code.
func exitCodeFrom(ctx context.Context, e *engine.Engine, p *types.Project, service string, code int) error {
	if service != "" {
		infos, err := projectContainers(ctx, e, p.Name, withoutOneOff, service)
		if err != nil {
			return err
		}
		if len(infos) > 0 {
			code = infos[0].Status.ExitCode
		}
	}
	if code != 0 {
		return ExitStatus(code)
	}
	return nil
}

// attachedServices are the services whose logs a foreground up shows:
// --attach's, or those named on the command line (with their
// dependencies when --attach-dependencies), or all; less --no-attach's
// and those with attach: false.
func attachedServices(p *types.Project, r UpRequest) ([]string, error) {
	g, err := NewGraph(p)
	if err != nil {
		return nil, err
	}
	for _, s := range append(append(slices.Clone(r.Attach), r.NoAttach...), r.ExitCodeFrom) {
		if _, ok := p.Services[s]; !ok && s != "" {
			return nil, fmt.Errorf("no such service: %s: %w", s, errdefs.ErrNotFound)
		}
	}
	var want map[string]bool
	switch {
	case len(r.Attach) > 0:
		want, err = g.Select(r.Attach, false)
	default:
		want, err = g.Select(r.Options.Services, r.AttachDependencies || len(r.Options.Services) == 0)
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, name := range slices.Sorted(mapKeys(want)) {
		s := p.Services[name]
		if slices.Contains(r.NoAttach, name) || (s.Attach != nil && !*s.Attach && !slices.Contains(r.Attach, name)) {
			continue
		}
		out = append(out, name)
	}
	return out, nil
}

// waitUp waits, after a detached up, for every container of the services
// up brought up to run (or be healthy, when it has a healthcheck); a
// container that exits fails it, unless it completed successfully and a
// service depends on that.
func waitUp(ctx context.Context, e *engine.Engine, p *types.Project, r UpRequest) error {
	g, err := NewGraph(p)
	if err != nil {
		return err
	}
	targets, err := g.Select(r.Options.Services, !r.Options.NoDeps)
	if err != nil {
		return err
	}
	if r.WaitTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.WaitTimeout)
		defer cancel()
	}
	infos, err := projectContainers(ctx, e, p.Name, withoutOneOff, slices.Sorted(mapKeys(targets))...)
	if err != nil {
		return err
	}
	jobs := map[string]bool{} // services a dependent waits to complete
	for _, s := range p.Services {
		for dep, d := range s.DependsOn {
			if d.Condition == ConditionCompleted {
				jobs[dep] = true
			}
		}
	}
	w := progress.Discard
	if r.Progress != nil {
		w = r.Progress()
		defer w.Close()
	}
	var eg errgroup.Group
	for _, i := range infos {
		eg.Go(func() error {
			cond, done := engine.WaitRunning, "Running"
			if i.Status.Health != nil {
				cond, done = engine.WaitHealthy, "Healthy"
			}
			ev := progress.Event{ID: "Container " + i.Name, State: progress.Working, Text: "Waiting"}
			w.Event(ev)
			_, werr := e.WaitContainer(ctx, i.ID, cond)
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				werr = fmt.Errorf("container %s: not %s after --wait-timeout %s: %w", i.Name, strings.ToLower(done), r.WaitTimeout, errdefs.ErrUnavailable)
			} else if info, ierr := e.Inspect(context.WithoutCancel(ctx), i.ID); ierr == nil && info.Status.State == runtime.StateExited {
				// It ran, but does not any more.
				if info.Status.ExitCode == 0 && jobs[i.Config.Labels[LabelService]] {
					werr, done = nil, "Exited"
				} else {
					werr = fmt.Errorf("container %s exited (%d): %w", i.Name, info.Status.ExitCode, errdefs.ErrFailedPrecondition)
				}
			}
			ev.State, ev.Text = progress.Done, done
			if werr != nil {
				ev.State, ev.Text, ev.Detail = progress.Error, "Error", Message(werr)
			}
			w.Event(ev)
			return werr
		})
	}
	return eg.Wait()
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
