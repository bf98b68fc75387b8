package compose

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sync/errgroup"

	"github.com/berth-dev/berth/compose/progress"
	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/engine/build"
	"github.com/berth-dev/berth/internal/jsonkeys"
)

// BuildOptions are docker compose build's flags.
type BuildOptions struct {
	Services []string
	NoCache  bool // --no-cache
	Pull     bool // --pull
	// Args are --build-arg values; a nil value takes the variable from
	// the environment, as Docker does.
	Args             map[string]*string
	WithDependencies bool // --with-dependencies
	// Quiet prints nothing but errors (-q).
	Quiet bool
}

// ImageName is the image a service runs: its image key, or
// "<project>-<service>" for a service that only builds.
func ImageName(p *types.Project, s types.ServiceConfig) string {
	if s.Image != "" {
		return s.Image
	}
	return p.Name + "-" + s.Name
}

// Build builds the images of the project's services that have a build
// section (docker compose build), each once, independent ones at once.
// A service whose build names another with additional_contexts
// ("service:<name>") is built after it.
func Build(ctx context.Context, e *engine.Engine, p *types.Project, o BuildOptions) error {
	names, err := selectServices(p, o.Services, o.WithDependencies)
	if err != nil {
		return err
	}
	var todo []string
	for _, n := range names {
		if p.Services[n].Build != nil {
			todo = append(todo, n)
		}
	}
	return buildServices(ctx, e, p, todo, o)
}

// buildForUp builds what up needs before it plans (see buildsNeeded).
func buildForUp(ctx context.Context, e *engine.Engine, p *types.Project, r UpRequest) error {
	todo, err := buildsNeeded(ctx, e, p, r)
	if err != nil || len(todo) == 0 {
		return err
	}
	w := progress.Discard
	if r.Progress != nil {
		w = r.Progress()
	}
	err = buildServices(progress.WithWriter(ctx, w), e, p, todo, BuildOptions{})
	w.Close()
	return err
}

// buildsNeeded are the services up builds: with --build every selected
// service that has a build section, otherwise those whose image is missing
// or whose pull_policy is build; none with --no-build.
func buildsNeeded(ctx context.Context, e *engine.Engine, p *types.Project, r UpRequest) ([]string, error) {
	if r.NoBuild || r.DryRun {
		return nil, nil
	}
	names, err := selectServices(p, r.Options.Services, !r.Options.NoDeps)
	if err != nil {
		return nil, err
	}
	var todo []string
	for _, n := range names {
		s := p.Services[n]
		if s.Build == nil {
			continue
		}
		policy, _, err := s.GetPullPolicy()
		if err != nil {
			return nil, inService(n, "pull_policy", err)
		}
		if !r.Build && policy != types.PullPolicyBuild {
			if _, err := e.Images.Get(ctx, ImageName(p, s)); err == nil {
				continue
			} else if !errors.Is(err, errdefs.ErrNotFound) {
				return nil, inService(n, "image", err)
			}
		}
		todo = append(todo, n)
	}
	return todo, nil
}

// buildServices builds the named services, those they name in
// additional_contexts first.
func buildServices(ctx context.Context, e *engine.Engine, p *types.Project, names []string, o BuildOptions) error {
	opts := map[string]build.Options{}
	deps := map[string][]string{}
	for _, n := range names {
		bo, d, err := buildOptions(p, p.Services[n], o)
		if err != nil {
			return err
		}
		opts[n], deps[n] = bo, d
	}
	// Services named in additional_contexts are built even when not asked.
	for i := 0; i < len(names); i++ {
		for _, d := range deps[names[i]] {
			if _, ok := opts[d]; !ok {
				bo, dd, err := buildOptions(p, p.Services[d], o)
				if err != nil {
					return err
				}
				opts[d], deps[d] = bo, dd
				names = append(names, d)
			}
		}
	}
	w := progress.FromContext(ctx)
	done := map[string]chan struct{}{}
	for _, n := range names {
		done[n] = make(chan struct{})
	}
	errs := make([]error, len(names))
	var g errgroup.Group
	var once sync.Once
	failed := make(chan struct{})
	for i, n := range names {
		g.Go(func() error {
			defer close(done[n])
			for _, d := range deps[n] {
				select {
				case <-done[d]:
				case <-failed:
					return nil
				case <-ctx.Done():
					return nil
				}
			}
			bo := opts[n]
			bo.Progress = buildProgress(w)
			if _, err := e.Build(ctx, bo); err != nil {
				errs[i] = err
				once.Do(func() { close(failed) })
			}
			return nil
		})
	}
	g.Wait()
	return errors.Join(errs...)
}

// buildOptions maps a service's build section to the builder's options,
// and lists the services whose images it uses as named contexts.
func buildOptions(p *types.Project, s types.ServiceConfig, o BuildOptions) (build.Options, []string, error) {
	b := s.Build
	where := func(field string) string { return fmt.Sprintf("service %q: build.%s", s.Name, field) }
	if b == nil {
		return build.Options{}, nil, fmt.Errorf("service %q has no build section: %w", s.Name, errdefs.ErrInvalidArgument)
	}
	if len(b.SSH) > 0 {
		return build.Options{}, nil, fmt.Errorf("%s: ssh forwarding is not supported: %w", where("ssh"), errdefs.ErrNotImplemented)
	}
	if b.Privileged {
		return build.Options{}, nil, fmt.Errorf("%s: privileged builds are not supported: %w", where("privileged"), errdefs.ErrNotImplemented)
	}
	if isRemoteContext(b.Context) {
		return build.Options{}, nil, fmt.Errorf("%s: %q: only a local directory can be a build context: %w", where("context"), b.Context, errdefs.ErrNotImplemented)
	}
	for _, pl := range b.Platforms {
		if err := build.CheckPlatform(pl); err != nil {
			return build.Options{}, nil, fmt.Errorf("%s: %w", where("platforms"), err)
		}
	}
	ctxDir := b.Context
	if ctxDir == "" {
		ctxDir = p.WorkingDir
	}
	bo := build.Options{
		Name:       s.Name,
		Context:    ctxDir,
		Dockerfile: b.Dockerfile,
		Inline:     b.DockerfileInline,
		Target:     b.Target,
		Labels:     maps.Clone(b.Labels),
		NoCache:    b.NoCache || o.NoCache,
		Pull:       b.Pull || o.Pull,
		Network:    b.Network,
		ShmSize:    int64(b.ShmSize),
		Args:       map[string]string{},
	}
	switch bo.Network {
	case "", "default", "host", "none":
	default:
		return build.Options{}, nil, fmt.Errorf("%s: %q: want default, host or none: %w", where("network"), bo.Network, errdefs.ErrNotImplemented)
	}
	for k, v := range b.Args {
		if v != nil {
			bo.Args[k] = *v
		}
	}
	for k, v := range o.Args {
		if v == nil {
			val, ok := os.LookupEnv(k)
			if !ok {
				continue
			}
			v = &val
		}
		bo.Args[k] = *v
	}
	bo.Tags = append([]string{ImageName(p, s)}, b.Tags...)
	for _, name := range slices.Sorted(maps.Keys(b.ExtraHosts)) {
		for _, ip := range b.ExtraHosts[name] {
			bo.ExtraHosts = append(bo.ExtraHosts, name+":"+ip)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(b.Ulimits)) {
		u := b.Ulimits[name]
		soft, hard := u.Soft, u.Hard
		if u.Single != 0 {
			soft, hard = u.Single, u.Single
		}
		bo.Ulimits = append(bo.Ulimits, specs.POSIXRlimit{Type: "RLIMIT_" + strings.ToUpper(name), Soft: uint64(soft), Hard: uint64(hard)})
	}
	if len(b.Secrets) > 0 {
		bo.Secrets = map[string]build.Secret{}
	}
	for _, ref := range b.Secrets {
		sec, ok := p.Secrets[ref.Source]
		if !ok {
			return build.Options{}, nil, fmt.Errorf("%s: secret %q is not defined in the top-level secrets: %w", where("secrets"), ref.Source, errdefs.ErrInvalidArgument)
		}
		id := ref.Target
		if id == "" {
			id = ref.Source
		}
		switch {
		case sec.Environment != "":
			bo.Secrets[id] = build.Secret{Env: sec.Environment}
		case sec.File != "":
			bo.Secrets[id] = build.Secret{File: sec.File}
		default:
			return build.Options{}, nil, fmt.Errorf("%s: secret %q has neither file nor environment: %w", where("secrets"), ref.Source, errdefs.ErrNotImplemented)
		}
	}
	var deps []string
	for _, name := range slices.Sorted(maps.Keys(b.AdditionalContexts)) {
		v := b.AdditionalContexts[name]
		if bo.Contexts == nil {
			bo.Contexts = map[string]string{}
		}
		switch {
		case strings.HasPrefix(v, "service:"):
			svc := strings.TrimPrefix(v, "service:")
			dep, ok := p.Services[svc]
			if !ok {
				return build.Options{}, nil, fmt.Errorf("%s: %s: no service %q: %w", where("additional_contexts"), name, svc, errdefs.ErrNotFound)
			}
			if dep.Build == nil {
				return build.Options{}, nil, fmt.Errorf("%s: %s: service %q does not build an image: %w", where("additional_contexts"), name, svc, errdefs.ErrInvalidArgument)
			}
			bo.Contexts[name] = "docker-image://" + ImageName(p, dep)
			deps = append(deps, svc)
		case strings.HasPrefix(v, "docker-image://"):
			bo.Contexts[name] = v
		case isRemoteContext(v):
			return build.Options{}, nil, fmt.Errorf("%s: %s: %q: only local directories, images and services are supported: %w", where("additional_contexts"), name, v, errdefs.ErrNotImplemented)
		default:
			if !filepath.IsAbs(v) {
				v = filepath.Join(ctxDir, v)
			}
			bo.Contexts[name] = v
		}
	}
	return bo, deps, nil
}

func isRemoteContext(s string) bool {
	for _, p := range []string{"http://", "https://", "git://", "git@", "ssh://", "github.com/", "oci-layout://"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return strings.HasSuffix(s, ".git")
}

// unsupportedBuildKeys warns about build keys Berth does not act on.
func unsupportedBuildKeys(service string, b *types.BuildConfig) []string {
	if b == nil {
		return nil
	}
	supported := map[string]bool{
		"context": true, "dockerfile": true, "dockerfile_inline": true, "args": true, "target": true,
		"labels": true, "tags": true, "no_cache": true, "pull": true, "additional_contexts": true,
		"network": true, "extra_hosts": true, "shm_size": true, "ulimits": true, "secrets": true,
		"ssh": true, "platforms": true, "privileged": true,
	}
	var out []string
	for _, k := range jsonkeys.Set(b) {
		if !supported[k] {
			out = append(out, fmt.Sprintf("service %q: build key %q is not supported yet and is ignored", service, k))
		}
	}
	return out
}

// buildProgress shows build steps on the display, BuildKit's way:
// "#3 [web 2/5] RUN make", then CACHED, DONE 1.2s or ERROR; a RUN's
// output lines as its text while it runs.
func buildProgress(w progress.Writer) func(build.Event) {
	return func(ev build.Event) {
		text := ev.Text
		if len(text) > 80 {
			text = text[:77] + "..."
		}
		id := fmt.Sprintf("#%d %s", ev.Step, (build.Event{Build: ev.Build, Stage: ev.Stage, Index: ev.Index, Total: ev.Total, Text: text}).Name())
		pe := progress.Event{ID: id}
		switch ev.State {
		case build.StepStarted:
			pe.State, pe.Text = progress.Working, "Building"
		case build.StepLog:
			pe.State, pe.Text = progress.Working, ev.Line
		case build.StepCached:
			pe.State, pe.Text = progress.Done, "CACHED"
		case build.StepDone:
			pe.State, pe.Text = progress.Done, fmt.Sprintf("DONE %.1fs", ev.Duration.Round(100*time.Millisecond).Seconds())
		case build.StepFailed:
			pe.State, pe.Text = progress.Error, "ERROR"
		}
		w.Event(pe)
	}
}

// BuildImage builds one image outside any project (berth image build,
// Docker's docker build), showing its steps on the context's display.
func BuildImage(ctx context.Context, e *engine.Engine, o build.Options) (string, error) {
	o.Progress = buildProgress(progress.FromContext(ctx))
	img, err := e.Build(ctx, o)
	if err != nil {
		return "", err
	}
	return img.ID, nil
}
