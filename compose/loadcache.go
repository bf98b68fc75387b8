package compose

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/sirupsen/logrus"

	"github.com/berth-dev/berth/internal/atomicfile"
)

// The load cache keeps the model Load built, keyed by the content of every
// input, so commands that find nothing to do (ps, a no-op up -d) skip
// compose-go: its JSON schema compile and validation alone cost about
// 30 ms of a 20-service project's load.
//
// An entry is one file per working directory and LoadOptions (so a
// changing environment overwrites rather than piles up). It holds what the
// model was built from, and is used only when all of it is the same now:
//   - the whole process environment (interpolation, COMPOSE_* variables);
//   - the berth binary (path, size, modification time, inode);
//   - the content of every compose file, .env and env_file read, and the
//     absence of every file whose appearance would change the result
//     (discovery candidates, override files, optional env files).
//
// Projects whose files name others (include, extends: file) are not
// cached: their inputs are only known inside compose-go. Neither are
// projects read from stdin, nor an input modified within a second of the
// load (it may have changed while compose-go read it, as git's "racily
// clean" entries), nor a model that does not survive the encoding intact.

// loadCacheFormat changes whenever the entry's layout or meaning does.
const loadCacheFormat = "berth-load-cache-2"

// loadCacheMax bounds the entries kept; the oldest go first.
const loadCacheMax = 64

// cacheEntry is one cached load.
type cacheEntry struct {
	Format   string
	Env      string          // hash of the process environment
	Binary   string          // identity of the berth binary
	Inputs   []fileInput     // files read, and files whose absence counted
	Warnings []byte          // what compose-go logged while loading, replayed on a hit
	Project  json.RawMessage // the model (modelcodec.go)

	Unsupported []string // Unsupported(the model)
}

// fileInput is a file the load depended on: its content hash, or "" when
// it did not exist.
type fileInput struct {
	Path string
	Sum  string
}

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

// loadCache is the cache entry of one Load call.
type loadCache struct {
	path   string // the entry's file
	env    string
	binary string
}

// openLoadCache names the entry of a Load with these options, or returns
// nil when there is no cache.
func openLoadCache(o LoadOptions) *loadCache {
	if o.CacheDir == "" {
		return nil
	}
	wd := o.WorkingDir
	if wd == "" {
		var err error
		if wd, err = os.Getwd(); err != nil {
			return nil
		}
	}
	key, err := json.Marshal(struct {
		Format string
		Dir    string
		O      LoadOptions
	}{loadCacheFormat, wd, o})
	if err != nil {
		return nil
	}
	return &loadCache{
		path:   filepath.Join(o.CacheDir, sha256Hex(key)[:32]),
		env:    envHash(),
		binary: binaryID(),
	}
}

// envHash hashes the process environment but for "_", which shells set
// to the path of the command they run (berth, or a wrapper such as time):
// a compose file that reads it is not cached (see put).
func envHash() string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "_=") })
	slices.Sort(env)
	return sha256Hex([]byte(strings.Join(env, "\x00")))
}

// namesOthers says whether a compose file's text may name inputs only
// compose-go knows (include, extends: file) or read "_" (see envHash).
func namesOthers(data []byte) bool {
	for _, s := range []string{"include", "extends", "$_", "${_"} {
		if bytes.Contains(data, []byte(s)) {
			return true
		}
	}
	return false
}

// binaryID identifies the running binary cheaply: hashing 30 MB at every
// command would cost more than the load it saves. A rebuilt or replaced
// binary has another inode or modification time.
var binaryID = func() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	fi, err := os.Stat(exe)
	if err != nil {
		return ""
	}
	return exe + ":" + strconv.FormatInt(fi.Size(), 10) + ":" + strconv.FormatInt(fi.ModTime().UnixNano(), 10) + ":" + strconv.FormatUint(inode(fi), 10)
}

// get returns the cached model and its Unsupported warnings when every
// input is as it was, and replays the warnings its load printed.
func (c *loadCache) get() (*types.Project, []string) {
	if c == nil || c.binary == "" {
		return nil, nil
	}
	data, err := os.ReadFile(c.path)
	if err != nil {
		return nil, nil
	}
	var e cacheEntry
	if json.Unmarshal(data, &e) != nil ||
		e.Format != loadCacheFormat || e.Env != c.env || e.Binary != c.binary {
		return nil, nil
	}
	for _, in := range e.Inputs {
		if sum, _ := fileSum(in.Path); sum != in.Sum {
			return nil, nil
		}
	}
	p := new(types.Project)
	if decodeModel(e.Project, p) != nil {
		return nil, nil
	}
	if len(e.Warnings) > 0 {
		logrus.StandardLogger().Out.Write(e.Warnings)
	}
	return p, e.Unsupported
}

// put stores p and its Unsupported warnings as the result of a load that
// started at start and read in. Failures only mean no cache: the load
// itself succeeded.
func (c *loadCache) put(p *types.Project, unsupported []string, in *loadInputs, warnings []byte, start time.Time) {
	if c == nil || c.binary == "" || in.uncached != "" {
		return
	}
	e := cacheEntry{Format: loadCacheFormat, Env: c.env, Binary: c.binary, Warnings: warnings, Unsupported: unsupported}
	seen := map[string]bool{}
	for _, path := range in.paths {
		if seen[path] {
			continue
		}
		seen[path] = true
		sum, data := fileSum(path)
		if sum == "" {
			e.Inputs = append(e.Inputs, fileInput{Path: path})
			continue
		}
		// An input that changed just before or during the load may not be
		// what compose-go read.
		if fi, err := os.Stat(path); err != nil || !fi.ModTime().Before(start.Add(-time.Second)) {
			return
		}
		if slices.Contains(in.compose, path) && namesOthers(data) {
			return
		}
		e.Inputs = append(e.Inputs, fileInput{Path: path, Sum: sum})
	}
	model, err := encodeModel(p)
	if err != nil {
		return
	}
	// Only a model that comes back exactly as it went in is kept.
	back := new(types.Project)
	if decodeModel(model, back) != nil || !reflect.DeepEqual(p, back) {
		return
	}
	e.Project = model
	out, err := json.Marshal(e)
	if err != nil {
		return
	}
	dir := filepath.Dir(c.path)
	if os.MkdirAll(dir, 0o700) != nil {
		return
	}
	if atomicfile.Write(c.path, out, 0o600) == nil {
		pruneLoadCache(dir)
	}
}

// pruneLoadCache keeps the loadCacheMax newest entries of dir.
func pruneLoadCache(dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) <= loadCacheMax {
		return
	}
	type aged struct {
		name string
		mod  time.Time
	}
	var all []aged
	for _, e := range ents {
		if fi, err := e.Info(); err == nil {
			all = append(all, aged{e.Name(), fi.ModTime()})
		}
	}
	slices.SortFunc(all, func(a, b aged) int { return b.mod.Compare(a.mod) })
	for _, a := range all[min(loadCacheMax, len(all)):] {
		os.Remove(filepath.Join(dir, a.name))
	}
}

// fileSum is the hex SHA-256 of path's content and the content, or "" when
// it cannot be read (absent, or a directory).
func fileSum(path string) (string, []byte) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", nil
	}
	return sha256Hex(data), data
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

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

// loadCached is LoadWarned through the cache in o.CacheDir.
func loadCached(ctx context.Context, o LoadOptions) (*types.Project, []string, error) {
	c := openLoadCache(o)
	if p, unsupported := c.get(); p != nil {
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
	unsupported := Unsupported(p)
	c.put(p, unsupported, in, warnings, start)
	return p, unsupported, nil
}

// inode is fi's inode number.
func inode(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}

// loadsRun counts the loads the cache did not answer (for tests).
var loadsRun atomic.Int64

// discoveryStart is where compose-go looks for .env and compose files
// first: the project directory, else the working directory.
func discoveryStart(o LoadOptions, projectDir string) string {
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
