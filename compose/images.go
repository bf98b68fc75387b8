package compose

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"
	"golang.org/x/sync/errgroup"

	"github.com/berth-dev/berth/compose/progress"
	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/engine/image"
)

// imageProgress turns the engine's pull and push events into the display's,
// in docker compose's words.
func imageProgress(w progress.Writer, push bool) func(image.Event) {
	return func(ev image.Event) {
		pe := progress.Event{ID: ev.Ref, Current: ev.Current, Total: ev.Total}
		if ev.Layer != "" {
			pe.ID, pe.Parent = ev.Layer, ev.Ref
		}
		switch ev.Phase {
		case image.Resolving:
			pe.State, pe.Text = progress.Working, pick(push, "Pushing", "Pulling")
		case image.Waiting:
			pe.State, pe.Text = progress.Waiting, "Waiting"
		case image.Downloading:
			pe.State, pe.Text = progress.Working, "Downloading"
		case image.Uploading:
			pe.State, pe.Text = progress.Working, "Pushing"
		case image.Exists:
			pe.State, pe.Text = progress.Done, pick(push, "Layer already exists", "Already exists")
		case image.Complete:
			pe.State, pe.Text = progress.Done, pick(push, "Pushed", "Pull complete")
		case image.Done:
			pe.State, pe.Text = progress.Done, pick(push, "Pushed", "Pulled")
		case image.Failed:
			pe.State, pe.Text = progress.Error, "Error"
			if ev.Err != nil {
				pe.Detail = Message(ev.Err)
			}
		}
		w.Event(pe)
	}
}

func pick(cond bool, a, b string) string {
	if cond {
		return a
	}
	return b
}

// PullImages pulls refs, all at once, reporting to the context's progress
// display; platform "" is this machine's. It returns the first error after
// every pull has ended, so one failure never cuts the others short.
func PullImages(ctx context.Context, e *engine.Engine, refs []string, platform string) error {
	w := progress.FromContext(ctx)
	var g errgroup.Group
	errs := make([]error, len(refs))
	for i, ref := range refs {
		g.Go(func() error {
			_, errs[i] = e.PullImage(ctx, ref, platform, imageProgress(w, false))
			return nil
		})
	}
	g.Wait()
	return errors.Join(errs...)
}

// PushImage pushes ref, reporting to the context's progress display.
func PushImage(ctx context.Context, e *engine.Engine, ref string) (string, error) {
	return e.PushImage(ctx, ref, imageProgress(progress.FromContext(ctx), true))
}

// PullOptions are docker compose pull's flags.
type PullOptions struct {
	Services       []string
	IgnoreFailures bool   // --ignore-pull-failures
	IncludeDeps    bool   // --include-deps
	Policy         string // --policy: "" or "always" pulls every image, "missing" only absent ones
}

// Pull pulls the images of the project's services (docker compose pull).
// Services that only build, or whose pull_policy is never or build, are
// skipped, as in Compose.
func Pull(ctx context.Context, e *engine.Engine, p *types.Project, o PullOptions) error {
	if o.Policy != "" && o.Policy != types.PullPolicyAlways && o.Policy != types.PullPolicyMissing {
		return fmt.Errorf("--policy %q: want always or missing: %w", o.Policy, errdefs.ErrInvalidArgument)
	}
	names, err := selectServices(p, o.Services, o.IncludeDeps)
	if err != nil {
		return err
	}
	var pulls []pullJob
	for _, name := range names {
		s := p.Services[name]
		if s.Image == "" {
			continue
		}
		policy, _, err := s.GetPullPolicy()
		if err != nil {
			return inService(name, "pull_policy", err)
		}
		if policy == types.PullPolicyNever || policy == types.PullPolicyBuild {
			continue
		}
		if o.Policy == types.PullPolicyMissing {
			if _, err := e.Images.Get(ctx, s.Image); err == nil {
				continue
			}
		}
		pulls = append(pulls, pullJob{service: name, ref: s.Image, platform: s.Platform, build: s.Build != nil})
	}
	err = runPulls(ctx, e, pulls)
	if o.IgnoreFailures {
		return nil
	}
	return err
}

// selectServices returns the named services (all when none), with their
// dependencies when deps, sorted.
func selectServices(p *types.Project, services []string, deps bool) ([]string, error) {
	if len(services) == 0 {
		return slices.Sorted(maps.Keys(p.Services)), nil
	}
	seen := map[string]bool{}
	var visit func(string) error
	visit = func(name string) error {
		s, ok := p.Services[name]
		if !ok {
			return fmt.Errorf("no such service: %s: %w", name, errdefs.ErrNotFound)
		}
		if seen[name] {
			return nil
		}
		seen[name] = true
		if deps {
			for d := range s.DependsOn {
				if err := visit(d); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for _, s := range services {
		if err := visit(s); err != nil {
			return nil, err
		}
	}
	out := slices.Collect(maps.Keys(seen))
	sort.Strings(out)
	return out, nil
}

type pullJob struct {
	service, ref, platform string
	build                  bool // the service can build its image instead
}

// runPulls pulls each distinct image once, all at once; an error names
// the service. As in Compose, a failed pull of an image that every service
// using it can build is no error: the display warns that it will be built.
func runPulls(ctx context.Context, e *engine.Engine, jobs []pullJob) error {
	w := progress.FromContext(ctx)
	byRef := map[string][]pullJob{}
	for _, j := range jobs {
		byRef[j.ref+"\x00"+j.platform] = append(byRef[j.ref+"\x00"+j.platform], j)
	}
	var g errgroup.Group
	keys := slices.Sorted(maps.Keys(byRef))
	errs := make([]error, len(keys))
	for i, k := range keys {
		js := byRef[k]
		g.Go(func() error {
			_, err := e.PullImage(ctx, js[0].ref, js[0].platform, imageProgress(w, false))
			if err == nil {
				return nil
			}
			n := slices.IndexFunc(js, func(j pullJob) bool { return !j.build })
			if n < 0 {
				var builders []string
				for _, j := range js {
					builders = append(builders, j.service)
				}
				w.Event(progress.Event{ID: js[0].ref, State: progress.Warning, Text: "Pull failed",
					Detail: fmt.Sprintf("%s; to be built from source (service %s)", Message(err), strings.Join(builders, ", "))})
				return nil
			}
			errs[i] = inService(js[n].service, "image", err)
			return nil
		})
	}
	g.Wait()
	return errors.Join(errs...)
}

func inService(service, field string, err error) error {
	return fmt.Errorf("service %q: %s: %w", service, field, err)
}

// EnsureImages pulls what up needs before it plans: each service's image
// by its pull_policy (missing when unset), or by override (up --pull
// always|missing|never) when given. A service with build and no image, or
// pull_policy build, is left to the builder.
func EnsureImages(ctx context.Context, e *engine.Engine, p *types.Project, override string) error {
	pulls, err := pullsNeeded(ctx, e, p, override)
	if err != nil {
		return err
	}
	return runPulls(ctx, e, pulls)
}

// pullsNeeded are the pulls EnsureImages makes.
func pullsNeeded(ctx context.Context, e *engine.Engine, p *types.Project, override string) ([]pullJob, error) {
	switch override {
	case "", types.PullPolicyAlways, types.PullPolicyMissing, types.PullPolicyNever:
	default:
		return nil, fmt.Errorf("--pull %q: want always, missing or never: %w", override, errdefs.ErrInvalidArgument)
	}
	var pulls []pullJob
	for _, name := range slices.Sorted(maps.Keys(p.Services)) {
		s := p.Services[name]
		if s.Image == "" {
			continue
		}
		policy, every, err := s.GetPullPolicy()
		if err != nil {
			return nil, inService(name, "pull_policy", err)
		}
		if override != "" {
			policy, every = override, 0
		}
		if policy == types.PullPolicyBuild || policy == types.PullPolicyNever {
			continue
		}
		img, err := e.Images.Get(ctx, s.Image)
		present := err == nil
		if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return nil, inService(name, "image", err)
		}
		if !needPull(policy, every, present, img.Pulled) {
			continue
		}
		if s.Build != nil && !present && policy != types.PullPolicyAlways {
			continue // built, not pulled, when missing
		}
		pulls = append(pulls, pullJob{service: name, ref: s.Image, platform: s.Platform, build: s.Build != nil})
	}
	return pulls, nil
}

// needPull decides one service's pull: always; missing (and if_not_present)
// when absent; refresh (daily, weekly, every_<duration>) when absent or
// last pulled longer ago than every.
func needPull(policy string, every time.Duration, present bool, pulled time.Time) bool {
	switch policy {
	case types.PullPolicyAlways:
		return true
	case types.PullPolicyRefresh:
		return !present || every == 0 || time.Since(pulled) >= every
	}
	return !present
}

// pullForUp pulls what up needs, with its own display, closed before up
// prints anything else.
func pullForUp(ctx context.Context, e *engine.Engine, p *types.Project, r UpRequest) error {
	if r.DryRun {
		return nil
	}
	w := progress.Discard
	if r.Progress != nil && !r.QuietPull {
		w = r.Progress()
	}
	err := EnsureImages(progress.WithWriter(ctx, w), e, p, r.Pull)
	w.Close()
	return err
}

// PushOptions are docker compose push's flags.
type PushOptions struct {
	Services       []string
	IgnoreFailures bool // --ignore-push-failures
	IncludeDeps    bool // --include-deps
}

// Push pushes the images of the project's services (docker compose push):
// every service with an image, each distinct image once, all at once.
func Push(ctx context.Context, e *engine.Engine, p *types.Project, o PushOptions) error {
	names, err := selectServices(p, o.Services, o.IncludeDeps)
	if err != nil {
		return err
	}
	first := map[string]string{} // image -> first service
	for _, name := range names {
		if img := p.Services[name].Image; img != "" && first[img] == "" {
			first[img] = name
		}
	}
	refs := slices.Sorted(maps.Keys(first))
	errs := make([]error, len(refs))
	var g errgroup.Group
	for i, ref := range refs {
		g.Go(func() error {
			if _, err := PushImage(ctx, e, ref); err != nil {
				errs[i] = inService(first[ref], "image", err)
			}
			return nil
		})
	}
	g.Wait()
	if o.IgnoreFailures {
		return nil
	}
	return errors.Join(errs...)
}
