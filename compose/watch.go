package compose

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"
	"github.com/moby/patternmatcher"
	"golang.org/x/sync/errgroup"

	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/engine/build"
	"github.com/berth-dev/berth/internal/fswatch"
)

// WatchOptions are docker compose watch's flags.
type WatchOptions struct {
	Services []string
	// NoUp watches without building and starting the services first.
	NoUp bool
	// Out receives one line per action ("Syncing service ...").
	Out io.Writer
	// Quiet is how long changes must stop before they are acted on.
	Quiet time.Duration
	ApplyOptions
}

// watchQuiet debounces bursts of changes (a save, a checkout, a build
// tool's output) into one action, as docker compose watch does.
const watchQuiet = 500 * time.Millisecond

// rule is one develop.watch trigger of a service, with its filters.
type rule struct {
	service string
	types.Trigger
	ignore, include *patternmatcher.PatternMatcher // relative to Path
	// dockerignore: the build context's rules (relative to contextDir),
	// which watch honours as a build would.
	dockerignore *patternmatcher.PatternMatcher
	contextDir   string
}

// Watch acts on develop.watch until ctx ends (docker compose watch):
// changed files are synced into the service's running containers (sync),
// which are then restarted (sync+restart) or given a command to run
// (sync+exec); restart restarts them; rebuild builds the image and
// recreates the service. Bursts of changes are acted on together.
func Watch(ctx context.Context, e *engine.Engine, p *types.Project, o WatchOptions) error {
	rules, err := watchRules(p, o.Services)
	if err != nil {
		return err
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Quiet == 0 {
		o.Quiet = watchQuiet
	}
	if !o.NoUp {
		services := slices.Sorted(maps.Keys(serviceSet(rules)))
		err := Up(ctx, e, p, UpRequest{Options: UpOptions{Services: services}, Detach: true, ApplyOptions: o.ApplyOptions})
		if err != nil {
			return err
		}
	}
	var roots []string
	for _, r := range rules {
		if _, err := os.Stat(r.Path); err != nil {
			return fmt.Errorf("service %q: develop.watch path %s: %w", r.service, r.Path, notFoundClass(err))
		}
		roots = append(roots, r.Path)
	}
	w, err := fswatch.New(roots, ephemeral, o.Quiet)
	if err != nil {
		return err
	}
	defer w.Close()
	// Initial syncs, once the watch is in place so no change is lost.
	for _, r := range rules {
		if r.InitialSync && strings.HasPrefix(string(r.Action), "sync") {
			files, err := r.initialFiles()
			if err != nil {
				return err
			}
			if err := act(ctx, e, p, o, r.service, files, nil); err != nil {
				fmt.Fprintf(o.Out, "service %q: initial sync: %s\n", r.service, Message(err))
			}
		}
	}
	fmt.Fprintln(o.Out, "Watch enabled")
	batches := make(chan []string)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return w.Run(gctx, batches) })
	g.Go(func() error {
		for {
			select {
			case <-gctx.Done():
				return nil
			case batch := <-batches:
				handleBatch(gctx, e, p, o, rules, batch)
			}
		}
	})
	err = g.Wait()
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return err
}

func notFoundClass(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return errdefs.ErrNotFound
	}
	return err
}

func serviceSet(rules []rule) map[string]bool {
	out := map[string]bool{}
	for _, r := range rules {
		out[r.service] = true
	}
	return out
}

// ephemeral are files no watch acts on: version control and the
// temporary files of editors, as docker compose ignores them.
func ephemeral(p string) bool {
	base := filepath.Base(p)
	if base == ".git" || strings.Contains(p, "/.git/") {
		return true
	}
	return strings.HasSuffix(base, "~") || strings.HasSuffix(base, ".swp") || strings.HasSuffix(base, ".swx") ||
		strings.HasPrefix(base, ".#") || base == "4913" || strings.HasPrefix(base, ".berth-sync-")
}

// watchRules collects the triggers of the named services (all when none)
// that have develop.watch.
func watchRules(p *types.Project, services []string) ([]rule, error) {
	names, err := selectServices(p, services, false)
	if err != nil {
		return nil, err
	}
	var out []rule
	for _, n := range names {
		s := p.Services[n]
		if s.Develop == nil {
			continue
		}
		var di *patternmatcher.PatternMatcher
		ctxDir := ""
		if s.Build != nil {
			ctxDir = s.Build.Context
			if ctxDir == "" {
				ctxDir = p.WorkingDir
			}
			if di, err = build.Dockerignore(ctxDir, s.Build.Dockerfile); err != nil {
				return nil, inService(n, "build", err)
			}
		}
		for i, t := range s.Develop.Watch {
			where := fmt.Sprintf("develop.watch[%d]", i)
			switch t.Action {
			case types.WatchActionSync, types.WatchActionSyncRestart, types.WatchActionSyncExec:
				if t.Target == "" {
					return nil, inService(n, where+".target", fmt.Errorf("action %s needs a target: %w", t.Action, errdefs.ErrInvalidArgument))
				}
			case types.WatchActionRebuild:
				if s.Build == nil {
					return nil, inService(n, where+".action", fmt.Errorf("rebuild needs a build section: %w", errdefs.ErrInvalidArgument))
				}
			case types.WatchActionRestart:
			default:
				return nil, inService(n, where+".action", fmt.Errorf("%q: want sync, sync+restart, sync+exec, rebuild or restart: %w", t.Action, errdefs.ErrInvalidArgument))
			}
			if t.Action == types.WatchActionSyncExec && len(t.Exec.Command) == 0 {
				return nil, inService(n, where+".exec", fmt.Errorf("sync+exec needs a command: %w", errdefs.ErrInvalidArgument))
			}
			r := rule{service: n, Trigger: t, dockerignore: di, contextDir: ctxDir}
			if !filepath.IsAbs(r.Path) {
				r.Path = filepath.Join(p.WorkingDir, r.Path)
			}
			if len(t.Ignore) > 0 {
				if r.ignore, err = patternmatcher.New(t.Ignore); err != nil {
					return nil, inService(n, where+".ignore", fmt.Errorf("%v: %w", err, errdefs.ErrInvalidArgument))
				}
			}
			if len(t.Include) > 0 {
				if r.include, err = patternmatcher.New(t.Include); err != nil {
					return nil, inService(n, where+".include", fmt.Errorf("%v: %w", err, errdefs.ErrInvalidArgument))
				}
			}
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("none of the selected services is configured for watch, consider setting a 'develop' section: %w", errdefs.ErrInvalidArgument)
	}
	return out, nil
}

// matches reports whether the rule acts on host path p, and p's path
// below the rule's.
func (r rule) matches(p string) (string, bool) {
	rel, err := filepath.Rel(r.Path, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", false
	}
	slash := filepath.ToSlash(rel)
	if rel == "." {
		slash = ""
	}
	if slash != "" && r.ignore != nil {
		if m, _ := r.ignore.MatchesOrParentMatches(slash); m {
			return "", false
		}
	}
	if slash != "" && r.include != nil {
		if m, _ := r.include.MatchesOrParentMatches(slash); !m {
			return "", false
		}
	}
	if r.dockerignore != nil {
		if crel, err := filepath.Rel(r.contextDir, p); err == nil && !strings.HasPrefix(crel, "..") && crel != "." {
			if m, _ := r.dockerignore.MatchesOrParentMatches(filepath.ToSlash(crel)); m {
				return "", false
			}
		}
	}
	return slash, true
}

// target is where a synced path goes in the container.
func (r rule) target(rel string) string { return path.Join(r.Target, rel) }

// initialFiles lists what an initial sync copies: every file of the
// rule's path that its filters keep.
func (r rule) initialFiles() ([]engine.SyncFile, error) {
	var out []engine.SyncFile
	err := filepath.WalkDir(r.Path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ephemeral(p) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		rel, ok := r.matches(p)
		if !ok || d.IsDir() {
			return nil
		}
		out = append(out, engine.SyncFile{Source: p, Target: r.target(rel)})
		return nil
	})
	return out, err
}

// change is what one batch asks of one service.
type change struct {
	files   []engine.SyncFile
	restart bool
	rebuild bool
	execs   []types.ServiceHook
}

// handleBatch maps changed paths to the services' rules and acts.
func handleBatch(ctx context.Context, e *engine.Engine, p *types.Project, o WatchOptions, rules []rule, batch []string) {
	changes := map[string]*change{}
	get := func(s string) *change {
		if changes[s] == nil {
			changes[s] = &change{}
		}
		return changes[s]
	}
	for _, path := range batch {
		taken := map[string]bool{} // the first rule of a service that takes a path acts on it
		for _, r := range rules {
			if taken[r.service] {
				continue
			}
			rel, ok := r.matches(path)
			if !ok {
				continue
			}
			taken[r.service] = true
			c := get(r.service)
			switch r.Action {
			case types.WatchActionRebuild:
				c.rebuild = true
			case types.WatchActionRestart:
				c.restart = true
			default:
				f := engine.SyncFile{Target: r.target(rel)}
				if _, err := os.Lstat(path); err == nil {
					f.Source = path
				}
				c.files = append(c.files, f)
				if r.Action == types.WatchActionSyncRestart {
					c.restart = true
				}
				if r.Action == types.WatchActionSyncExec && !slices.ContainsFunc(c.execs, func(h types.ServiceHook) bool { return slices.Equal(h.Command, r.Exec.Command) }) {
					c.execs = append(c.execs, r.Exec)
				}
			}
		}
	}
	for _, s := range slices.Sorted(maps.Keys(changes)) {
		c := changes[s]
		if c.rebuild {
			c = &change{rebuild: true}
		}
		if err := act(ctx, e, p, o, s, c.files, c); err != nil && ctx.Err() == nil {
			fmt.Fprintf(o.Out, "service %q: %s\n", s, Message(err))
		}
	}
}

// act carries out one service's change.
func act(ctx context.Context, e *engine.Engine, p *types.Project, o WatchOptions, service string, files []engine.SyncFile, c *change) error {
	if c != nil && c.rebuild {
		fmt.Fprintf(o.Out, "Rebuilding service(s) [%q] after changes were detected...\n", service)
		if err := buildServices(ctx, e, p, []string{service}, BuildOptions{}); err != nil {
			return err
		}
		fmt.Fprintf(o.Out, "service(s) [%q] successfully built\n", service)
		err := Up(ctx, e, p, UpRequest{Options: UpOptions{Services: []string{service}, NoDeps: true}, Detach: true, NoBuild: true, ApplyOptions: o.ApplyOptions})
		if err == nil {
			fmt.Fprintf(o.Out, "service %q recreated\n", service)
		}
		return err
	}
	infos, err := projectContainers(ctx, e, p.Name, withoutOneOff, service)
	if err != nil {
		return err
	}
	if len(files) > 0 {
		fmt.Fprintf(o.Out, "Syncing service %q after %d changed files\n", service, len(files))
		for _, i := range infos {
			if !i.Running() {
				continue
			}
			if err := e.SyncFiles(ctx, i.ID, files); err != nil {
				return err
			}
		}
	}
	if c == nil {
		return nil
	}
	if c.restart {
		for _, i := range infos {
			timeout := 10 * time.Second
			if i.Config.StopGrace > 0 {
				timeout = i.Config.StopGrace
			}
			if err := e.StopContainer(ctx, i.ID, timeout); err != nil {
				return err
			}
			if err := e.StartContainer(ctx, i.ID); err != nil {
				return err
			}
		}
		fmt.Fprintf(o.Out, "service %q restarted\n", service)
	}
	for _, h := range c.execs {
		env := []string{}
		for _, k := range slices.Sorted(maps.Keys(h.Environment)) {
			if v := h.Environment[k]; v != nil {
				env = append(env, k+"="+*v)
			}
		}
		for _, i := range infos {
			if !i.Running() {
				continue
			}
			code, err := e.Exec(ctx, i.ID, engine.ExecOptions{
				Args: h.Command, Env: env, User: h.User, WorkingDir: h.WorkingDir, Privileged: h.Privileged,
				Stdout: o.Out, Stderr: o.Out,
			})
			if err != nil {
				return err
			}
			if code != 0 {
				fmt.Fprintf(o.Out, "service %q: %s exited with code %d\n", service, strings.Join(h.Command, " "), code)
			}
		}
	}
	return nil
}

// upWatch is up --watch: the watch runs beside the attached logs (or
// alone, detached) until ctx ends or, attached, every container exits.
func upWatch(ctx context.Context, e *engine.Engine, p *types.Project, r UpRequest) error {
	out := r.Out
	if out == nil {
		out = os.Stdout
	}
	o := WatchOptions{Services: r.Options.Services, NoUp: true, Out: out, ApplyOptions: r.ApplyOptions}
	if r.Detach {
		return Watch(ctx, e, p, o)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	werr := make(chan error, 1)
	go func() { werr <- Watch(wctx, e, p, o) }()
	err := attach(ctx, e, p, r)
	cancel()
	if werr := <-werr; err == nil && werr != nil && !errors.Is(werr, context.Canceled) {
		err = werr
	}
	return err
}
