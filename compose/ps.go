package compose

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/engine/image"
	"github.com/berth-dev/berth/engine/network"
)

// ContainerSummary is one row of berth ps, with docker compose's field
// names, so --format json and Go templates read the same.
type ContainerSummary struct {
	ID           string
	Name         string
	Names        string
	Image        string
	Command      string
	Project      string
	Service      string
	CreatedAt    string
	Created      int64 `json:"-"`
	RunningFor   string
	State        string
	Status       string
	Health       string
	ExitCode     int
	Labels       string
	LocalVolumes string
	Mounts       string
	Networks     string
	Ports        string
	Publishers   []PortPublisher
	Size         string
}

// PortPublisher is one published port, as docker compose ps shows it.
type PortPublisher struct {
	URL           string
	TargetPort    uint16
	PublishedPort uint16
	Protocol      string
}

// PsOptions select the containers berth ps lists.
type PsOptions struct {
	Services []string
	All      bool     // stopped containers too
	Status   []string // only these states (created, running, restarting, exited, paused, dead)
	Orphans  bool     // containers of services the file no longer has
}

// psStates are the states --status and --filter status= accept.
var psStates = []string{"paused", "restarting", "removing", "running", "dead", "created", "exited"}

// Ps lists the project's containers, by name.
func Ps(ctx context.Context, e *engine.Engine, p *types.Project, o PsOptions) ([]ContainerSummary, error) {
	for _, s := range o.Status {
		if !slices.Contains(psStates, s) {
			return nil, fmt.Errorf("invalid status %q: want one of %s: %w", s, strings.Join(psStates, ", "), errdefs.ErrInvalidArgument)
		}
	}
	for _, s := range o.Services {
		if _, ok := p.Services[s]; !ok {
			return nil, fmt.Errorf("no such service: %s: %w", s, errdefs.ErrNotFound)
		}
	}
	// Like docker compose, one-off containers (berth run) show with -a.
	oneoff := withoutOneOff
	if o.All {
		oneoff = withOneOff
	}
	infos, err := projectContainers(ctx, e, p.Name, oneoff, o.Services...)
	if err != nil {
		return nil, err
	}
	// One read of the firewall for all rows (a read per row made ps
	// quadratic in the containers). A ps that cannot read it still lists.
	var published map[string][]network.Published
	if slices.ContainsFunc(infos, engine.Info.Running) {
		published, _ = e.AllPublishedPorts(ctx)
	}
	var out []ContainerSummary
	for _, i := range infos {
		switch {
		case len(o.Status) > 0 && !slices.Contains(o.Status, string(i.Status.State)):
			continue
		case len(o.Status) == 0 && !o.All && !i.Running():
			continue
		case !o.Orphans && isOrphan(p, i.Config.Labels[LabelService]):
			continue
		}
		out = append(out, withPorts(summarize(i, p.Name), i, published))
	}
	return out, nil
}

func summarize(i engine.Info, project string) ContainerSummary {
	l := i.Config.Labels
	r := ContainerSummary{
		ID: i.ID, Name: i.Name, Names: i.Name, Image: image.FamiliarName(i.Config.Image),
		Command: strings.Join(append(slices.Clone(i.Config.Entrypoint), i.Config.Cmd...), " "),
		Project: project, Service: l[LabelService],
		CreatedAt: i.Created.Local().Format("2006-01-02 15:04:05 -0700 MST"), Created: i.Created.Unix(),
		RunningFor: HumanDuration(time.Since(i.Created)) + " ago",
		State:      string(i.Status.State), Health: i.Status.HealthStatus(), ExitCode: i.Status.ExitCode, Size: "0B",
		Status: i.Status.Describe(time.Now()),
	}
	var labels []string
	for _, k := range slices.Sorted(mapKeys(l)) {
		labels = append(labels, k+"="+l[k])
	}
	r.Labels = strings.Join(labels, ",")
	var mounts, nets []string
	local := 0
	for _, m := range i.Config.Mounts {
		mounts = append(mounts, m.Source)
		if m.Type == "volume" {
			local++
		}
	}
	for _, n := range i.Config.Networks {
		nets = append(nets, n.Network)
	}
	r.Mounts, r.Networks, r.LocalVolumes = strings.Join(mounts, ","), strings.Join(nets, ","), fmt.Sprint(local)
	var ports []string
	for _, p := range i.Config.Ports {
		host := p.HostIP
		if host == "" {
			host = "0.0.0.0"
		}
		proto := p.Protocol
		if proto == "" {
			proto = "tcp"
		}
		r.Publishers = append(r.Publishers, PortPublisher{host, p.ContainerPort, p.HostPort, proto})
		ports = append(ports, fmt.Sprintf("%s:%d->%d/%s", host, p.HostPort, p.ContainerPort, proto))
	}
	r.Ports = strings.Join(withExposed(&r, i.Config, ports), ", ")
	return r
}

// HumanDuration prints a rough duration as docker does ("2 minutes").
func HumanDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return "Less than a second"
	case d < 2*time.Second:
		return "1 second"
	case d < time.Minute:
		return fmt.Sprintf("%d seconds", int(d.Seconds()))
	case d < 2*time.Minute:
		return "About a minute"
	case d < time.Hour:
		return fmt.Sprintf("%d minutes", int(d.Minutes()))
	case d < 2*time.Hour:
		return "About an hour"
	case d < 48*time.Hour:
		return fmt.Sprintf("%d hours", int(d.Hours()))
	case d < 14*24*time.Hour:
		return fmt.Sprintf("%d days", int(d.Hours()/24))
	}
	return fmt.Sprintf("%d weeks", int(d.Hours()/24/7))
}
