package compose

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/format"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"
	"github.com/mattn/go-shellwords"

	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/engine/runtime"
)

// LabelSlug is the random part of a one-off container's name, as Compose
// labels it.
const LabelSlug = "com.docker.compose.slug"

// RunRequest is berth run's input: the service, what to change of it for
// this one container, and how to run it.
type RunRequest struct {
	Service    string
	Command    []string // empty: the service's
	Entrypoint *string  // --entrypoint, a shell-like string
	Env        []string // KEY=VALUE, or KEY to take it from Berth's environment
	Volumes    []string // -v, short syntax
	Ports      []string // -p, short syntax
	Labels     []string // -l KEY=VALUE
	Name       string   // --name; empty: <project>-<service>-run-<slug>
	WorkingDir string
	User       string

	ServicePorts bool // publish the service's ports
	UseAliases   bool // join the networks under the service's aliases
	NoDeps       bool
	Detach       bool
	Remove       bool   // --rm: remove the container (and its anonymous volumes) once it exits
	TTY          bool   // a pseudo-terminal for the command (the service's tty: does not count)
	Interactive  bool   // keep its input open and connect berth's stdin to it
	Build        bool   // --build: build the image first, even if present
	Pull         string // --pull always|missing|never; "" follows the service's pull_policy
	QuietPull    bool

	// Session sets up the client's side of a foreground run (terminal in
	// raw mode, input, resizes) once the container is made and before it
	// starts; nil: output to Out and Err, no input.
	Session func(tty, openStdin bool) (AttachSession, error)

	ApplyOptions
}

// Run makes a one-off container of a service, after starting what it
// depends on (unless NoDeps), and runs it: detached, it prints the
// container's name; otherwise it streams the container's output and
// returns its exit code.
func Run(ctx context.Context, e *engine.Engine, p *types.Project, r RunRequest) (int, error) {
	s, ok := p.Services[r.Service]
	if !ok {
		return -1, fmt.Errorf("no such service: %s: %w", r.Service, errdefs.ErrNotFound)
	}
	s, err := oneOffService(p, s, r)
	if err != nil {
		return -1, inFile(p, err)
	}
	if err := runImages(ctx, e, p, r); err != nil {
		return -1, inFile(p, err)
	}
	slug := make([]byte, 6)
	rand.Read(slug)
	name := r.Name
	if name == "" {
		name = fmt.Sprintf("%s-%s-run-%s", p.Name, s.Name, hex.EncodeToString(slug))
	}
	var id string
	err = locked(ctx, e, p.Name, func(obs Observed) error {
		obs.Images = ObserveImages(ctx, e, p)
		plan, err := planRun(p, obs, s, name, hex.EncodeToString(slug), r)
		if err != nil {
			return err
		}
		rep, err := r.apply(ctx, e, plan)
		if err != nil {
			return err
		}
		if created := rep.Created(); len(created) > 0 && created[0].Step.Name == name {
			id = created[0].Container
		}
		return nil
	})
	if err != nil {
		return -1, inFile(p, err)
	}
	if r.DryRun {
		return 0, nil
	}
	if r.Detach {
		fmt.Fprintln(r.Out, name)
		return 0, nil
	}
	return foreground(ctx, e, id, r)
}

// oneOffService is the service as berth run changes it: no published
// ports unless asked, no restart policy, the command line's overrides.
func oneOffService(p *types.Project, s types.ServiceConfig, r RunRequest) (types.ServiceConfig, error) {
	where := func(field string) string { return fmt.Sprintf("service %q: run: %s", s.Name, field) }
	s.Restart = ""
	s.ContainerName = ""
	s.Tty, s.StdinOpen = r.TTY, r.Interactive
	if !r.ServicePorts {
		s.Ports = nil
	}
	for _, spec := range r.Ports {
		ports, err := types.ParsePortConfig(spec)
		if err != nil {
			return s, fmt.Errorf("%s: %v: %w", where("-p "+spec), err, errdefs.ErrInvalidArgument)
		}
		s.Ports = append(s.Ports, ports...)
	}
	if len(r.Command) > 0 {
		s.Command = r.Command
	}
	if r.Entrypoint != nil {
		ep, err := shellwords.Parse(*r.Entrypoint)
		if err != nil {
			return s, fmt.Errorf("%s: %v: %w", where("--entrypoint"), err, errdefs.ErrInvalidArgument)
		}
		s.Entrypoint = ep
		if len(r.Command) == 0 {
			s.Command = nil // a new entrypoint drops the service's command, as in Compose
		}
	}
	if r.WorkingDir != "" {
		s.WorkingDir = r.WorkingDir
	}
	if r.User != "" {
		s.User = r.User
	}
	env := maps.Clone(s.Environment)
	if env == nil {
		env = types.MappingWithEquals{}
	}
	for _, kv := range r.Env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			val, set := os.LookupEnv(k)
			if !set {
				continue
			}
			v = val
		}
		env[k] = &v
	}
	s.Environment = env
	labels := maps.Clone(s.Labels)
	for _, kv := range r.Labels {
		if labels == nil {
			labels = types.Labels{}
		}
		k, v, _ := strings.Cut(kv, "=")
		labels[k] = v
	}
	s.Labels = labels
	for _, spec := range r.Volumes {
		v, err := format.ParseVolume(spec)
		if err != nil {
			return s, fmt.Errorf("%s: %v: %w", where("-v "+spec), err, errdefs.ErrInvalidArgument)
		}
		if v.Type == types.VolumeTypeBind && !filepath.IsAbs(v.Source) {
			v.Source = filepath.Join(p.WorkingDir, v.Source)
		}
		s.Volumes = append(s.Volumes, v)
	}
	return s, nil
}

// planRun plans the one-off container of s: its networks and volumes, the
// services it depends on (unless NoDeps), then the container itself,
// started once its dependencies are.
func planRun(p *types.Project, obs Observed, s types.ServiceConfig, name, slug string, r RunRequest) (Plan, error) {
	g, err := NewGraph(p)
	if err != nil {
		return Plan{}, err
	}
	targets := map[string]bool{s.Name: true}
	if !r.NoDeps {
		if targets, err = g.Select([]string{s.Name}, true); err != nil {
			return Plan{}, err
		}
	}
	u := newUpPlanner(p, obs, UpOptions{Recreate: RecreateDiverged, RecreateDeps: RecreateDiverged, IgnoreOrphans: true})
	if err := u.networks(targets); err != nil {
		return Plan{}, err
	}
	if err := u.volumes(); err != nil {
		return Plan{}, err
	}
	for _, level := range g.Levels() {
		for _, svc := range level {
			if targets[svc] && svc != s.Name {
				if err := u.service(p.Services[svc], false); err != nil {
					return Plan{}, err
				}
			}
		}
	}
	_, hash, err := serviceModel(s)
	if err != nil {
		return Plan{}, err
	}
	cfg, err := containerConfig(p, s, 1, hash)
	if err != nil {
		return Plan{}, err
	}
	cfg.Labels[LabelOneoff], cfg.Labels[LabelSlug] = "True", slug
	if !r.UseAliases {
		// Only --use-aliases makes a one-off answer to the service's names.
		for i := range cfg.Networks {
			cfg.Networks[i].Aliases = nil
		}
	}
	cr := u.plan.add(Step{Action: ActCreate, Service: s.Name, Name: name, Config: cfg, Reason: "one-off (berth run)", After: u.createDeps(s)})
	var after []int
	if !r.NoDeps {
		after = u.startDeps(s)
	}
	reason := "one-off (berth run)"
	if !r.Detach {
		reason = "one-off (berth run), attached"
		if !r.DryRun {
			// Berth starts it itself once attached, after the plan's steps
			// (its dependencies started, healthy or completed) are done.
			return u.plan, nil
		}
	}
	u.plan.add(Step{Action: ActStart, Service: s.Name, Name: name, Ref: cr, Reason: reason, After: append([]int{cr}, after...)})
	return u.plan, nil
}

// runImages pulls and builds what berth run needs, as up does: the
// service's image and its dependencies' (unless NoDeps), by --pull or
// their pull_policy; --build builds the service's image even if present.
func runImages(ctx context.Context, e *engine.Engine, p *types.Project, r RunRequest) error {
	targets, err := selectServices(p, []string{r.Service}, !r.NoDeps)
	if err != nil {
		return err
	}
	sub := *p
	sub.Services = types.Services{}
	for _, n := range targets {
		sub.Services[n] = p.Services[n]
	}
	up := UpRequest{Pull: r.Pull, QuietPull: r.QuietPull, Build: r.Build, ApplyOptions: r.ApplyOptions,
		Options: UpOptions{Services: []string{r.Service}, NoDeps: r.NoDeps}}
	if err := pullForUp(ctx, e, &sub, up); err != nil {
		return err
	}
	return buildForUp(ctx, e, &sub, up)
}

// foreground starts a one-off container attached to the session (berth's
// terminal or stdio), from before its first byte of output, and returns
// its exit code once it exits; Ctrl-C (without a terminal) stops it. With
// Remove, the container and its anonymous volumes go afterwards. A user
// who detaches (Ctrl-P Ctrl-Q on a terminal) leaves it running.
func foreground(ctx context.Context, e *engine.Engine, id string, r RunRequest) (int, error) {
	as := AttachSession{AttachOptions: engine.AttachOptions{Stdout: r.Out, Stderr: r.Err}, Close: func() {}}
	if r.Session != nil {
		var err error
		if as, err = r.Session(r.TTY, r.Interactive); err != nil {
			return -1, err
		}
	}
	code, err := e.StartAttached(ctx, id, as.AttachOptions)
	as.Close()
	if errors.Is(err, runtime.ErrDetached) {
		return code, err
	}
	bg := context.WithoutCancel(ctx)
	if ctx.Err() != nil {
		sctx, cancel := context.WithTimeout(bg, time.Minute)
		defer cancel()
		_ = e.StopContainer(sctx, id, defaultStopGrace)
	}
	if r.Remove {
		a := &Applier{Engine: e}
		if rerr := a.remove(bg, id, true); rerr != nil && !errors.Is(rerr, errdefs.ErrNotFound) {
			return -1, rerr
		}
	}
	switch {
	case ctx.Err() != nil:
		return -1, ctx.Err()
	case err != nil:
		return -1, err
	}
	return code, nil
}
