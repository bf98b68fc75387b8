package compose

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/engine/container"
)

// Recreate policies, as up's flags choose them.
const (
	RecreateDiverged = "diverged" // the default: recreate what changed
	RecreateForce    = "force"    // --force-recreate
	RecreateNever    = "never"    // --no-recreate
)

// UpOptions shape an up (or create) plan.
type UpOptions struct {
	// Services are the services asked for on the command line; empty means
	// all. Their dependencies come along unless NoDeps.
	Services []string
	NoDeps   bool
	// Recreate applies to the services asked for, RecreateDeps to the
	// dependencies that came along; empty means RecreateDiverged.
	Recreate, RecreateDeps string
	RemoveOrphans          bool
	IgnoreOrphans          bool // COMPOSE_IGNORE_ORPHANS: no warning either
	NoStart                bool // create only (berth create, up --no-start)
	// RenewAnonVolumes gives recreated containers new anonymous volumes
	// (up -V) instead of the ones of the containers they replace.
	RenewAnonVolumes bool
	Scale            map[string]int
	// Timeout overrides each container's stop grace period (-t).
	Timeout *time.Duration
}

// containerRef is a service container as the plan knows it: an existing
// one (ID) or the one a Create step makes (Ref).
type containerRef struct {
	ID, Name string
	Ref      int
}

// upPlanner builds an up plan service by service in dependency order,
// remembering which steps each later service must wait for.
type upPlanner struct {
	p     *types.Project
	obs   Observed
	o     UpOptions
	plan  Plan
	nets  map[string]int // network key -> its create step
	vols  map[string]int // volume key -> its create step
	byKey map[string][]ObservedContainer
	// Per service: the steps that leave its containers started, the steps
	// that leave them created (under their final names), and the
	// containers themselves.
	started, made map[string][]int
	replicas      map[string][]containerRef
	recreated     map[string]bool
	awaits        map[string][]int // "service condition" -> await steps
	// startOnly plans berth start: existing containers are started, nothing
	// is created, recreated or removed.
	startOnly bool
}

// PlanUp computes what up must do to turn obs into the project: a pure
// function of its inputs. Every step says why it is there.
func PlanUp(p *types.Project, obs Observed, o UpOptions) (Plan, error) {
	g, err := NewGraph(p)
	if err != nil {
		return Plan{}, err
	}
	targets, err := g.Select(o.Services, !o.NoDeps)
	if err != nil {
		return Plan{}, err
	}
	if err := checkScale(p, o.Scale); err != nil {
		return Plan{}, err
	}
	u := newUpPlanner(p, obs, o)
	if err := u.networks(targets); err != nil {
		return Plan{}, err
	}
	if err := u.volumes(); err != nil {
		return Plan{}, err
	}
	for _, level := range g.Levels() {
		for _, name := range level {
			if !targets[name] {
				continue
			}
			if err := u.service(p.Services[name], asked(o.Services, name)); err != nil {
				return Plan{}, err
			}
		}
	}
	u.orphans()
	return u.plan, nil
}

func newUpPlanner(p *types.Project, obs Observed, o UpOptions) *upPlanner {
	u := &upPlanner{
		p: p, obs: obs, o: o,
		nets: map[string]int{}, vols: map[string]int{}, byKey: map[string][]ObservedContainer{},
		started: map[string][]int{}, made: map[string][]int{}, replicas: map[string][]containerRef{},
		recreated: map[string]bool{}, awaits: map[string][]int{},
	}
	for _, c := range obs.Containers {
		u.byKey[c.Service] = append(u.byKey[c.Service], c)
	}
	return u
}

// asked reports whether the service was named on the command line (all are
// when none was).
func asked(services []string, name string) bool {
	return len(services) == 0 || slices.Contains(services, name)
}

// checkScale refuses --scale on a service with a container_name: the name
// must stay unique.
func checkScale(p *types.Project, scale map[string]int) error {
	for _, name := range slices.Sorted(mapKeys(scale)) {
		s, ok := p.Services[name]
		if !ok {
			return fmt.Errorf("--scale %s: no such service: %s: %w", name, name, errdefs.ErrNotFound)
		}
		if scale[name] < 0 {
			return fmt.Errorf("--scale %s=%d: the number of replicas cannot be negative: %w", name, scale[name], errdefs.ErrInvalidArgument)
		}
		if s.ContainerName != "" && scale[name] > 1 {
			return fmt.Errorf("service %q: --scale %d: can't set container_name %q and scale the service: the container name must be unique: %w",
				name, scale[name], s.ContainerName, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

func (u *upPlanner) networks(targets map[string]bool) error {
	if err := CheckNetworking(u.p); err != nil {
		return err
	}
	for _, key := range slices.Sorted(mapKeys(u.p.Networks)) {
		n := u.p.Networks[key]
		if bool(n.External) {
			if !u.obs.Networks[n.Name] {
				return fmt.Errorf("network %q is declared as external, but could not be found: %w", n.Name, errdefs.ErrNotFound)
			}
			continue
		}
		if !usedNetwork(u.p, targets, key) || u.obs.Networks[n.Name] {
			continue
		}
		spec, err := NetworkSpec(u.p, key)
		if err != nil {
			return err
		}
		u.nets[key] = u.plan.add(Step{Action: ActCreateNetwork, Name: n.Name, Network: spec, Reason: "not found"})
	}
	return nil
}

func (u *upPlanner) volumes() error {
	for _, key := range slices.Sorted(mapKeys(u.p.Volumes)) {
		v := u.p.Volumes[key]
		if bool(v.External) {
			if !u.obs.Volumes[v.Name] {
				return fmt.Errorf("external volume %q not found: %w", v.Name, errdefs.ErrNotFound)
			}
			continue
		}
		if u.obs.Volumes[v.Name] {
			continue
		}
		u.vols[key] = u.plan.add(Step{Action: ActCreateVolume, Name: v.Name, Reason: "not found", Options: v.DriverOpts,
			Labels: mergeLabels(v.Labels, map[string]string{LabelProject: u.p.Name, LabelVolume: key, LabelVersion: Version})})
	}
	return nil
}

// service plans one service's containers: keep, start, recreate, scale.
func (u *upPlanner) service(s types.ServiceConfig, targeted bool) error {
	model, hash, err := serviceModel(s)
	if err != nil {
		return err
	}
	want := Replicas(s)
	if n, ok := u.o.Scale[s.Name]; ok {
		want = n
	}
	policy := u.o.Recreate
	if !targeted {
		policy = u.o.RecreateDeps
	}
	keep, surplus := u.pick(s, want)
	if u.startOnly {
		keep = u.byKey[s.Name]
		sortContainers(keep)
		want, surplus = len(keep), nil
	}

	// Scale down (and leftovers of an interrupted recreate) first.
	for _, sc := range surplus {
		u.removeContainer(sc.c, sc.why)
	}

	createAfter := u.createDeps(s)
	startAfter := u.startDeps(s)
	imageID := u.obs.Images[ImageName(u.p, s)]
	used := map[int]bool{}
	for _, c := range keep {
		used[c.Number] = true
		name := ContainerName(u.p, s, c.Number)
		why := u.recreateReason(s, c, model, hash, imageID, policy)
		if why != "" {
			if err := u.recreate(s, c, name, hash, model, why, createAfter, startAfter); err != nil {
				return err
			}
			continue
		}
		ref := containerRef{ID: c.ID, Name: c.Name}
		var renamed int
		if c.Name != name && !u.startOnly {
			// A recreate was interrupted after removing the old container:
			// its replacement still carries the temporary name.
			renamed = u.plan.add(Step{Action: ActRename, Service: s.Name, Name: name, Container: c.ID, From: c.Name, Number: c.Number,
				Reason: "finish an interrupted recreate of " + name})
			u.made[s.Name] = append(u.made[s.Name], renamed)
			ref.Name = name
		}
		u.replicas[s.Name] = append(u.replicas[s.Name], ref)
		restart := u.restartForDependency(s)
		switch {
		case u.o.NoStart:
		case !c.Running:
			st := u.plan.add(Step{Action: ActStart, Service: s.Name, Name: ref.Name, Container: c.ID, Number: c.Number,
				Reason: c.stateText(), After: append([]int{renamed}, startAfter...)})
			u.started[s.Name] = append(u.started[s.Name], st)
		case restart != "":
			stop := u.plan.add(Step{Action: ActStop, Service: s.Name, Name: ref.Name, Container: c.ID, Number: c.Number,
				Reason: restart, Timeout: stopGrace(u.o.Timeout, c.StopGrace), After: startAfter})
			st := u.plan.add(Step{Action: ActStart, Service: s.Name, Name: ref.Name, Container: c.ID, Number: c.Number,
				Reason: restart, After: append([]int{stop}, startAfter...)})
			u.started[s.Name] = append(u.started[s.Name], st)
		}
	}
	for n := 1; len(used) < want; n++ {
		if used[n] {
			continue
		}
		used[n] = true
		why := "new service"
		if len(u.byKey[s.Name]) > 0 {
			why = fmt.Sprintf("scale up to %d", want)
		}
		cfg, err := containerConfig(u.p, s, n, hash)
		if err != nil {
			return err
		}
		cfg.Model = model
		name := ContainerName(u.p, s, n)
		cr := u.plan.add(Step{Action: ActCreate, Service: s.Name, Name: name, Number: n, Config: cfg, Reason: why, After: createAfter})
		u.made[s.Name] = append(u.made[s.Name], cr)
		u.replicas[s.Name] = append(u.replicas[s.Name], containerRef{Name: name, Ref: cr})
		if !u.o.NoStart {
			st := u.plan.add(Step{Action: ActStart, Service: s.Name, Name: name, Ref: cr, Number: n, Reason: "created",
				After: append([]int{cr}, startAfter...)})
			u.started[s.Name] = append(u.started[s.Name], st)
		}
	}
	return nil
}

// surplusContainer is a container up removes, and why.
type surplusContainer struct {
	c   ObservedContainer
	why string
}

// pick chooses which existing containers of s to keep: one per replica
// number, preferring the one with the expected name (a recreate may have
// been interrupted), the lowest numbers when there are too many. The
// others are surplus, highest numbers first.
func (u *upPlanner) pick(s types.ServiceConfig, want int) (keep []ObservedContainer, surplus []surplusContainer) {
	have := slices.Clone(u.byKey[s.Name])
	slices.SortFunc(have, func(a, b ObservedContainer) int {
		if a.Number != b.Number {
			return a.Number - b.Number
		}
		// The container with its final name first, then the running one.
		an, bn := a.Name == ContainerName(u.p, s, a.Number), b.Name == ContainerName(u.p, s, b.Number)
		if an != bn {
			if an {
				return -1
			}
			return 1
		}
		if a.Running != b.Running {
			if a.Running {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	for _, c := range have {
		if len(keep) > 0 && keep[len(keep)-1].Number == c.Number {
			surplus = append(surplus, surplusContainer{c, fmt.Sprintf("duplicate of replica %d", c.Number)})
			continue
		}
		keep = append(keep, c)
	}
	if len(keep) > want {
		for i := len(keep) - 1; i >= want; i-- {
			surplus = append(surplus, surplusContainer{keep[i], fmt.Sprintf("scale down to %d", want)})
		}
		keep = keep[:want]
	}
	return keep, surplus
}

// recreateReason says why c must be replaced, or "" when it stays.
func (u *upPlanner) recreateReason(s types.ServiceConfig, c ObservedContainer, model []byte, hash, imageID, policy string) string {
	switch policy {
	case RecreateForce:
		return "--force-recreate"
	case RecreateNever:
		return ""
	}
	if c.Hash != hash {
		return describeChange(c.Model, model)
	}
	// The reference may now name another image (re-imported, pulled):
	// that is a change too, as in docker compose.
	if imageID != "" && c.ImageID != "" && c.ImageID != imageID {
		return fmt.Sprintf("image %s now names another image", ImageName(u.p, s))
	}
	return ""
}

// recreate replaces c the way Compose does: create the replacement under a
// temporary name, stop and remove c, rename the replacement, start it. A
// failure before the removal leaves c in place.
func (u *upPlanner) recreate(s types.ServiceConfig, c ObservedContainer, name, hash string, model []byte, why string, createAfter, startAfter []int) error {
	cfg, err := containerConfig(u.p, s, c.Number, hash)
	if err != nil {
		return err
	}
	cfg.Model = model
	if !u.o.RenewAnonVolumes {
		inheritAnonymous(&cfg, c)
	}
	tmp := c.ID
	if len(tmp) > 12 {
		tmp = tmp[:12]
	}
	tmp += "_" + name
	cr := u.plan.add(Step{Action: ActCreate, Service: s.Name, Name: tmp, Number: c.Number, Config: cfg,
		Replaces: c.ID, Quiet: true, Reason: "replaces " + c.Name + ": " + why, After: createAfter})
	var stop int
	if c.Running {
		stop = u.plan.add(Step{Action: ActStop, Service: s.Name, Name: c.Name, Container: c.ID, Number: c.Number,
			Reason: fmt.Sprintf("replaced by #%d", cr), Timeout: stopGrace(u.o.Timeout, c.StopGrace), After: []int{cr}})
	}
	rm := u.plan.add(Step{Action: ActRemove, Service: s.Name, Name: c.Name, Container: c.ID, Number: c.Number,
		Reason: fmt.Sprintf("replaced by #%d", cr), After: []int{cr, stop}, RemoveVolumes: u.o.RenewAnonVolumes})
	rn := u.plan.add(Step{Action: ActRename, Service: s.Name, Name: name, Ref: cr, Number: c.Number, After: []int{rm}})
	u.recreated[s.Name] = true
	u.made[s.Name] = append(u.made[s.Name], rn)
	u.replicas[s.Name] = append(u.replicas[s.Name], containerRef{Name: name, Ref: cr})
	if !u.o.NoStart {
		st := u.plan.add(Step{Action: ActStart, Service: s.Name, Name: name, Ref: cr, Number: c.Number, Reason: "recreated",
			After: append([]int{rn}, startAfter...)})
		u.started[s.Name] = append(u.started[s.Name], st)
	}
	return nil
}

// inheritAnonymous gives the replacement of c the anonymous volumes c has
// at the same targets, so their data survives the recreate.
func inheritAnonymous(cfg *container.Config, c ObservedContainer) {
	for i, m := range cfg.Mounts {
		if m.Type != "volume" || m.Source != "" {
			continue
		}
		for _, old := range c.Mounts {
			if old.Anonymous && old.Target == m.Target {
				cfg.Mounts[i].Source, cfg.Mounts[i].Anonymous = old.Source, true
			}
		}
	}
}

// removeContainer stops (when running) and removes c.
func (u *upPlanner) removeContainer(c ObservedContainer, why string) {
	var stop int
	if c.Running {
		stop = u.plan.add(Step{Action: ActStop, Service: c.Service, Name: c.Name, Container: c.ID, Number: c.Number,
			Reason: why, Timeout: stopGrace(u.o.Timeout, c.StopGrace)})
	}
	u.plan.add(Step{Action: ActRemove, Service: c.Service, Name: c.Name, Container: c.ID, Number: c.Number, Reason: why, After: []int{stop}})
}

// createDeps are the steps a container of s needs before it can be created:
// its networks and volumes, and the containers it shares namespaces or
// volumes with.
func (u *upPlanner) createDeps(s types.ServiceConfig) []int {
	var out []int
	if s.NetworkMode == "" || s.NetworkMode == "bridge" {
		if len(s.Networks) == 0 {
			out = append(out, u.nets["default"])
		}
		for _, key := range slices.Sorted(mapKeys(s.Networks)) {
			out = append(out, u.nets[key])
		}
	}
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeVolume && v.Source != "" {
			out = append(out, u.vols[v.Source])
		}
	}
	for _, e := range serviceEdges(s) {
		if e.key != "depends_on" && e.key != "links" && e.key != "" {
			out = append(out, u.made[e.target]...)
		}
	}
	return out
}

// startDeps are the steps a container of s waits for before it starts:
// each dependency started, completed or healthy, as depends_on says.
func (u *upPlanner) startDeps(s types.ServiceConfig) []int {
	if u.o.NoStart {
		return nil
	}
	var out []int
	seen := map[string]bool{}
	for _, dep := range slices.Sorted(mapKeys(s.DependsOn)) {
		if _, ok := u.p.Services[dep]; !ok {
			continue // optional and absent
		}
		seen[dep] = true
		d := s.DependsOn[dep]
		switch d.Condition {
		case ConditionCompleted, ConditionHealthy:
			out = append(out, u.await(s.Name, dep, d)...)
		default:
			out = append(out, u.started[dep]...)
		}
	}
	for _, e := range serviceEdges(s) {
		if !seen[e.target] {
			out = append(out, u.started[e.target]...)
		}
	}
	return out
}

// await returns the steps that wait for every container of dep to meet the
// condition, adding them the first time they are asked for.
func (u *upPlanner) await(service, dep string, d types.ServiceDependency) []int {
	key := dep + " " + d.Condition
	if ids, ok := u.awaits[key]; ok {
		return ids
	}
	var ids []int
	for _, r := range u.replicas[dep] {
		ids = append(ids, u.plan.add(Step{Action: ActAwait, Service: dep, Name: r.Name, Container: r.ID, Ref: r.Ref,
			Condition: d, Required: d.Required, Reason: "depends_on of " + service, After: u.started[dep]}))
	}
	u.awaits[key] = ids
	return ids
}

// restartForDependency says why a running container of s must restart
// (depends_on restart: true and the dependency was recreated), or "".
func (u *upPlanner) restartForDependency(s types.ServiceConfig) string {
	for _, dep := range slices.Sorted(mapKeys(s.DependsOn)) {
		if s.DependsOn[dep].Restart && u.recreated[dep] {
			return fmt.Sprintf("dependency %s was recreated (restart: true)", dep)
		}
	}
	return ""
}

// orphans handles containers of services the file no longer has (services
// disabled by profiles are not orphans).
func (u *upPlanner) orphans() {
	var orphans []ObservedContainer
	for _, c := range u.obs.Containers {
		if isOrphan(u.p, c.Service) {
			orphans = append(orphans, c)
		}
	}
	sortContainers(orphans)
	for _, c := range orphans {
		switch {
		case u.o.RemoveOrphans:
			u.removeContainer(c, fmt.Sprintf("orphan: service %s is not in the project", c.Service))
		case !u.o.IgnoreOrphans:
			u.plan.Warnings = append(u.plan.Warnings, fmt.Sprintf("found orphan container %s for service %q; run with --remove-orphans to remove it", c.Name, c.Service))
		}
	}
}

func isOrphan(p *types.Project, service string) bool {
	if _, ok := p.Services[service]; ok {
		return false
	}
	_, disabled := p.DisabledServices[service]
	return !disabled
}

// usedNetwork reports whether any targeted service joins the network.
func usedNetwork(p *types.Project, targets map[string]bool, key string) bool {
	for name, s := range p.Services {
		if !targets[name] || (s.NetworkMode != "" && s.NetworkMode != "bridge") {
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
	slices.SortFunc(cs, func(a, b ObservedContainer) int {
		if a.Service != b.Service {
			return strings.Compare(a.Service, b.Service)
		}
		if a.Number != b.Number {
			return a.Number - b.Number
		}
		return strings.Compare(a.Name, b.Name)
	})
}
