// Package loadcache keeps the compose models compose.Load built, keyed by
// the content of every input, so commands that find nothing to do (ps, a
// no-op up -d) skip compose-go: its JSON schema compile and validation
// alone cost about 30 ms of a 20-service project's load.
//
// It imports compose-go's types but not its loader or cli, so the lean
// helper can answer from an entry (berth's front path, docs/performance.md)
// without linking compose-go's schema package and its initialisers. Filling
// the cache (what a load read) is compose's part: compose/loadcache.go.
//
// An entry is one file per working directory and Options (so a changing
// environment overwrites rather than piles up). It holds what the model
// was built from, and is used only when all of it is the same now:
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
package loadcache

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-dev/berth/internal/atomicfile"
)

// Options says where a project comes from, as docker compose's global
// flags and environment variables do.
type Options struct {
	ConfigPaths []string // -f, several allowed; empty means discovery / COMPOSE_FILE
	ProjectName string   // -p; empty means COMPOSE_PROJECT_NAME or the directory name
	ProjectDir  string   // --project-directory
	EnvFiles    []string // --env-file; empty means <project dir>/.env
	Profiles    []string // --profile; empty means COMPOSE_PROFILES
	// Services are the services a verb's arguments name: enabled whatever
	// their profiles (with the rest of those profiles), as Compose does
	// for `run SERVICE` or `up SERVICE`.
	Services []string

	// WorkingDir is where discovery starts and relative -f paths are
	// resolved; empty means the process's working directory. Tests set it
	// instead of changing the process-wide directory.
	WorkingDir string

	// CacheDir, when set, holds loaded models keyed by every input, so a
	// load whose inputs did not change skips compose-go (this package).
	CacheDir string
}

// format changes whenever the entry's layout or meaning does.
const format = "berth-load-cache-2"

// maxEntries bounds the entries kept; the oldest go first.
const maxEntries = 64

// entry is one cached load.
type entry struct {
	Format   string
	Env      string          // hash of the process environment
	Binary   string          // identity of the berth binary
	Inputs   []fileInput     // files read, and files whose absence counted
	Warnings []byte          // what compose-go logged while loading, replayed on a hit
	Project  json.RawMessage // the model (modelcodec.go)

	Unsupported []string // compose.Unsupported(the model)
}

// fileInput is a file the load depended on: its content hash, or "" when
// it did not exist.
type fileInput struct {
	Path string
	Sum  string
}

// Inputs are what one load read or looked for.
type Inputs struct {
	Paths    []string // every file read or looked for
	Compose  []string // the compose files among Paths
	Uncached string   // why this load cannot be cached; "" when it can
}

// Cache is the cache entry of one load.
type Cache struct {
	path   string // the entry's file
	env    string
	binary string
}

// Open names the entry of a load with these options by the berth binary
// whose identity is binary (see BinaryID), or returns nil when there is
// no cache.
func Open(o Options, binary string) *Cache {
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
		O      Options
	}{format, wd, o})
	if err != nil {
		return nil
	}
	return &Cache{
		path:   filepath.Join(o.CacheDir, sha256Hex(key)[:32]),
		env:    envHash(),
		binary: binary,
	}
}

// envHash hashes the process environment but for "_", which shells set
// to the path of the command they run (berth, or a wrapper such as time):
// a compose file that reads it is not cached (see Put).
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

// BinaryID identifies the berth binary at exe (os.Executable() when "")
// cheaply: hashing 30 MB at every command would cost more than the load it
// saves. A rebuilt or replaced binary has another inode or modification
// time. "" when it cannot be read: no cache then.
func BinaryID(exe string) string {
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return ""
		}
	}
	fi, err := os.Stat(exe)
	if err != nil {
		return ""
	}
	return exe + ":" + strconv.FormatInt(fi.Size(), 10) + ":" + strconv.FormatInt(fi.ModTime().UnixNano(), 10) + ":" + strconv.FormatUint(inode(fi), 10)
}

// Get returns the cached model, its Unsupported warnings and what its load
// logged (the caller replays it) when every input is as it was; a nil
// model otherwise.
func (c *Cache) Get() (*types.Project, []string, []byte) {
	if c == nil || c.binary == "" {
		return nil, nil, nil
	}
	data, err := os.ReadFile(c.path)
	if err != nil {
		return nil, nil, nil
	}
	var e entry
	if json.Unmarshal(data, &e) != nil ||
		e.Format != format || e.Env != c.env || e.Binary != c.binary {
		return nil, nil, nil
	}
	for _, in := range e.Inputs {
		if sum, _ := fileSum(in.Path); sum != in.Sum {
			return nil, nil, nil
		}
	}
	p := new(types.Project)
	if decodeModel(e.Project, p) != nil {
		return nil, nil, nil
	}
	return p, e.Unsupported, e.Warnings
}

// Put stores p and its Unsupported warnings as the result of a load that
// started at start, read in and logged warnings. Failures only mean no
// cache: the load itself succeeded.
func (c *Cache) Put(p *types.Project, unsupported []string, in Inputs, warnings []byte, start time.Time) {
	if c == nil || c.binary == "" || in.Uncached != "" {
		return
	}
	e := entry{Format: format, Env: c.env, Binary: c.binary, Warnings: warnings, Unsupported: unsupported}
	seen := map[string]bool{}
	for _, path := range in.Paths {
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
		if slices.Contains(in.Compose, path) && namesOthers(data) {
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
		prune(dir)
	}
}

// prune keeps the maxEntries newest entries of dir.
func prune(dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) <= maxEntries {
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
	for _, a := range all[min(maxEntries, len(all)):] {
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

// inode is fi's inode number.
func inode(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}
