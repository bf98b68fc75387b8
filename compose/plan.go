package compose

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/engine/container"
)

// Step kinds. A plan is a list of these; apply executes them and decides
// nothing.
const (
	StepCreateNetwork = "create-network"
	StepCreateVolume  = "create-volume"
	StepCreate        = "create"
	StepStart         = "start"
	StepStop          = "stop"
	StepRemove        = "remove"
	StepRemoveNetwork = "remove-network"
	StepRemoveVolume  = "remove-volume"
)

// Step is one action on one object.
type Step struct {
	Kind    string
	Service string // empty for networks and volumes
	Name    string // container, network or volume name
	ID      string // existing container ID, when there is one
	// Config is the container to create (Create only).
	Config container.Config `json:"-"`
	// Labels for networks and volumes to create.
	Labels map[string]string `json:"-"`
	// Internal marks a network to create as internal.
	Internal bool `json:"-"`
}

func (s Step) String() string {
	switch s.Kind {
	case StepCreateNetwork, StepRemoveNetwork:
		return fmt.Sprintf("network %s: %s", s.Name, s.Kind)
	case StepCreateVolume, StepRemoveVolume:
		return fmt.Sprintf("volume %s: %s", s.Name, s.Kind)
	}
	return fmt.Sprintf("service %s: %s %s", s.Service, s.Kind, s.Name)
}

// Plan is ordered: Setup runs first, then each level of Services in order
// (services of one level in parallel, each service's steps in sequence),
// then Cleanup.
type Plan struct {
	Setup    []Step
	Levels   [][]ServiceSteps
	Cleanup  []Step
	Warnings []string
}

// ServiceSteps are one service's steps, run in order.
type ServiceSteps struct {
	Service string
	Steps   []Step
	// AwaitSuccess names containers (of dependencies with condition
	// service_completed_successfully) that must have exited with code 0
	// before these steps run.
	AwaitSuccess []string
}

// String renders the plan as stable text; tests assert on it.
func (p Plan) String() string {
	var b strings.Builder
	for _, s := range p.Setup {
		fmt.Fprintln(&b, s)
	}
	for i, lvl := range p.Levels {
		for _, ss := range lvl {
			for _, name := range ss.AwaitSuccess {
				fmt.Fprintf(&b, "[%d] service %s: await-success %s\n", i, ss.Service, name)
			}
			for _, s := range ss.Steps {
				fmt.Fprintf(&b, "[%d] %s\n", i, s)
			}
		}
	}
	for _, s := range p.Cleanup {
		fmt.Fprintln(&b, s)
	}
	return b.String()
}

// Empty reports whether the plan changes nothing.
func (p Plan) Empty() bool {
	if len(p.Setup)+len(p.Cleanup) > 0 {
		return false
	}
	for _, l := range p.Levels {
		for _, ss := range l {
			if len(ss.Steps) > 0 {
				return false
			}
		}
	}
	return true
}

// UpOptions shape an up plan.
type UpOptions struct {
	RemoveOrphans bool
	NoStart       bool // create only (berth create)
}

// PlanUp computes what up must do to turn obs into the project: a pure
// function of its inputs.
func PlanUp(p *types.Project, obs Observed, o UpOptions) (Plan, error) {
	g, err := NewGraph(p)
	if err != nil {
		return Plan{}, err
	}
	var plan Plan
	for _, key := range slices.Sorted(mapKeys(p.Networks)) {
		n := p.Networks[key]
		if bool(n.External) {
			if !obs.Networks[n.Name] {
				return Plan{}, fmt.Errorf("network %q is declared as external, but could not be found: %w", n.Name, errdefs.ErrNotFound)
			}
			continue
		}
		if !usedNetwork(p, key) || obs.Networks[n.Name] {
			continue
		}
		plan.Setup = append(plan.Setup, Step{Kind: StepCreateNetwork, Name: n.Name, Internal: n.Internal,
			Labels: mergeLabels(n.Labels, map[string]string{LabelProject: p.Name, LabelNetwork: key, LabelVersion: Version})})
	}
	for _, key := range slices.Sorted(mapKeys(p.Volumes)) {
		v := p.Volumes[key]
		if bool(v.External) {
			if !obs.Volumes[v.Name] {
				return Plan{}, fmt.Errorf("external volume %q not found: %w", v.Name, errdefs.ErrNotFound)
			}
			continue
		}
		if obs.Volumes[v.Name] {
			continue
		}
		plan.Setup = append(plan.Setup, Step{Kind: StepCreateVolume, Name: v.Name,
			Labels: mergeLabels(v.Labels, map[string]string{LabelProject: p.Name, LabelVolume: key, LabelVersion: Version})})
	}

	byService := map[string][]ObservedContainer{}
	for _, c := range obs.Containers {
		byService[c.Service] = append(byService[c.Service], c)
	}
	for _, level := range g.Levels() {
		var lvl []ServiceSteps
		for _, name := range level {
			s := p.Services[name]
			steps, err := planService(p, s, byService[name], obs.Images[s.Image], o)
			if err != nil {
				return Plan{}, err
			}
			lvl = append(lvl, ServiceSteps{Service: name, Steps: steps, AwaitSuccess: awaitSuccess(p, s, steps, o)})
		}
		plan.Levels = append(plan.Levels, lvl)
	}

	var orphans []ObservedContainer
	for _, c := range obs.Containers {
		if _, ok := p.Services[c.Service]; !ok {
			orphans = append(orphans, c)
		}
	}
	sortContainers(orphans)
	for _, c := range orphans {
		if !o.RemoveOrphans {
			plan.Warnings = append(plan.Warnings, fmt.Sprintf("found orphan container %s for service %q; run with --remove-orphans to remove it", c.Name, c.Service))
			continue
		}
		if c.Running {
			plan.Cleanup = append(plan.Cleanup, Step{Kind: StepStop, Service: c.Service, Name: c.Name, ID: c.ID})
		}
		plan.Cleanup = append(plan.Cleanup, Step{Kind: StepRemove, Service: c.Service, Name: c.Name, ID: c.ID})
	}
	return plan, nil
}

// awaitSuccess lists the containers a service's start waits to see exit 0:
// every replica of each dependency whose condition is
// service_completed_successfully. Nothing waits when nothing starts.
func awaitSuccess(p *types.Project, s types.ServiceConfig, steps []Step, o UpOptions) []string {
	starts := slices.ContainsFunc(steps, func(st Step) bool { return st.Kind == StepStart })
	if !starts || o.NoStart {
		return nil
	}
	var out []string
	for _, dep := range slices.Sorted(mapKeys(s.DependsOn)) {
		if s.DependsOn[dep].Condition != types.ServiceConditionCompletedSuccessfully {
			continue
		}
		ds, ok := p.Services[dep]
		if !ok {
			continue
		}
		for n := 1; n <= Replicas(ds); n++ {
			out = append(out, ContainerName(p, ds, n))
		}
	}
	return out
}

func planService(p *types.Project, s types.ServiceConfig, have []ObservedContainer, imageID string, o UpOptions) ([]Step, error) {
	hash, err := ServiceHash(s)
	if err != nil {
		return nil, err
	}
	want := Replicas(s)
	sortContainers(have)
	byNumber := map[int]ObservedContainer{}
	for _, c := range have {
		if _, dup := byNumber[c.Number]; dup || c.Number < 1 || c.Number > want {
			continue
		}
		byNumber[c.Number] = c
	}
	var steps []Step
	// Surplus replicas (scale down, or duplicates) go first.
	for _, c := range have {
		if byNumber[c.Number].ID == c.ID {
			continue
		}
		if c.Running {
			steps = append(steps, Step{Kind: StepStop, Service: s.Name, Name: c.Name, ID: c.ID})
		}
		steps = append(steps, Step{Kind: StepRemove, Service: s.Name, Name: c.Name, ID: c.ID})
	}
	for n := 1; n <= want; n++ {
		name := ContainerName(p, s, n)
		c, ok := byNumber[n]
		// The reference may now name another image (re-imported, pulled):
		// that is a change too, as in docker compose.
		sameImage := imageID == "" || c.ImageID == "" || c.ImageID == imageID
		if ok && c.Hash == hash && sameImage {
			if !c.Running && !o.NoStart {
				steps = append(steps, Step{Kind: StepStart, Service: s.Name, Name: c.Name, ID: c.ID})
			}
			continue
		}
		cfg, err := containerConfig(p, s, n, hash)
		if err != nil {
			return nil, err
		}
		if ok {
			// Changed configuration: recreate, keeping volumes.
			if c.Running {
				steps = append(steps, Step{Kind: StepStop, Service: s.Name, Name: c.Name, ID: c.ID})
			}
			steps = append(steps, Step{Kind: StepRemove, Service: s.Name, Name: c.Name, ID: c.ID})
		}
		steps = append(steps, Step{Kind: StepCreate, Service: s.Name, Name: name, Config: cfg})
		if !o.NoStart {
			steps = append(steps, Step{Kind: StepStart, Service: s.Name, Name: name})
		}
	}
	return steps, nil
}

// DownOptions shape a down plan.
type DownOptions struct {
	RemoveOrphans bool
	Volumes       bool
}

// PlanDown stops and removes the project's containers in reverse dependency
// order, then its networks, and its volumes when asked.
func PlanDown(p *types.Project, obs Observed, o DownOptions) (Plan, error) {
	g, err := NewGraph(p)
	if err != nil {
		return Plan{}, err
	}
	var plan Plan
	byService := map[string][]ObservedContainer{}
	for _, c := range obs.Containers {
		byService[c.Service] = append(byService[c.Service], c)
	}
	var orphanSteps []Step
	for svc, cs := range byService {
		if _, ok := p.Services[svc]; ok || !o.RemoveOrphans {
			continue
		}
		sortContainers(cs)
		for _, c := range cs {
			orphanSteps = append(orphanSteps, removeSteps(c)...)
		}
	}
	sort.SliceStable(orphanSteps, func(i, j int) bool { return orphanSteps[i].Name < orphanSteps[j].Name })
	if len(orphanSteps) > 0 {
		plan.Levels = append(plan.Levels, []ServiceSteps{{Service: "", Steps: orphanSteps}})
	}
	for _, level := range g.StopLevels() {
		var lvl []ServiceSteps
		for _, name := range level {
			cs := byService[name]
			sortContainers(cs)
			var steps []Step
			for _, c := range cs {
				steps = append(steps, removeSteps(c)...)
			}
			lvl = append(lvl, ServiceSteps{Service: name, Steps: steps})
		}
		plan.Levels = append(plan.Levels, lvl)
	}
	// What the project made is known by its labels, so down works even
	// when the file has changed since up.
	for _, n := range obs.ProjectNetworks {
		plan.Cleanup = append(plan.Cleanup, Step{Kind: StepRemoveNetwork, Name: n})
	}
	if o.Volumes {
		for _, v := range obs.ProjectVolumes {
			plan.Cleanup = append(plan.Cleanup, Step{Kind: StepRemoveVolume, Name: v})
		}
	}
	return plan, nil
}

func removeSteps(c ObservedContainer) []Step {
	var out []Step
	if c.Running {
		out = append(out, Step{Kind: StepStop, Service: c.Service, Name: c.Name, ID: c.ID})
	}
	return append(out, Step{Kind: StepRemove, Service: c.Service, Name: c.Name, ID: c.ID})
}

func usedNetwork(p *types.Project, key string) bool {
	for _, s := range p.Services {
		if s.NetworkMode != "" && s.NetworkMode != "bridge" {
			continue
		}
		if len(s.Networks) == 0 && key == "default" {
			return true
		}
		if _, ok := s.Networks[key]; ok {
			return true
		}
	}
	return false
}

func sortContainers(cs []ObservedContainer) {
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].Number != cs[j].Number {
			return cs[i].Number < cs[j].Number
		}
		return cs[i].Name < cs[j].Name
	})
}

func mergeLabels(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func mapKeys[M ~map[string]V, V any](m M) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
