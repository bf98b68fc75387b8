package compose

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"
	units "github.com/docker/go-units"
	"golang.org/x/sync/errgroup"

	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/engine/runtime"
)

// The verbs that act on the running containers of a project through their
// shims: kill, pause, unpause, restart, attach, top, stats, wait.

// KillRequest is berth kill's input.
type KillRequest struct {
	Services      []string
	Signal        string // default SIGKILL
	RemoveOrphans bool
	ApplyOptions
}

// Kill sends a signal to the running containers of the services.
func Kill(ctx context.Context, e *engine.Engine, p *types.Project, r KillRequest) error {
	if r.Signal == "" {
		r.Signal = "SIGKILL"
	}
	if _, err := runtime.ParseSignal(r.Signal, 0); err != nil {
		return err
	}
	return locked(ctx, e, p.Name, func(obs Observed) error {
		plan, err := PlanKill(p, obs, r.Services, r.Signal, r.RemoveOrphans)
		if err != nil {
			return err
		}
		return r.run(ctx, e, plan)
	})
}

// PlanKill signals every running container of the services, dependents
// first; with removeOrphans, containers of services the file no longer has
// are killed and removed.
func PlanKill(p *types.Project, obs Observed, services []string, signal string, removeOrphans bool) (Plan, error) {
	plan, err := planReverse(p, obs, services, func(plan *Plan, c ObservedContainer, after []int) int {
		if !c.Running {
			return 0
		}
		return plan.add(Step{Action: ActKill, Service: c.Service, Name: c.Name, Container: c.ID, Number: c.Number,
			Reason: "kill", Signal: signal, After: after})
	})
	if err != nil || !removeOrphans {
		return plan, err
	}
	orphans := slices.DeleteFunc(slices.Clone(obs.Containers), func(c ObservedContainer) bool { return !isOrphan(p, c.Service) })
	sortContainers(orphans)
	for _, c := range orphans {
		why := "orphan: service " + c.Service + " is not in the project"
		var after []int
		if c.Running {
			after = append(after, plan.add(Step{Action: ActKill, Service: c.Service, Name: c.Name, Container: c.ID, Reason: why, Signal: "SIGKILL"}))
		}
		plan.add(Step{Action: ActRemove, Service: c.Service, Name: c.Name, Container: c.ID, Reason: why, After: after})
	}
	return plan, nil
}

// Pause freezes the running containers of the services.
func Pause(ctx context.Context, e *engine.Engine, p *types.Project, services []string, ao ApplyOptions) error {
	return locked(ctx, e, p.Name, func(obs Observed) error {
		plan, err := PlanPause(p, obs, services, false)
		if err != nil {
			return err
		}
		return ao.run(ctx, e, plan)
	})
}

// Unpause thaws the paused containers of the services.
func Unpause(ctx context.Context, e *engine.Engine, p *types.Project, services []string, ao ApplyOptions) error {
	return locked(ctx, e, p.Name, func(obs Observed) error {
		plan, err := PlanPause(p, obs, services, true)
		if err != nil {
			return err
		}
		return ao.run(ctx, e, plan)
	})
}

// PlanPause pauses the running containers of the services (or, with
// unpause, unpauses the paused ones); the others are left alone.
func PlanPause(p *types.Project, obs Observed, services []string, unpause bool) (Plan, error) {
	want, act := string(runtime.StateRunning), ActPause
	if unpause {
		want, act = string(runtime.StatePaused), ActUnpause
	}
	return planReverse(p, obs, services, func(plan *Plan, c ObservedContainer, _ []int) int {
		if c.State != want {
			return 0
		}
		return plan.add(Step{Action: act, Service: c.Service, Name: c.Name, Container: c.ID, Number: c.Number, Reason: string(act)})
	})
}

// RestartRequest is berth restart's input.
type RestartRequest struct {
	Services []string
	Timeout  *time.Duration
	NoDeps   bool // leave the services that depend on them alone
	ApplyOptions
}

// Restart stops and starts the containers of the services, and of the
// services that depend on them unless NoDeps: dependents stop first and
// start last. Containers are never recreated.
func Restart(ctx context.Context, e *engine.Engine, p *types.Project, r RestartRequest) error {
	g, err := NewGraph(p)
	if err != nil {
		return err
	}
	var sel map[string]bool
	if r.NoDeps {
		sel, err = g.Select(r.Services, false)
	} else {
		sel, err = g.SelectDependents(r.Services)
	}
	if err != nil {
		return err
	}
	services := slices.Sorted(maps.Keys(sel))
	if err := Stop(ctx, e, p, StopRequest{Services: services, Timeout: r.Timeout, ApplyOptions: r.ApplyOptions}); err != nil {
		return err
	}
	return Start(ctx, e, p, services, r.ApplyOptions)
}

// AttachRequest is berth attach's input.
type AttachRequest struct {
	Service string
	Index   int // replica number; 0 means 1
	// Session sets up the client's side once the container is known:
	// whether it has a terminal and keeps its input open.
	Session func(tty, openStdin bool) (AttachSession, error)
}

// AttachSession is the client's side of an attach.
type AttachSession struct {
	engine.AttachOptions
	// Signals received by the client go to the container's process
	// (--sig-proxy); the attach then ends only when the process does.
	Signals <-chan os.Signal
	Close   func() // undoes the session's setup
}

// Attach connects to the main process of a service's container and
// returns its exit code once it exits.
func Attach(ctx context.Context, e *engine.Engine, p *types.Project, r AttachRequest) (int, error) {
	c, err := serviceContainer(ctx, e, p, r.Service, r.Index)
	if err != nil {
		return -1, err
	}
	s, err := r.Session(c.Config.Run.TTY, c.Config.Run.OpenStdin)
	if err != nil {
		return -1, err
	}
	defer s.Close()
	if s.Signals != nil {
		ctx = context.WithoutCancel(ctx)
		sctx, stop := context.WithCancel(ctx)
		defer stop()
		go func() {
			for {
				select {
				case sig := <-s.Signals:
					if n, ok := sig.(syscall.Signal); ok {
						_ = e.KillContainer(sctx, c.ID, strconv.Itoa(int(n)))
					}
				case <-sctx.Done():
					return
				}
			}
		}()
	}
	return e.Attach(ctx, c.ID, s.AttachOptions)
}

// ContainerTop is one container's processes.
type ContainerTop struct {
	Name      string
	Processes []engine.Process
}

// Top lists the processes of the running containers of the services.
func Top(ctx context.Context, e *engine.Engine, p *types.Project, services []string) ([]ContainerTop, error) {
	infos, err := projectContainers(ctx, e, p.Name, withoutOneOff, services...)
	if err != nil {
		return nil, err
	}
	var out []ContainerTop
	for _, i := range infos {
		if !i.Running() || i.Status.State == runtime.StateRestarting {
			continue
		}
		procs, err := e.Top(ctx, i.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, ContainerTop{Name: i.Name, Processes: procs})
	}
	return out, nil
}

// StatsRow is one line of berth stats, with docker stats' JSON names.
type StatsRow struct {
	Container string
	ID        string
	Name      string
	CPUPerc   string
	MemUsage  string
	MemPerc   string
	NetIO     string
	BlockIO   string
	PIDs      string
}

// StatsOptions select what berth stats shows.
type StatsOptions struct {
	Services []string
	All      bool // stopped containers too, with zeros
	NoStream bool // one table, then return
}

// statsInterval is how far apart the two samples behind a CPU % are, and
// how often a streaming stats refreshes: Docker's second.
const statsInterval = time.Second

// Stats samples the project's containers every statsInterval and hands
// each table to emit, once with NoStream, until ctx ends otherwise.
func Stats(ctx context.Context, e *engine.Engine, p *types.Project, o StatsOptions, emit func([]StatsRow) error) error {
	prev := map[string]runtime.Stats{}
	tick := time.NewTicker(statsInterval)
	defer tick.Stop()
	for first := true; ; first = false {
		infos, err := projectContainers(ctx, e, p.Name, withoutOneOff, o.Services...)
		if err != nil {
			return err
		}
		rows, cur := sampleStats(ctx, e, infos, o.All, prev)
		prev = cur
		if !first {
			if err := emit(rows); err != nil || o.NoStream {
				return err
			}
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.Canceled) {
				return nil
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// sampleStats takes one sample of each container, in parallel, and
// renders it against the previous one.
func sampleStats(ctx context.Context, e *engine.Engine, infos []engine.Info, all bool, prev map[string]runtime.Stats) ([]StatsRow, map[string]runtime.Stats) {
	var (
		mu   sync.Mutex
		rows = make([]*StatsRow, len(infos))
		cur  = map[string]runtime.Stats{}
		g    errgroup.Group
	)
	for n, i := range infos {
		g.Go(func() error {
			row := StatsRow{Container: i.Name, ID: i.ID, Name: i.Name, CPUPerc: "0.00%", MemUsage: "0B / 0B",
				MemPerc: "0.00%", NetIO: "0B / 0B", BlockIO: "0B / 0B", PIDs: "0"}
			if i.Running() {
				st, err := e.ContainerStats(ctx, i.ID)
				if err == nil {
					mu.Lock()
					cur[i.ID] = st
					mu.Unlock()
					row.CPUPerc = fmt.Sprintf("%.2f%%", runtime.CPUPercent(prev[i.ID], st))
					row.MemUsage = units.BytesSize(float64(st.MemUsage)) + " / " + units.BytesSize(float64(st.MemLimit))
					row.MemPerc = fmt.Sprintf("%.2f%%", st.MemPercent())
					row.NetIO = pair(st.NetRx, st.NetTx)
					row.BlockIO = pair(st.BlockRead, st.BlockWrite)
					row.PIDs = fmt.Sprint(st.Pids)
				}
			} else if !all {
				return nil
			}
			rows[n] = &row
			return nil
		})
	}
	_ = g.Wait()
	var out []StatsRow
	for _, r := range rows {
		if r != nil {
			out = append(out, *r)
		}
	}
	return out, cur
}

func pair(a, b uint64) string {
	return units.HumanSizeWithPrecision(float64(a), 3) + " / " + units.HumanSizeWithPrecision(float64(b), 3)
}

// WaitRequest is berth wait's input.
type WaitRequest struct {
	Services    []string
	DownProject bool // down the project when the first container exits
	ApplyOptions
}

// Wait blocks until the containers of the services have exited and
// returns the exit code of the first to exit; with DownProject, the
// project goes down as soon as one exits.
func Wait(ctx context.Context, e *engine.Engine, p *types.Project, r WaitRequest) (int, error) {
	for _, s := range r.Services {
		if _, ok := p.Services[s]; !ok {
			return -1, fmt.Errorf("no such service: %s: %w", s, errdefs.ErrNotFound)
		}
	}
	infos, err := projectContainers(ctx, e, p.Name, withoutOneOff, r.Services...)
	if err != nil {
		return -1, err
	}
	if len(infos) == 0 {
		return -1, fmt.Errorf("no containers to wait for: %w", errdefs.ErrNotFound)
	}
	first := make(chan int, len(infos))
	g, gctx := errgroup.WithContext(ctx)
	for _, i := range infos {
		g.Go(func() error {
			st, err := e.WaitContainer(gctx, i.ID, engine.WaitExited)
			if err != nil {
				return err
			}
			first <- st.ExitCode
			return nil
		})
	}
	code := -1
	if r.DownProject {
		select {
		case code = <-first:
		case <-gctx.Done():
			return -1, g.Wait()
		}
		if err := Down(ctx, e, p, DownOptions{}, r.ApplyOptions); err != nil {
			return code, err
		}
	}
	if err := g.Wait(); err != nil {
		return -1, err
	}
	if code < 0 {
		code = <-first
	}
	return code, nil
}
