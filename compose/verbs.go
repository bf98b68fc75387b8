package compose

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/engine"
)

// Down stops and removes the project's containers and networks, and its
// volumes when asked.
func Down(ctx context.Context, e *engine.Engine, p *types.Project, o DownOptions, timeout *time.Duration, progress io.Writer) error {
	l, err := e.LockProject(ctx, p.Name)
	if err != nil {
		return err
	}
	defer l.Unlock()
	obs, err := Observe(ctx, e, p.Name)
	if err != nil {
		return err
	}
	plan, err := PlanDown(p, obs, o)
	if err != nil {
		return err
	}
	a := &Applier{Engine: e, Progress: PlainProgress(progress), StopTimeout: timeout}
	return a.Apply(ctx, plan)
}

// selectContainers returns the project's containers of the named services
// (all when none are named), grouped by dependency level in start order.
func selectContainers(ctx context.Context, e *engine.Engine, p *types.Project, services []string) ([][]ObservedContainer, error) {
	for _, s := range services {
		if _, ok := p.Services[s]; !ok {
			return nil, fmt.Errorf("no such service: %s: %w", s, errdefs.ErrNotFound)
		}
	}
	obs, err := Observe(ctx, e, p.Name)
	if err != nil {
		return nil, err
	}
	g, err := NewGraph(p)
	if err != nil {
		return nil, err
	}
	var out [][]ObservedContainer
	for _, lvl := range g.Levels() {
		var level []ObservedContainer
		for _, svc := range lvl {
			if len(services) > 0 && !slices.Contains(services, svc) {
				continue
			}
			for _, c := range obs.Containers {
				if c.Service == svc {
					level = append(level, c)
				}
			}
		}
		if len(level) > 0 {
			out = append(out, level)
		}
	}
	return out, nil
}

// levelPlan makes one plan level per container level, with the steps steps
// returns for each container (none: the container is left alone). Services
// of a level run in parallel, as in up and down.
func levelPlan(levels [][]ObservedContainer, steps func(ObservedContainer) []Step) Plan {
	var plan Plan
	for _, lvl := range levels {
		var pl []ServiceSteps
		for _, c := range lvl {
			if st := steps(c); len(st) > 0 {
				pl = append(pl, ServiceSteps{Service: c.Service, Steps: st})
			}
		}
		if len(pl) > 0 {
			plan.Levels = append(plan.Levels, pl)
		}
	}
	return plan
}

// Start starts the existing containers of the named services.
func Start(ctx context.Context, e *engine.Engine, p *types.Project, services []string, progress io.Writer) error {
	levels, err := selectContainers(ctx, e, p, services)
	if err != nil {
		return err
	}
	plan := levelPlan(levels, func(c ObservedContainer) []Step {
		if c.Running {
			return nil
		}
		return []Step{{Kind: StepStart, Service: c.Service, Name: c.Name, ID: c.ID}}
	})
	return (&Applier{Engine: e, Progress: PlainProgress(progress)}).Apply(ctx, plan)
}

// Stop stops the running containers of the named services, dependents first.
func Stop(ctx context.Context, e *engine.Engine, p *types.Project, services []string, timeout *time.Duration, progress io.Writer) error {
	levels, err := selectContainers(ctx, e, p, services)
	if err != nil {
		return err
	}
	slices.Reverse(levels)
	plan := levelPlan(levels, func(c ObservedContainer) []Step {
		if !c.Running {
			return nil
		}
		return []Step{{Kind: StepStop, Service: c.Service, Name: c.Name, ID: c.ID}}
	})
	return (&Applier{Engine: e, Progress: PlainProgress(progress), StopTimeout: timeout}).Apply(ctx, plan)
}

// Remove removes stopped containers of the named services; stop first
// stops running ones, otherwise they are skipped.
func Remove(ctx context.Context, e *engine.Engine, p *types.Project, services []string, stop bool, timeout *time.Duration, progress io.Writer) error {
	levels, err := selectContainers(ctx, e, p, services)
	if err != nil {
		return err
	}
	slices.Reverse(levels)
	plan := levelPlan(levels, func(c ObservedContainer) []Step {
		if c.Running && !stop {
			return nil
		}
		return removeSteps(c)
	})
	if plan.Empty() {
		fmt.Fprintln(progress, "No stopped containers")
		return nil
	}
	return (&Applier{Engine: e, Progress: PlainProgress(progress), StopTimeout: timeout}).Apply(ctx, plan)
}

// ExecRequest is berth exec's input.
type ExecRequest struct {
	Service string
	Index   int // replica number; 0 means 1
	engine.ExecOptions
}

// Exec runs a command in a service's container and returns its exit code.
func Exec(ctx context.Context, e *engine.Engine, p *types.Project, r ExecRequest) (int, error) {
	levels, err := selectContainers(ctx, e, p, []string{r.Service})
	if err != nil {
		return -1, err
	}
	idx := max(r.Index, 1)
	for _, lvl := range levels {
		for _, c := range lvl {
			if c.Number == idx && c.Running {
				return e.Exec(ctx, c.ID, r.ExecOptions)
			}
		}
	}
	return -1, fmt.Errorf("service %q is not running: %w", r.Service, errdefs.ErrFailedPrecondition)
}
