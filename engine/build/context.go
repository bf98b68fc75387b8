package build

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containerd/errdefs"
	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// tree is a directory COPY reads from: the build context (less what its
// ignore file excludes), another stage's or an image's root. Paths never
// leave it: ".." stops at its top and symlinks resolve inside it.
type tree struct {
	root   string                         // absolute
	ignore *patternmatcher.PatternMatcher // nil: nothing excluded
	// owners: keep files' owners (a stage or image); the context's files
	// belong to root in the image, as with Docker.
	owners bool
	name   string // for messages: "build context", "stage builder"
}

// openContext opens a local build context. Its ignore rules come from
// "<Dockerfile>.dockerignore" beside the Dockerfile when there is one,
// else from the context's ".dockerignore", with Docker's pattern rules
// ("!" exceptions included).
func openContext(dir, dockerfile string) (*tree, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("build context %s: %w", dir, notFound(err))
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("build context %s: not a directory: %w", dir, errdefs.ErrInvalidArgument)
	}
	t := &tree{root: abs, name: "build context"}
	if t.ignore, err = Dockerignore(abs, dockerfile); err != nil {
		return nil, err
	}
	return t, nil
}

// Dockerignore reads the ignore rules of a build of dir with dockerfile
// (relative to dir unless absolute; "" for none): "<Dockerfile>.dockerignore"
// when there is one, else dir's ".dockerignore". Nil when there are none.
func Dockerignore(dir, dockerfile string) (*patternmatcher.PatternMatcher, error) {
	candidates := []string{filepath.Join(dir, ".dockerignore")}
	if dockerfile != "" {
		if !filepath.IsAbs(dockerfile) {
			dockerfile = filepath.Join(dir, dockerfile)
		}
		candidates = append([]string{dockerfile + ".dockerignore"}, candidates...)
	}
	for _, p := range candidates {
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		patterns, err := ignorefile.ReadAll(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %v: %w", p, err, errdefs.ErrInvalidArgument)
		}
		if len(patterns) == 0 {
			return nil, nil
		}
		pm, err := patternmatcher.New(patterns)
		if err != nil {
			return nil, fmt.Errorf("%s: %v: %w", p, err, errdefs.ErrInvalidArgument)
		}
		return pm, nil
	}
	return nil, nil
}

func notFound(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return errdefs.ErrNotFound
	}
	return err
}

// file is one path of a tree: rel is its name relative to the tree's
// root, after symlinks were resolved.
type file struct {
	rel  string
	info fs.FileInfo
}

func (t *tree) abs(rel string) string { return filepath.Join(t.root, rel) }

// excluded reports whether the ignore rules leave rel out.
func (t *tree) excluded(rel string) bool {
	if t.ignore == nil || rel == "." || rel == "" {
		return false
	}
	m, err := t.ignore.MatchesOrParentMatches(filepath.ToSlash(rel))
	return err == nil && m
}

// resolve finds the files a COPY or ADD source names: one path, followed
// through symlinks inside the tree, or every path a wildcard matches.
func (t *tree) resolve(src string) ([]file, error) {
	clean := path.Clean("/" + filepath.ToSlash(src))
	if escapes(src) {
		return nil, fmt.Errorf("%s: outside the %s: %w", src, t.name, errdefs.ErrInvalidArgument)
	}
	rel := strings.TrimPrefix(clean, "/")
	if rel == "" {
		rel = "."
	}
	if !hasMeta(rel) {
		p, err := securejoin.SecureJoin(t.root, rel)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", src, err)
		}
		real, err := filepath.Rel(t.root, p)
		if err != nil {
			return nil, err
		}
		info, err := os.Lstat(p)
		if err != nil || t.excluded(real) {
			return nil, fmt.Errorf("%s: not found in the %s: %w", src, t.name, errdefs.ErrNotFound)
		}
		return []file{{rel: real, info: info}}, nil
	}
	var out []file
	depth := strings.Count(rel, "/")
	err := filepath.WalkDir(t.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		r, _ := filepath.Rel(t.root, p)
		if r == "." {
			return nil
		}
		if t.excluded(r) {
			if d.IsDir() && !t.ignore.Exclusions() {
				return filepath.SkipDir
			}
			return nil
		}
		if ok, _ := path.Match(rel, filepath.ToSlash(r)); ok {
			info, err := d.Info()
			if err != nil {
				return err
			}
			out = append(out, file{rel: r, info: info})
		}
		if d.IsDir() && strings.Count(r, "/") >= depth {
			return filepath.SkipDir
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no file in the %s matches: %w", src, t.name, errdefs.ErrNotFound)
	}
	return out, nil
}

// escapes reports whether a source path climbs above its tree's top.
func escapes(src string) bool {
	depth := 0
	for _, c := range strings.Split(filepath.ToSlash(src), "/") {
		switch c {
		case "", ".":
		case "..":
			depth--
			if depth < 0 {
				return true
			}
		default:
			depth++
		}
	}
	return false
}

func hasMeta(p string) bool { return strings.ContainsAny(p, `*?[\`) }

// walk calls fn for f and, when f is a directory, everything below it
// that the ignore rules and excl (COPY --exclude, matched against the
// path below f) keep, in lexical order; sub is the path below f ("" for
// f itself). Symlinks below f are not followed.
func (t *tree) walk(f file, excl *patternmatcher.PatternMatcher, fn func(sub string, abs string, info fs.FileInfo) error) error {
	if err := fn("", t.abs(f.rel), f.info); err != nil {
		return err
	}
	if !f.info.IsDir() {
		return nil
	}
	base := t.abs(f.rel)
	return filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == base {
			return nil
		}
		r, _ := filepath.Rel(t.root, p)
		if t.excluded(r) {
			if d.IsDir() && !t.ignore.Exclusions() {
				return filepath.SkipDir
			}
			if !d.IsDir() {
				return nil
			}
			// An excluded directory may hold re-included files: walk it,
			// but give it no entry of its own unless something below is kept.
			return nil
		}
		sub, _ := filepath.Rel(base, p)
		if excl != nil {
			if m, _ := excl.MatchesOrParentMatches(filepath.ToSlash(sub)); m {
				if d.IsDir() && !excl.Exclusions() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return fn(sub, p, info)
	})
}

// hash digests what a COPY of files would write, apart from owners and
// times: names, types, modes, link targets and contents.
func (t *tree) hash(files []file, excl *patternmatcher.PatternMatcher) (string, error) {
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "source %s\x00", f.rel)
		err := t.walk(f, excl, func(sub, abs string, info fs.FileInfo) error {
			fmt.Fprintf(h, "%s\x00%o\x00", sub, info.Mode())
			if t.owners {
				uid, gid := owner(info)
				fmt.Fprintf(h, "%d:%d\x00", uid, gid)
			}
			switch {
			case info.Mode()&fs.ModeSymlink != 0:
				l, err := os.Readlink(abs)
				if err != nil {
					return err
				}
				fmt.Fprintf(h, "%s\x00", l)
			case info.Mode().IsRegular():
				fh, err := os.Open(abs)
				if err != nil {
					return err
				}
				_, err = io.Copy(h, fh)
				fh.Close()
				if err != nil {
					return err
				}
				h.Write([]byte{0})
			}
			return nil
		})
		if err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// sortFiles orders matches the way their copies are written.
func sortFiles(fs []file) {
	slices.SortFunc(fs, func(a, b file) int { return strings.Compare(a.rel, b.rel) })
}
