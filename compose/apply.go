package compose

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/compose/progress"
	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/engine/jsonlog"
	"github.com/berth-dev/berth/engine/runtime"
)

// DefaultParallel bounds how many steps run at once when --parallel does
// not say. Stops mostly wait out their grace period, so a small bound makes
// down of a wide stack take several grace periods; starts are CPU-bound
// either way.
const DefaultParallel = 32

// Applier executes plans against an engine. It makes no decisions: what to
// do, in which order, with which timeout and which failures to bear all
// come from the plan. It reports each step to the context's progress
// display.
type Applier struct {
	Engine *engine.Engine
	// Parallel bounds the steps running at once; 0 means DefaultParallel,
	// a negative value no bound (--parallel -1).
	Parallel int
}

// Result is what one step did.
type Result struct {
	Step Step
	// Container is the ID of the container the step acted on (for a
	// ActCreate, the one it made).
	Container string
	Done      bool  // the step completed (or failed in a tolerated way)
	Err       error // why it failed, tolerated or not
}

// Report is what Apply did, one Result per step in plan order. Steps that
// never ran (their dependencies failed) are not Done.
type Report struct {
	Results []Result
}

// Created lists, newest first, the containers this apply made and that
// still exist under their final names or the temporary one of a recreate.
func (r Report) Created() []Result {
	var out []Result
	for i := len(r.Results) - 1; i >= 0; i-- {
		if res := r.Results[i]; res.Done && res.Err == nil && res.Step.Action == ActCreate {
			out = append(out, res)
		}
	}
	return out
}

// Apply runs the plan's steps, each as soon as the steps it comes after
// are done, at most Parallel at once. On the first failure it starts
// nothing more (unless the plan says KeepGoing, then only what depends on
// the failure is skipped), lets running steps finish, and returns the
// report with the errors. What was done stays done and is visible to the
// next observe.
func (a *Applier) Apply(ctx context.Context, plan Plan) (Report, error) {
	rep := Report{Results: make([]Result, len(plan.Steps))}
	for i, s := range plan.Steps {
		rep.Results[i].Step = s
	}
	limit := a.Parallel
	if limit == 0 {
		limit = DefaultParallel
	}
	// Waits are given up at the first failure; engine calls are left to
	// finish, so nothing is cut off half-way.
	waitCtx, abort := context.WithCancel(ctx)
	defer abort()
	var mu sync.Mutex // guards rep.Results while steps run
	container := func(s Step) string {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case s.Ref > 0:
			return rep.Results[s.Ref-1].Container
		case s.Container != "":
			return s.Container
		}
		return s.Name
	}
	err := walk(ctx, plan, limit, func(i int) error {
		s := plan.Steps[i]
		id, err := a.step(ctx, waitCtx, s, container(s))
		mu.Lock()
		defer mu.Unlock()
		rep.Results[i].Container, rep.Results[i].Err = id, err
		if err != nil && !tolerated(s, err) {
			if !plan.KeepGoing {
				abort()
			}
			return err
		}
		rep.Results[i].Done = true
		return nil
	})
	return rep, err
}

// walk calls do for every step of the plan, each once the steps it comes
// after have succeeded, at most limit at once (no bound when negative), in
// plan order among those ready. After a failure it starts nothing more,
// unless the plan says KeepGoing: then only the steps depending on the
// failure are skipped. It returns when nothing runs any more.
func walk(ctx context.Context, plan Plan, limit int, do func(i int) error) error {
	n := len(plan.Steps)
	if limit < 0 {
		limit = n
	}
	pending := make([]int, n)
	dependents := make([][]int, n)
	var ready []int
	for i, s := range plan.Steps {
		pending[i] = len(s.After)
		for _, d := range s.After {
			dependents[d-1] = append(dependents[d-1], i)
		}
		if pending[i] == 0 {
			ready = append(ready, i)
		}
	}
	type outcome struct {
		i   int
		err error
	}
	done := make(chan outcome, n)
	running := 0
	var errs []error
	for {
		for len(ready) > 0 && running < limit && (len(errs) == 0 || plan.KeepGoing) && ctx.Err() == nil {
			i := ready[0]
			ready = ready[1:]
			running++
			go func() { done <- outcome{i, do(i)} }()
		}
		if running == 0 {
			break
		}
		o := <-done
		running--
		if o.err != nil {
			errs = append(errs, o.err)
			continue
		}
		for _, d := range dependents[o.i] {
			if pending[d]--; pending[d] == 0 {
				// Keep the ready list in plan order, so runs are repeatable.
				at, _ := slices.BinarySearch(ready, d)
				ready = slices.Insert(ready, at, d)
			}
		}
	}
	if len(errs) == 0 && ctx.Err() != nil {
		errs = append(errs, ctx.Err())
	}
	return errors.Join(errs...)
}

// tolerated reports whether a failed step lets the plan go on: its class
// is the one the plan tolerates, or it waited for an optional dependency.
func tolerated(s Step, err error) bool {
	return (s.Tolerate != nil && errors.Is(err, s.Tolerate)) || (s.Action == ActAwait && !s.Required && !errors.Is(err, context.Canceled))
}

// report shows a step's object in a new state ("Container web-1 Started").
func report(ctx context.Context, s Step, state progress.State, text, detail string) {
	if s.Quiet || text == "" {
		return
	}
	progress.FromContext(ctx).Event(progress.Event{ID: s.Object() + " " + s.Name, State: state, Text: text, Detail: detail})
}

// doing and done are the words docker compose shows while a step runs and
// once it is done.
var doing = map[Action][2]string{
	ActCreateNetwork: {"Creating", "Created"}, ActRemoveNetwork: {"Removing", "Removed"},
	ActCreateVolume: {"Creating", "Created"}, ActRemoveVolume: {"Removing", "Removed"},
	ActCreate: {"Creating", "Created"}, ActStart: {"Starting", "Started"}, ActStop: {"Stopping", "Stopped"},
	ActKill: {"Killing", "Killed"}, ActRemove: {"Removing", "Removed"}, ActRename: {"Recreate", "Recreated"},
	ActPause: {"Pausing", "Paused"}, ActUnpause: {"Unpausing", "Unpaused"},
	ActAwait: {"Waiting", ""},
}

// step performs one step on the container id (for container steps) and
// returns the container it acted on.
func (a *Applier) step(ctx, waitCtx context.Context, s Step, id string) (string, error) {
	words := doing[s.Action]
	report(ctx, s, progress.Working, words[0], "")
	id, err := a.do(ctx, waitCtx, s, id)
	switch {
	case err == nil:
		report(ctx, s, progress.Done, words[1], "")
	case tolerated(s, err):
		report(ctx, s, progress.Warning, s.TolerateStatus, Message(err))
	case errors.Is(err, context.Canceled):
	default:
		report(ctx, s, progress.Error, "Error", Message(err))
		if s.Service != "" {
			err = fmt.Errorf("service %q: %w", s.Service, err)
		}
	}
	return id, err
}

func (a *Applier) do(ctx, waitCtx context.Context, s Step, id string) (string, error) {
	e := a.Engine
	var err error
	switch s.Action {
	case ActCreateNetwork:
		_, err = e.CreateNetwork(ctx, s.Network)
		if errors.Is(err, errdefs.ErrAlreadyExists) {
			err = nil
		}
	case ActRemoveNetwork:
		err = ignore(e.RemoveNetwork(ctx, s.Name), errdefs.ErrNotFound)
	case ActCreateVolume:
		_, err = e.Volumes.CreateWithOptions(ctx, s.Name, s.Labels, s.Options)
		err = ignore(err, errdefs.ErrAlreadyExists)
	case ActRemoveVolume:
		err = ignore(e.RemoveVolume(ctx, s.Name), errdefs.ErrNotFound)
	case ActCreate:
		c, cerr := e.CreateContainer(ctx, s.Name, s.Config)
		return c.ID, cerr
	case ActStart:
		err = e.StartContainer(ctx, id)
	case ActStop:
		err = ignore(e.StopContainer(ctx, id, s.Timeout), errdefs.ErrNotFound)
	case ActKill:
		err = killContainer(ctx, e, id, s.Signal)
	case ActPause:
		err = e.PauseContainer(ctx, id)
	case ActUnpause:
		err = e.UnpauseContainer(ctx, id)
	case ActRemove:
		err = ignore(a.remove(ctx, id, s.RemoveVolumes), errdefs.ErrNotFound)
	case ActRename:
		err = e.RenameContainer(ctx, id, s.Name)
	case ActAwait:
		err = a.await(waitCtx, s, id)
	default:
		err = fmt.Errorf("unknown step %q: %w", s.Action, errdefs.ErrNotImplemented)
	}
	return id, err
}

// remove removes a container, and then its anonymous volumes when asked;
// one still mounted elsewhere (volumes_from) stays.
func (a *Applier) remove(ctx context.Context, id string, vols bool) error {
	var anon []string
	if vols {
		info, err := a.Engine.Inspect(ctx, id)
		if err != nil {
			return err
		}
		for _, m := range info.Config.Mounts {
			if m.Anonymous {
				anon = append(anon, m.Source)
			}
		}
	}
	if err := a.Engine.RemoveContainer(ctx, id, true); err != nil {
		return err
	}
	for _, v := range anon {
		err := a.Engine.RemoveVolume(ctx, v)
		if err != nil && !errors.Is(err, errdefs.ErrNotFound) && !errors.Is(err, errdefs.ErrFailedPrecondition) {
			return err
		}
	}
	return nil
}

// ignore drops an error of the given class: removing what is gone, creating
// what exists.
func ignore(err, class error) error {
	if errors.Is(err, class) {
		return nil
	}
	return err
}

// errorClasses are the error classes whose names end wrapped messages.
var errorClasses = []error{
	errdefs.ErrInvalidArgument, errdefs.ErrNotFound, errdefs.ErrAlreadyExists,
	errdefs.ErrFailedPrecondition, errdefs.ErrConflict, errdefs.ErrUnavailable,
	errdefs.ErrNotImplemented, errdefs.ErrUnknown, errdefs.ErrPermissionDenied,
	errdefs.ErrDataLoss,
}

// Message is an error's sentence without its class suffix: the user needs
// the sentence, not the class.
func Message(err error) string {
	msg := err.Error()
	for _, c := range errorClasses {
		if errors.Is(err, c) {
			msg = strings.TrimSuffix(msg, ": "+c.Error())
		}
	}
	return msg
}

// dependencyFailed marks an up that built the stack but whose dependency
// then failed (a job exited non-zero): what it made stays, so its logs can
// be read.
type dependencyFailed struct{ error }

func (d dependencyFailed) Unwrap() error { return d.error }

// await waits for a dependency's container to meet the step's condition:
// started (running, or already exited), completed successfully (exited
// with code 0) or healthy. The waits are events from the container's shim.
func (a *Applier) await(ctx context.Context, s Step, id string) error {
	if s.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.Timeout)
		defer cancel()
	}
	var (
		st  runtime.Status
		err error
	)
	switch s.Condition.Condition {
	case ConditionCompleted:
		if st, err = a.Engine.WaitContainer(ctx, id, engine.WaitExited); err == nil {
			if st.ExitCode != 0 {
				return dependencyFailed{fmt.Errorf("%s did not complete successfully: exit %d%s: %w",
					s.Name, st.ExitCode, a.lastLines(ctx, id), errdefs.ErrFailedPrecondition)}
			}
			report(ctx, s, progress.Done, "Exited", "")
			return nil
		}
	case ConditionHealthy:
		if _, err = a.Engine.WaitContainer(ctx, id, engine.WaitHealthy); err == nil {
			report(ctx, s, progress.Done, "Healthy", "")
			return nil
		}
		if errdefs.IsFailedPrecondition(err) {
			return dependencyFailed{fmt.Errorf("dependency failed to start: %w", err)}
		}
	default:
		st, err = a.Engine.WaitContainer(ctx, id, engine.WaitRunning)
		if err == nil || (errdefs.IsFailedPrecondition(err) && st.State == runtime.StateExited) {
			report(ctx, s, progress.Done, "Started", "")
			return nil
		}
	}
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
		return fmt.Errorf("%s: gave up waiting after %s: %w", s.Name, s.Timeout, errdefs.ErrUnavailable)
	}
	return err
}

// lastLines is the end of a container's log, for errors about a
// dependency that failed: "; last lines: a | b".
func (a *Applier) lastLines(ctx context.Context, id string) string {
	var lines []string
	_ = a.Engine.Logs(context.WithoutCancel(ctx), id, engine.LogOptions{Tail: 5}, func(e jsonlog.Entry) error {
		lines = append(lines, strings.TrimRight(e.Log, "\n"))
		return nil
	})
	if len(lines) == 0 {
		return ""
	}
	return "; last log lines: " + strings.Join(lines, " | ")
}

// killTimeout bounds how long a kill with SIGKILL waits for the container
// to be gone, as dockerd does.
const killTimeout = 10 * time.Second

// killContainer sends the signal; with SIGKILL it returns once the
// container has exited, as docker kill does, so a command after kill sees
// it stopped. Other signals (a reload) are only sent.
func killContainer(ctx context.Context, e *engine.Engine, id, signal string) error {
	if err := e.KillContainer(ctx, id, signal); err != nil {
		return err
	}
	if sig, err := runtime.ParseSignal(signal, unix.SIGKILL); err != nil || sig != unix.SIGKILL {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, killTimeout)
	defer cancel()
	if _, err := e.WaitContainer(wctx, id, engine.WaitExited); err != nil {
		return fmt.Errorf("container %s did not exit after SIGKILL: %w", id[:min(12, len(id))], err)
	}
	return nil
}
