package build

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sync/errgroup"

	"github.com/berth-dev/berth/engine/image"
	"github.com/berth-dev/berth/engine/snapshot"
	"github.com/berth-dev/berth/internal/lockfile"
)

// Options describe one build.
type Options struct {
	// Name is who builds, for messages and progress: a service name.
	Name string
	// Context is the build context directory.
	Context string
	// Dockerfile is the Dockerfile's path, relative to Context unless
	// absolute; "Dockerfile" when empty. Inline, when set, is the
	// Dockerfile itself (compose's dockerfile_inline).
	Dockerfile string
	Inline     string
	Target     string
	// Args are build arguments (--build-arg, compose args).
	Args map[string]string
	// Labels are added to the image's labels.
	Labels map[string]string
	// Tags name the result; the first is the image's reference.
	Tags []string
	// NoCache runs every step; Pull pulls every base image again.
	NoCache, Pull bool
	// Network of RUN steps: "" or "default" (a bridge with outside
	// access, like Docker's default build network), "host" or "none".
	Network    string
	ExtraHosts []string // "name:ip" (or "name=ip"), added to /etc/hosts of RUN steps
	ShmSize    int64    // bytes of /dev/shm in RUN steps; 0 for the default
	Ulimits    []specs.POSIXRlimit
	// Secrets for RUN --mount=type=secret, by id.
	Secrets map[string]Secret
	// Contexts are additional named contexts: a directory, or
	// "docker-image://<ref>" for an image.
	Contexts map[string]string
	// Progress receives step events; nil for none.
	Progress func(Event)
}

// Secret is the content of a build secret: a file's, or an environment
// variable's of the building process.
type Secret struct {
	File string
	Env  string
}

// Builder runs builds against Berth's stores.
type Builder struct {
	Images    *image.Store
	Snapshots *snapshot.Store
	Cache     *Cache
	// RunDir holds the root filesystems of running steps ($BERTH_RUN/build).
	RunDir string
	// MountsDir holds RUN --mount=type=cache directories.
	MountsDir string
	// Exec runs RUN steps.
	Exec Executor
	// Pull fetches a base image that is missing (or every one, with
	// Options.Pull); nil refuses missing images.
	Pull func(ctx context.Context, ref string) (image.Image, error)
}

// run is one build in progress.
type run struct {
	b      *Builder
	o      Options
	df     *Dockerfile
	ctxDir *tree

	// The run's directory is claimed by the first step that needs it
	// (claim), so a build answered from the cache writes nothing there.
	claimOnce sync.Once
	claimErr  error
	id        string // names this build's snapshot keys and mounts
	dir       string // under RunDir; its lock marks the build live
	lock      *lockfile.Lock

	global  map[string]string // ARGs before the first FROM, with build args applied
	stages  []*stageRun
	stepSeq int
	stepMu  sync.Mutex

	filterOnce sync.Once // the ignore-filtered context, for bind mounts
	filterDir  string
	filterErr  error
}

// stageRun is one stage's result, ready when done is closed.
type stageRun struct {
	done chan struct{}
	st   *state
	err  error
}

// Build runs the build o describes and returns the image it made, tagged
// with o.Tags. A failed build tags nothing.
func (b *Builder) Build(ctx context.Context, o Options) (image.Image, error) {
	r, err := b.start(ctx, o)
	if err != nil {
		return image.Image{}, err
	}
	defer r.finish()
	hold, err := b.Images.Hold(ctx)
	if err != nil {
		return image.Image{}, err
	}
	defer hold.Unlock()

	target, err := r.df.Target(o.Target)
	if err != nil {
		return image.Image{}, r.fail(err)
	}
	needed, err := r.needed(target)
	if err != nil {
		return image.Image{}, err
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, i := range needed {
		sr := r.stages[i]
		g.Go(func() error {
			defer close(sr.done)
			sr.st, sr.err = r.buildStage(gctx, i)
			return sr.err
		})
	}
	if err := g.Wait(); err != nil {
		// The stage that failed, not one that waited for it or was
		// cancelled because of it.
		for _, i := range needed {
			if e := r.stages[i].err; e != nil && !errors.Is(e, errStageFailed) && !errors.Is(e, context.Canceled) {
				return image.Image{}, e
			}
		}
		return image.Image{}, err
	}
	st := r.stages[target].st
	cfg := st.config()
	if len(o.Labels) > 0 {
		if cfg.Config.Labels == nil {
			cfg.Config.Labels = map[string]string{}
		}
		maps.Copy(cfg.Config.Labels, o.Labels)
	}
	img, err := b.Images.Create(ctx, cfg, st.layers, o.Tags...)
	if err != nil {
		return image.Image{}, fmt.Errorf("%s: %w", r.who(), err)
	}
	return img, nil
}

// start reads and parses the Dockerfile and opens the context.
func (b *Builder) start(ctx context.Context, o Options) (*run, error) {
	r := &run{b: b, o: o}
	name := o.Dockerfile
	if name == "" {
		name = "Dockerfile"
	}
	var src []byte
	dfPath := name
	if !filepath.IsAbs(dfPath) {
		dfPath = filepath.Join(o.Context, dfPath)
	}
	if o.Inline != "" {
		src, name, dfPath = []byte(o.Inline), "dockerfile_inline", ""
	} else {
		var err error
		src, err = os.ReadFile(dfPath)
		if err != nil {
			return nil, fmt.Errorf("%s: Dockerfile %s: %w", r.who(), name, notFound(err))
		}
	}
	df, err := Parse(name, src)
	if err != nil {
		return nil, r.fail(err)
	}
	r.df = df
	if r.ctxDir, err = openContext(o.Context, dfPath); err != nil {
		return nil, r.fail(err)
	}
	if err := r.globalArgs(); err != nil {
		return nil, r.fail(err)
	}
	for range df.Stages {
		r.stages = append(r.stages, &stageRun{done: make(chan struct{})})
	}
	return r, nil
}

func (r *run) who() string {
	if r.o.Name != "" {
		return "service " + quote(r.o.Name)
	}
	return "build"
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

// fail prefixes an error with who builds.
func (r *run) fail(err error) error { return fmt.Errorf("%s: %w", r.who(), err) }

// claim makes the run's directory, locked for the build's life, after
// removing the mounts and layers of builds that died; once, for the
// first step that mounts a root or downloads.
func (r *run) claim(ctx context.Context) error {
	r.claimOnce.Do(func() { r.claimErr = r.b.claim(ctx, r) })
	return r.claimErr
}

func (b *Builder) claim(ctx context.Context, r *run) error {
	if err := os.MkdirAll(b.RunDir, 0o700); err != nil {
		return err
	}
	ents, _ := os.ReadDir(b.RunDir)
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".lock")
		if !ok {
			continue
		}
		l, free, err := lockfile.TryAcquire(filepath.Join(b.RunDir, e.Name()))
		if err != nil || !free {
			continue
		}
		b.cleanRun(ctx, id)
		os.Remove(filepath.Join(b.RunDir, e.Name()))
		l.Unlock()
	}
	var buf [6]byte
	rand.Read(buf[:])
	r.id = stepPrefix + hex.EncodeToString(buf[:])
	r.dir = filepath.Join(b.RunDir, r.id)
	l, err := lockfile.Acquire(ctx, r.dir+".lock")
	if err != nil {
		return err
	}
	r.lock = l
	return os.MkdirAll(r.dir, 0o700)
}

// stepPrefix starts the IDs of builds and of their steps' containers,
// which are never a container's (64 hex digits).
const stepPrefix = "build-"

// IsStepID reports whether id names a build step's container.
func IsStepID(id string) bool { return strings.HasPrefix(id, stepPrefix) }

// cleanRun removes what build id left: mounts under its directory and
// its writable layers.
func (b *Builder) cleanRun(ctx context.Context, id string) {
	dir := filepath.Join(b.RunDir, id)
	steps, _ := os.ReadDir(dir)
	for _, s := range steps {
		snapshot.Unmount(filepath.Join(dir, s.Name(), "rootfs"))
		b.Snapshots.Remove(ctx, s.Name())
	}
	os.RemoveAll(dir)
}

func (r *run) finish() {
	if r.lock == nil {
		return // nothing claimed
	}
	r.b.cleanRun(context.WithoutCancel(context.Background()), r.id)
	os.Remove(r.dir + ".lock")
	r.lock.Unlock()
}

// platformArgs are BuildKit's automatic platform ARGs, for this machine.
func platformArgs() map[string]string {
	p := "linux/" + runtime.GOARCH
	return map[string]string{
		"TARGETPLATFORM": p, "TARGETOS": "linux", "TARGETARCH": runtime.GOARCH, "TARGETVARIANT": "",
		"BUILDPLATFORM": p, "BUILDOS": "linux", "BUILDARCH": runtime.GOARCH, "BUILDVARIANT": "",
	}
}

// proxyArgs are the ARGs Docker predefines: usable in RUN without an ARG
// line, and left out of the image's history and the cache key.
var proxyArgs = []string{
	"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy",
	"FTP_PROXY", "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy",
}

// globalArgs evaluates the ARGs before the first FROM.
func (r *run) globalArgs() error {
	r.global = platformArgs()
	for _, a := range r.df.MetaArgs {
		for _, kv := range a.Args {
			v, ok := r.o.Args[kv.Key]
			if !ok && kv.Value != nil {
				var err error
				if v, err = r.expand(*kv.Value, r.global); err != nil {
					return fmt.Errorf("%s:%d: ARG %s: %v: %w", r.df.Name, line(a.Location()), kv.Key, err, errdefs.ErrInvalidArgument)
				}
			} else {
				continue
			}
			r.global[kv.Key] = v
		}
	}
	return nil
}

// expand substitutes variables in word. A lexer per call: a Lex is not
// safe for concurrent use, and stages run at once.
func (r *run) expand(word string, env map[string]string) (string, error) {
	out, _, err := shell.NewLex(r.df.escape).ProcessWord(word, envMap(env))
	return out, err
}

// envMap lets the shell lexer read a map.
type envMap map[string]string

func (e envMap) Get(k string) (string, bool) { v, ok := e[k]; return v, ok }
func (e envMap) Keys() []string              { return slices.Sorted(maps.Keys(e)) }

// needed lists the stages the target depends on, target included, in
// order: the base of each, and the stages COPY --from and RUN --mount
// from= name.
func (r *run) needed(target int) ([]int, error) {
	seen := map[int]bool{}
	var visit func(i int) error
	visit = func(i int) error {
		if seen[i] {
			return nil
		}
		seen[i] = true
		deps, err := r.deps(i)
		if err != nil {
			return err
		}
		for _, d := range deps {
			if err := visit(d); err != nil {
				return err
			}
		}
		return nil
	}
	if err := visit(target); err != nil {
		return nil, err
	}
	return slices.Sorted(maps.Keys(seen)), nil
}

// deps finds the earlier stages stage i reads from.
func (r *run) deps(i int) ([]int, error) {
	s := r.df.Stages[i]
	var out []int
	ref := func(name string, loc int) error {
		name, err := r.expand(name, r.global)
		if err != nil {
			return fmt.Errorf("%s:%d: %v: %w", r.df.Name, loc, err, errdefs.ErrInvalidArgument)
		}
		j, ok := r.df.stageIndex(name)
		if !ok {
			return nil // an image, or a named context
		}
		if j >= i {
			return r.fail(fmt.Errorf("%s:%d: stage %q is not defined before it is used: %w", r.df.Name, loc, name, errdefs.ErrInvalidArgument))
		}
		out = append(out, j)
		return nil
	}
	if err := ref(s.BaseName, line(s.Location)); err != nil {
		return nil, err
	}
	for _, c := range s.Commands {
		switch c := c.(type) {
		case *instructions.CopyCommand:
			if c.From != "" {
				if err := ref(c.From, line(c.Location())); err != nil {
					return nil, err
				}
			}
		case *instructions.RunCommand:
			for _, m := range instructions.GetMounts(c) {
				if m.From != "" {
					if err := ref(m.From, line(c.Location())); err != nil {
						return nil, err
					}
				}
			}
		}
	}
	return out, nil
}

// errStageFailed is what a stage that needs a failed one gets.
var errStageFailed = errors.New("a stage it needs failed")

// waitStage returns stage i's result once it is built.
func (r *run) waitStage(ctx context.Context, i int) (*state, error) {
	sr := r.stages[i]
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-sr.done:
	}
	if sr.err != nil {
		return nil, fmt.Errorf("stage %d: %w", i, errStageFailed)
	}
	if sr.st == nil {
		return nil, fmt.Errorf("stage %d was not built: %w", i, errdefs.ErrFailedPrecondition)
	}
	return sr.st, nil
}

// stepID numbers steps across the whole build, as BuildKit's "#N".
func (r *run) stepID() int {
	r.stepMu.Lock()
	defer r.stepMu.Unlock()
	r.stepSeq++
	return r.stepSeq
}

// newKey names a writable layer of this run.
func (r *run) newKey() string {
	var buf [4]byte
	rand.Read(buf[:])
	return r.id + "-" + hex.EncodeToString(buf[:])
}

// CheckPlatform checks a platform (FROM --platform, compose's
// build.platforms) against this machine's, the only one Berth builds for.
func CheckPlatform(p string) error {
	if p == "" {
		return nil
	}
	want := "linux/" + runtime.GOARCH
	if p == want || p == "linux" || strings.HasPrefix(p, want+"/") {
		return nil
	}
	return fmt.Errorf("platform %q: only this machine's (%s) can be built: %w", p, want, errdefs.ErrNotImplemented)
}

// imageConfig is the v1 config of a stage, complete for storing.
func newConfig() v1.ConfigFile {
	return v1.ConfigFile{Architecture: runtime.GOARCH, OS: "linux", RootFS: v1.RootFS{Type: "layers"}}
}
