package compose

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/compose/progress"
	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/internal/names"
)

// ApplyOptions say how a verb carries out its plan.
type ApplyOptions struct {
	DryRun   bool // print the plan, change nothing
	Parallel int  // see Applier.Parallel
	// Progress opens the display of one plan's steps (--progress); nil
	// shows nothing. Each apply opens its own and closes it when done, so
	// a foreground up's logs never mix with it.
	Progress func() progress.Writer
	// Out receives the plan of a dry run; Err warnings.
	Out, Err io.Writer
}

// run prints the plan's warnings, then applies it, or prints it for a dry
// run.
func (o ApplyOptions) run(ctx context.Context, e *engine.Engine, plan Plan) error {
	_, err := o.apply(ctx, e, plan)
	return err
}

func (o ApplyOptions) apply(ctx context.Context, e *engine.Engine, plan Plan) (Report, error) {
	for _, w := range plan.Warnings {
		fmt.Fprintln(o.Err, "WARN", w)
	}
	if o.DryRun {
		printPlan(o.Out, plan)
		return Report{}, nil
	}
	if o.Progress != nil && !plan.Empty() {
		w := o.Progress()
		ctx = progress.WithWriter(ctx, w)
		defer w.Close()
	}
	return (&Applier{Engine: e, Parallel: o.Parallel}).Apply(ctx, plan)
}

// locked observes the project under its lock and runs fn, so two commands
// never plan from the same observation.
func locked(ctx context.Context, e *engine.Engine, project string, fn func(Observed) error) error {
	l, err := e.LockProject(ctx, project)
	if err != nil {
		return err
	}
	defer l.Unlock()
	obs, err := Observe(ctx, e, project)
	if err != nil {
		return err
	}
	return fn(obs)
}

// Down stops and removes the project's containers and networks, and its
// volumes when asked.
func Down(ctx context.Context, e *engine.Engine, p *types.Project, o DownOptions, ao ApplyOptions) error {
	return locked(ctx, e, p.Name, func(obs Observed) error {
		plan, err := PlanDown(p, obs, o)
		if err != nil {
			return err
		}
		return ao.run(ctx, e, plan)
	})
}

// StopRequest is berth stop's input.
type StopRequest struct {
	Services []string
	Timeout  *time.Duration
	ApplyOptions
}

// Start starts the existing containers of the named services (all when
// none), each after its dependencies.
func Start(ctx context.Context, e *engine.Engine, p *types.Project, services []string, ao ApplyOptions) error {
	return locked(ctx, e, p.Name, func(obs Observed) error {
		plan, err := PlanStart(p, obs, services)
		if err != nil {
			return err
		}
		return ao.run(ctx, e, plan)
	})
}

// Stop stops the running containers of the named services, dependents first.
func Stop(ctx context.Context, e *engine.Engine, p *types.Project, r StopRequest) error {
	return locked(ctx, e, p.Name, func(obs Observed) error {
		plan, err := PlanStop(p, obs, r.Services, r.Timeout)
		if err != nil {
			return err
		}
		return r.run(ctx, e, plan)
	})
}

// RemoveRequest is berth rm's input.
type RemoveRequest struct {
	Services []string
	Stop     bool // -s: stop running containers first (otherwise they stay)
	Volumes  bool // -v: remove their anonymous volumes too
	Timeout  *time.Duration
	ApplyOptions
}

// Remove removes the stopped containers of the named services.
func Remove(ctx context.Context, e *engine.Engine, p *types.Project, r RemoveRequest) error {
	return locked(ctx, e, p.Name, func(obs Observed) error {
		plan, err := PlanRemove(p, obs, r.Services, r.Stop, r.Volumes, r.Timeout)
		if err != nil {
			return err
		}
		if plan.Empty() {
			fmt.Fprintln(r.Err, "No stopped containers")
			return nil
		}
		return r.run(ctx, e, plan)
	})
}

// ProjectFromState rebuilds what the containers' labels say of a project
// whose files are not at hand (berth -p NAME down): its services, with
// their dependencies (all optional, as docker compose treats them then).
func ProjectFromState(ctx context.Context, e *engine.Engine, name string) (*types.Project, error) {
	if err := names.Project(name); err != nil {
		return nil, err
	}
	infos, err := projectContainers(ctx, e, name, withoutOneOff)
	if err != nil {
		return nil, err
	}
	p := &types.Project{Name: name, Services: types.Services{}}
	for _, i := range infos {
		l := i.Config.Labels
		svc := l[LabelService]
		if _, ok := p.Services[svc]; ok || svc == "" {
			continue
		}
		s := types.ServiceConfig{Name: svc}
		s.Image = i.Config.Image
		for _, d := range strings.Split(l[LabelDependsOn], ",") {
			parts := strings.Split(d, ":")
			if len(parts) < 2 {
				continue
			}
			if s.DependsOn == nil {
				s.DependsOn = types.DependsOnConfig{}
			}
			s.DependsOn[parts[0]] = types.ServiceDependency{Condition: parts[1], Restart: len(parts) > 2 && parts[2] == "true"}
		}
		p.Services[svc] = s
	}
	return p, nil
}

// ExecRequest is berth exec's input.
type ExecRequest struct {
	Service string
	Index   int // replica number; 0 means 1
	engine.ExecOptions
}

// Exec runs a command in a service's container and returns its exit code.
func Exec(ctx context.Context, e *engine.Engine, p *types.Project, r ExecRequest) (int, error) {
	c, err := serviceContainer(ctx, e, p, r.Service, r.Index)
	if err != nil {
		return -1, err
	}
	return e.Exec(ctx, c.ID, r.ExecOptions)
}

// serviceContainer is replica index (0: 1) of a service, which must run.
func serviceContainer(ctx context.Context, e *engine.Engine, p *types.Project, service string, index int) (engine.Info, error) {
	if _, ok := p.Services[service]; !ok {
		return engine.Info{}, fmt.Errorf("no such service: %s: %w", service, errdefs.ErrNotFound)
	}
	infos, err := projectContainers(ctx, e, p.Name, withoutOneOff, service)
	if err != nil {
		return engine.Info{}, err
	}
	idx := max(index, 1)
	i := slices.IndexFunc(infos, func(i engine.Info) bool { return observed(i).Number == idx && i.Running() })
	if i < 0 {
		return engine.Info{}, fmt.Errorf("service %q is not running: %w", service, errdefs.ErrFailedPrecondition)
	}
	return infos[i], nil
}
