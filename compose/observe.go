package compose

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/engine/container"
)

// oneOff says how a listing treats one-off containers (berth run's).
type oneOff int

const (
	withoutOneOff oneOff = iota
	withOneOff
	onlyOneOff
)

// projectContainers is the one place that picks a project's containers out
// of the engine's: by the project label, one-off containers as asked, and
// only the named services' when services are named. Sorted by name.
func projectContainers(ctx context.Context, e *engine.Engine, project string, o oneOff, services ...string) ([]engine.Info, error) {
	infos, err := e.ListContainers(ctx)
	if err != nil {
		return nil, err
	}
	return filterContainers(infos, project, o, services...), nil
}

// filterContainers is projectContainers on a listing already made.
func filterContainers(infos []engine.Info, project string, o oneOff, services ...string) []engine.Info {
	var out []engine.Info
	for _, i := range infos {
		l := i.Config.Labels
		if l[LabelProject] != project {
			continue
		}
		isOneOff := l[LabelOneoff] == "True"
		if (o == withoutOneOff && isOneOff) || (o == onlyOneOff && !isOneOff) {
			continue
		}
		if len(services) > 0 && !slices.Contains(services, l[LabelService]) {
			continue
		}
		out = append(out, i)
	}
	slices.SortFunc(out, func(a, b engine.Info) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// ObservedContainer is what planning needs to know of an existing container.
type ObservedContainer struct {
	ID, Name, Service string
	Number            int
	Hash              string
	ImageID           string
	Running           bool
	State             string // created, running, restarting, exited
	ExitCode          int
	StopGrace         time.Duration // its own stop_grace_period; 0: the default
	// Model is the service model the container was made from (see
	// serviceModel), so a recreate can say what changed.
	Model  []byte
	Mounts []container.Mount // a recreate keeps the anonymous volumes
}

func (c ObservedContainer) stateText() string {
	if c.State == "exited" {
		return fmt.Sprintf("exited (%d)", c.ExitCode)
	}
	return c.State
}

func observed(i engine.Info) ObservedContainer {
	l := i.Config.Labels
	n, _ := strconv.Atoi(l[LabelNumber])
	return ObservedContainer{
		ID: i.ID, Name: i.Name, Service: l[LabelService], Number: n,
		Hash: l[LabelConfigHash], ImageID: i.Config.ImageID, Running: i.Running(),
		State: string(i.Status.State), ExitCode: i.Status.ExitCode, StopGrace: i.Config.StopGrace,
		Model: i.Config.Model, Mounts: i.Config.Mounts,
	}
}

// Observed is the project's current state on the host.
type Observed struct {
	Containers []ObservedContainer
	OneOffs    []ObservedContainer // berth run's containers
	Networks   map[string]bool     // existing networks by name (any project)
	Volumes    map[string]bool     // existing volumes by name (any project)
	// The project's own networks and volumes, by label, sorted.
	ProjectNetworks, ProjectVolumes []string
	// VolumeUsers maps each volume to the containers (of any project) that
	// mount it, so down -v keeps a volume still in use and says by whom.
	VolumeUsers map[string][]string
	// Images maps each service's image reference to the ID it names now
	// (see ObserveImages); a container made from another ID is recreated.
	Images map[string]string
}

// Observe lists what exists of the project, by its labels; one-off
// containers (berth run) apart.
func Observe(ctx context.Context, e *engine.Engine, project string) (Observed, error) {
	obs := Observed{Networks: map[string]bool{}, Volumes: map[string]bool{}, VolumeUsers: map[string][]string{}}
	infos, err := e.ListContainers(ctx)
	if err != nil {
		return obs, err
	}
	for _, i := range infos {
		for _, m := range i.Config.Mounts {
			if m.Type == "volume" {
				obs.VolumeUsers[m.Source] = append(obs.VolumeUsers[m.Source], i.Name)
			}
		}
	}
	for _, i := range filterContainers(infos, project, withOneOff) {
		if i.Config.Labels[LabelOneoff] == "True" {
			obs.OneOffs = append(obs.OneOffs, observed(i))
		} else {
			obs.Containers = append(obs.Containers, observed(i))
		}
	}
	nets, err := e.Networks.List(ctx)
	if err != nil {
		return obs, err
	}
	for _, n := range nets {
		obs.Networks[n.Name] = true
		if n.Labels[LabelProject] == project {
			obs.ProjectNetworks = append(obs.ProjectNetworks, n.Name)
		}
	}
	vols, err := e.Volumes.List(ctx)
	if err != nil {
		return obs, err
	}
	for _, v := range vols {
		obs.Volumes[v.Name] = true
		if v.Labels[LabelProject] == project {
			obs.ProjectVolumes = append(obs.ProjectVolumes, v.Name)
		}
	}
	slices.Sort(obs.ProjectNetworks)
	slices.Sort(obs.ProjectVolumes)
	return obs, nil
}

// ObserveImages resolves the image of every service of p to the ID it
// names in the store now. Missing images are left out: creating from them
// fails later with a clear message.
func ObserveImages(ctx context.Context, e *engine.Engine, p *types.Project) map[string]string {
	out := map[string]string{}
	for _, s := range p.Services {
		ref := ImageName(p, s) // a service that only builds runs <project>-<service>
		if _, done := out[ref]; done || (s.Image == "" && s.Build == nil) {
			continue
		}
		if img, err := e.Images.Get(ctx, ref); err == nil {
			out[ref] = img.ID
		}
	}
	return out
}
