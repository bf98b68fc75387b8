package compose

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"
)

// stillInUse is the status docker compose shows for a network or volume
// that down leaves because something outside the plan still uses it.
const stillInUse = "Resource is still in use"

// DownOptions shape a down plan.
type DownOptions struct {
	// Services limits down to these services' containers (and what depends
	// on them); networks and volumes then stay.
	Services      []string
	RemoveOrphans bool
	// Volumes removes the project's named volumes, and with them the
	// orphans that could still hold them (as Compose v5 does); a volume that
	// a container outside the project mounts is kept, with a warning.
	Volumes bool
	Timeout *time.Duration // overrides each container's stop grace period
}

// PlanDown stops and removes the project's containers, dependents before
// their dependencies, then its networks, and its volumes when asked.
func PlanDown(p *types.Project, obs Observed, o DownOptions) (Plan, error) {
	g, err := NewGraph(p)
	if err != nil {
		return Plan{}, err
	}
	targets, err := g.SelectDependents(o.Services)
	if err != nil {
		return Plan{}, err
	}
	plan := Plan{KeepGoing: true}
	byService := map[string][]ObservedContainer{}
	for _, c := range obs.Containers {
		byService[c.Service] = append(byService[c.Service], c)
	}
	var removed []int
	gone := map[string]bool{}
	removeOrphans := (o.RemoveOrphans || o.Volumes) && len(o.Services) == 0
	var orphans []ObservedContainer
	for _, c := range obs.Containers {
		if isOrphan(p, c.Service) {
			orphans = append(orphans, c)
		}
	}
	sortContainers(orphans)
	if removeOrphans {
		// As Compose: one-off containers go with --remove-orphans (and
		// with -v, like orphans).
		for _, c := range obs.OneOffs {
			removed = append(removed, plan.stopRemove(c, "one-off (berth run)", o.Timeout, nil, o.Volumes))
			gone[c.Name] = true
		}
	}
	for _, c := range orphans {
		if !removeOrphans {
			continue
		}
		why := "orphan: service " + c.Service + " is not in the project"
		if !o.RemoveOrphans {
			why += "; down -v removes its volumes"
		}
		removed = append(removed, plan.stopRemove(c, why, o.Timeout, nil, o.Volumes))
		gone[c.Name] = true
	}
	// Stop order: a service's containers stop after those of every service
	// that depends on it.
	stopped := map[string][]int{}
	for _, level := range g.StopLevels() {
		for _, name := range level {
			if !targets[name] {
				continue
			}
			var after []int
			for _, d := range g.Dependents(name) {
				after = append(after, stopped[d]...)
			}
			cs := byService[name]
			sortContainers(cs)
			for _, c := range cs {
				rm := plan.stopRemove(c, "down", o.Timeout, after, o.Volumes)
				stopped[name] = append(stopped[name], rm)
				removed = append(removed, rm)
				gone[c.Name] = true
			}
		}
	}
	if len(o.Services) > 0 {
		return plan, nil
	}
	// What the project made is known by its labels, so down works even
	// when the file changed since up.
	for _, n := range obs.ProjectNetworks {
		plan.add(Step{Action: ActRemoveNetwork, Name: n, Reason: "down", After: removed,
			Tolerate: errdefs.ErrFailedPrecondition, TolerateStatus: stillInUse})
	}
	if o.Volumes {
		for _, v := range obs.ProjectVolumes {
			var users []string
			for _, u := range obs.VolumeUsers[v] {
				if !gone[u] {
					users = append(users, u)
				}
			}
			if len(users) > 0 {
				plan.Warnings = append(plan.Warnings, fmt.Sprintf("volume %s is kept: it is in use by container %s", v, strings.Join(users, ", ")))
				continue
			}
			plan.add(Step{Action: ActRemoveVolume, Name: v, Reason: "down -v", After: removed,
				Tolerate: errdefs.ErrFailedPrecondition, TolerateStatus: stillInUse})
		}
	}
	return plan, nil
}

// stopRemove adds a stop (when running) and a remove of c (with its
// anonymous volumes when vols) after the given steps, and returns the
// remove.
func (p *Plan) stopRemove(c ObservedContainer, why string, timeout *time.Duration, after []int, vols bool) int {
	if c.Running {
		stop := p.add(Step{Action: ActStop, Service: c.Service, Name: c.Name, Container: c.ID, Number: c.Number,
			Reason: why, Timeout: stopGrace(timeout, c.StopGrace), After: after})
		after = []int{stop}
	}
	return p.add(Step{Action: ActRemove, Service: c.Service, Name: c.Name, Container: c.ID, Number: c.Number, Reason: why, After: after, RemoveVolumes: vols})
}

// PlanStart starts the existing, stopped containers of the named services
// (all when none), each after its dependencies as depends_on says.
func PlanStart(p *types.Project, obs Observed, services []string) (Plan, error) {
	g, err := NewGraph(p)
	if err != nil {
		return Plan{}, err
	}
	targets, err := g.Select(services, false)
	if err != nil {
		return Plan{}, err
	}
	u := newUpPlanner(p, obs, UpOptions{Recreate: RecreateNever, RecreateDeps: RecreateNever})
	u.startOnly = true
	for _, level := range g.Levels() {
		for _, name := range level {
			if targets[name] {
				if err := u.service(p.Services[name], true); err != nil {
					return Plan{}, err
				}
			}
		}
	}
	return u.plan, nil
}

// PlanStop stops the running containers of the named services (all when
// none), dependents first.
func PlanStop(p *types.Project, obs Observed, services []string, timeout *time.Duration) (Plan, error) {
	return planReverse(p, obs, services, func(plan *Plan, c ObservedContainer, after []int) int {
		if !c.Running {
			return 0
		}
		return plan.add(Step{Action: ActStop, Service: c.Service, Name: c.Name, Container: c.ID, Number: c.Number,
			Reason: "stop", Timeout: stopGrace(timeout, c.StopGrace), After: after})
	})
}

// PlanRemove removes the stopped containers of the named services (all
// when none); with stop, running ones are stopped first, otherwise left;
// with vols, their anonymous volumes go too.
func PlanRemove(p *types.Project, obs Observed, services []string, stop, vols bool, timeout *time.Duration) (Plan, error) {
	return planReverse(p, obs, services, func(plan *Plan, c ObservedContainer, after []int) int {
		if c.Running && !stop {
			return 0
		}
		return plan.stopRemove(c, "rm", timeout, after, vols)
	})
}

// planReverse adds step(c) for every container of the named services,
// each after the steps of the services that depend on it.
func planReverse(p *types.Project, obs Observed, services []string, step func(*Plan, ObservedContainer, []int) int) (Plan, error) {
	g, err := NewGraph(p)
	if err != nil {
		return Plan{}, err
	}
	targets, err := g.Select(services, false)
	if err != nil {
		return Plan{}, err
	}
	var plan Plan
	done := map[string][]int{}
	cs := slices.Clone(obs.Containers)
	sortContainers(cs)
	for _, level := range g.StopLevels() {
		for _, name := range level {
			if !targets[name] {
				continue
			}
			var after []int
			for _, d := range g.Dependents(name) {
				after = append(after, done[d]...)
			}
			for _, c := range cs {
				if c.Service != name {
					continue
				}
				if id := step(&plan, c, after); id > 0 {
					done[name] = append(done[name], id)
				}
			}
		}
	}
	return plan, nil
}
