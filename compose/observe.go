package compose

import (
	"context"
	"sort"

	"github.com/compose-spec/compose-go/v2/types"
	"strconv"

	"github.com/berth-dev/berth/engine"
)

// ObservedContainer is what planning needs to know of an existing container.
type ObservedContainer struct {
	ID, Name, Service string
	Number            int
	Hash              string
	ImageID           string
	Running           bool
}

// Observed is the project's current state on the host.
type Observed struct {
	Containers []ObservedContainer
	Networks   map[string]bool // existing networks by name (any project)
	Volumes    map[string]bool // existing volumes by name (any project)
	// The project's own networks and volumes, by label, sorted.
	ProjectNetworks, ProjectVolumes []string
	// Images maps each service's image reference to the ID it names now
	// (see ObserveImages); a container made from another ID is recreated.
	Images map[string]string
}

// Observe lists what exists of the project, by its labels.
func Observe(ctx context.Context, e *engine.Engine, project string) (Observed, error) {
	obs := Observed{Networks: map[string]bool{}, Volumes: map[string]bool{}}
	infos, err := e.ListContainers(ctx)
	if err != nil {
		return obs, err
	}
	for _, i := range infos {
		l := i.Config.Labels
		if l[LabelProject] != project || l[LabelOneoff] == "True" {
			continue
		}
		n, _ := strconv.Atoi(l[LabelNumber])
		obs.Containers = append(obs.Containers, ObservedContainer{
			ID: i.ID, Name: i.Name, Service: l[LabelService], Number: n,
			Hash: l[LabelConfigHash], ImageID: i.Config.ImageID, Running: i.Running(),
		})
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
	sort.Strings(obs.ProjectNetworks)
	sort.Strings(obs.ProjectVolumes)
	return obs, nil
}

// ObserveImages resolves the image of every service of p to the ID it
// names in the store now. Missing images are left out: creating from them
// fails later with a clear message.
func ObserveImages(ctx context.Context, e *engine.Engine, p *types.Project) map[string]string {
	out := map[string]string{}
	for _, s := range p.Services {
		if _, done := out[s.Image]; done || s.Image == "" {
			continue
		}
		if img, err := e.Images.Get(ctx, s.Image); err == nil {
			out[s.Image] = img.ID
		}
	}
	return out
}
