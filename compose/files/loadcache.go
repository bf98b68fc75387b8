package files

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/sirupsen/logrus"

	"github.com/berth-dev/berth/compose/loadcache"
)

// The load cache (package loadcache) keeps the model Load built, keyed by
// the content of every input. What a load read is known here: loadInputs
// collects it while compose-go runs.

// loadInputs collects the files a load reads or looks for. A nil
// *loadInputs records nothing.
type loadInputs struct {
	paths    []string
	compose  []string // the compose files among paths
	uncached string   // why this load cannot be cached; "" when it can
}

func (r *loadInputs) add(paths ...string) {
	if r != nil {
		r.paths = append(r.paths, paths...)
	}
}

func (r *loadInputs) refuse(why string) {
	if r != nil && r.uncached == "" {
		r.uncached = why
	}
}

// options records what the project options found: the compose files, the
// env files, and, for discovery, every candidate file name from where the
// search started up to where it stopped (one appearing would win).
func (r *loadInputs) options(po *cli.ProjectOptions, start string, discovered bool) {
	if r == nil {
		return
	}
	for _, f := range po.ConfigPaths {
		if f == "-" {
			r.refuse("read from stdin")
		}
	}
	r.add(po.ConfigPaths...)
	r.compose = append(r.compose, po.ConfigPaths...)
	r.add(po.EnvFiles...)
	r.add(filepath.Join(start, ".env"))
	if len(po.ConfigPaths) > 0 && po.ConfigPaths[0] != "-" {
		r.add(filepath.Join(filepath.Dir(po.ConfigPaths[0]), ".env"))
	}
	if !discovered || len(po.ConfigPaths) == 0 {
		return
	}
	stop := filepath.Dir(po.ConfigPaths[0])
	for dir := start; ; dir = filepath.Dir(dir) {
		for _, n := range cli.DefaultFileNames {
			r.add(filepath.Join(dir, n))
		}
		if dir == stop || dir == filepath.Dir(dir) {
			break
		}
	}
	for _, n := range cli.DefaultOverrideFileNames {
		r.add(filepath.Join(stop, n))
	}
}

// project records the env files the services name (before they are merged
// into the environment and dropped from the model).
func (r *loadInputs) project(p *types.Project) {
	if r == nil {
		return
	}
	for _, s := range p.Services {
		for _, ef := range s.EnvFiles {
			r.add(ef.Path)
		}
	}
}

// binaryID identifies the running binary for the cache (a variable so
// tests can pretend another).
var binaryID = func() string { return loadcache.BinaryID("") }

// captureLogs tees what compose-go logs (through logrus) while fn runs, so
// a cache hit can print the same warnings.
func captureLogs(fn func()) []byte {
	l := logrus.StandardLogger()
	var buf bytes.Buffer
	out := l.Out
	l.SetOutput(io.MultiWriter(out, &buf))
	defer l.SetOutput(out)
	fn()
	return buf.Bytes()
}

// loadCached is Load through the cache in o.CacheDir.
func loadCached(ctx context.Context, o Options, warn func(*types.Project) []string) (*types.Project, []string, error) {
	c := loadcache.Open(o, binaryID())
	if p, unsupported, warnings := c.Get(); p != nil {
		if len(warnings) > 0 {
			logrus.StandardLogger().Out.Write(warnings)
		}
		return p, unsupported, nil
	}
	loadsRun.Add(1)
	in := &loadInputs{}
	start := time.Now()
	var (
		p   *types.Project
		err error
	)
	warnings := captureLogs(func() { p, err = load(ctx, o, in) })
	if err != nil {
		return nil, nil, err
	}
	unsupported := warn(p)
	c.Put(p, unsupported, loadcache.Inputs{Paths: in.paths, Compose: in.compose, Uncached: in.uncached}, warnings, start)
	return p, unsupported, nil
}

// loadsRun counts the loads the cache did not answer (for tests).
var loadsRun atomic.Int64

// discoveryStart is where compose-go looks for .env and compose files
// first: the project directory, else the working directory.
func discoveryStart(o Options, projectDir string) string {
	dir := projectDir
	if dir == "" {
		dir = o.WorkingDir
	}
	abs, err := filepath.Abs(dir) // "" is the process's directory
	if err != nil {
		return dir
	}
	return abs
}
