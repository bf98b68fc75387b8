package build

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/patternmatcher"
	"github.com/moby/sys/user"
	"github.com/ulikunitz/xz"

	"github.com/berth-dev/berth/engine/image"
)

// copyCmd is a COPY or an ADD, flags included.
type copyCmd struct {
	name string // "COPY" or "ADD"
	instructions.SourcesAndDest
	from, chown, chmod, checksum string
	exclude                      []string
	parents, add                 bool
	unpack                       *bool
}

// download is an ADD source fetched over HTTP into a temporary file.
type download struct {
	url, file, name string
	mtime           time.Time
	digest          string
}

func isURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

// copyStep runs a COPY or ADD: its sources are resolved and hashed first,
// so a cache hit reads the context but mounts nothing.
func (r *run) copyStep(ctx context.Context, st *state, c copyCmd, sp *step) error {
	sp.started()
	if c.parents {
		return sp.errorf(errdefs.ErrNotImplemented, "%s --parents is not supported", c.name)
	}
	if len(c.SourcePaths) == 0 && len(c.SourceContents) == 0 {
		return sp.errorf(errdefs.ErrInvalidArgument, "%s needs a source", c.name)
	}
	var mode *fs.FileMode
	if c.chmod != "" {
		m, err := strconv.ParseUint(c.chmod, 8, 32)
		if err != nil || m > 0o7777 {
			return sp.errorf(errdefs.ErrInvalidArgument, "%s --chmod=%s: want an octal mode", c.name, c.chmod)
		}
		fm := fs.FileMode(m & 0o777)
		if m&0o4000 != 0 {
			fm |= fs.ModeSetuid
		}
		if m&0o2000 != 0 {
			fm |= fs.ModeSetgid
		}
		if m&0o1000 != 0 {
			fm |= fs.ModeSticky
		}
		mode = &fm
	}
	if c.checksum != "" && (!c.add || len(c.SourcePaths) != 1 || !isURL(c.SourcePaths[0])) {
		return sp.errorf(errdefs.ErrInvalidArgument, "ADD --checksum needs exactly one http(s) source")
	}
	dest := c.DestPath
	destIsDir := strings.HasSuffix(dest, "/") || dest == "." || dest == ".."
	dest = workdir(st, dest)

	// Sources: the context, a named context, another stage or an image.
	var (
		t         *tree
		fromStage *state
		sourceKey string
		files     [][]file // per source path, for trees read now
		downloads []download
	)
	switch {
	case c.from == "":
		t = r.ctxDir
	default:
		if j, ok := r.df.stageIndex(c.from); ok {
			s, err := r.waitStage(ctx, j)
			if err != nil {
				return sp.failed(fmt.Errorf("%s:%d: %s --from=%s: %w", r.df.Name, sp.line, c.name, c.from, err))
			}
			fromStage, sourceKey = s, "stage:"+s.key
			break
		}
		if dir, ok := r.o.Contexts[c.from]; ok && !strings.HasPrefix(dir, "docker-image://") {
			nt, err := openContext(dir, "")
			if err != nil {
				return sp.failed(fmt.Errorf("%s:%d: %s --from=%s: %w", r.df.Name, sp.line, c.name, c.from, err))
			}
			nt.name = "context " + quote(c.from)
			t = nt
			break
		}
		img, err := r.image(ctx, c.from)
		if err != nil {
			return sp.failed(fmt.Errorf("%s:%d: %s --from=%s: no stage, context or image of that name: %w", r.df.Name, sp.line, c.name, c.from, err))
		}
		cfg, err := r.b.Images.ConfigFile(img)
		if err != nil {
			return sp.failed(err)
		}
		fromStage = &state{cfg: *cfg, layers: img.Layers}
		sourceKey = "image:" + img.ID
	}
	var excl *patternmatcher.PatternMatcher
	if len(c.exclude) > 0 {
		var err error
		if excl, err = patternmatcher.New(c.exclude); err != nil {
			return sp.errorf(errdefs.ErrInvalidArgument, "%s --exclude: %v", c.name, err)
		}
	}
	sources := 0
	for _, src := range c.SourcePaths {
		if isURL(src) {
			if !c.add {
				return sp.errorf(errdefs.ErrInvalidArgument, "COPY cannot copy from a URL (%s); use ADD", src)
			}
			d, err := r.fetch(ctx, src, c.checksum)
			if err != nil {
				return sp.failed(fmt.Errorf("%s:%d: ADD %s: %w", r.df.Name, sp.line, src, err))
			}
			defer os.Remove(d.file)
			downloads = append(downloads, d)
			sources++
			continue
		}
		if t == nil {
			if escapes(src) {
				return sp.errorf(errdefs.ErrInvalidArgument, "%s %s: outside the stage's root", c.name, src)
			}
			sources++
			if hasMeta(src) {
				sources++ // a wildcard may match several: dest must be a directory
			}
			continue
		}
		fs, err := t.resolve(src)
		if err != nil {
			return sp.failed(fmt.Errorf("%s:%d: %s %w", r.df.Name, sp.line, c.name, err))
		}
		fs = excludeFiles(fs, excl)
		files = append(files, fs)
		sources += len(fs)
	}
	sources += len(c.SourceContents)
	if sources > 1 && !destIsDir {
		return sp.errorf(errdefs.ErrInvalidArgument, "%s with more than one source file: the destination must be a directory and end with a /", c.name)
	}

	var contentHash string
	if t != nil {
		var all []file
		for _, fs := range files {
			all = append(all, fs...)
		}
		h, err := t.hash(all, excl)
		if err != nil {
			return sp.failed(fmt.Errorf("%s:%d: %s: %w", r.df.Name, sp.line, c.name, err))
		}
		contentHash = h
	}
	var dl []string
	for _, d := range downloads {
		dl = append(dl, d.url+"@"+d.digest)
	}
	createdBy := sp.text
	k := key(st.key, c.name, c.SourcePaths, c.SourceContents, c.DestPath, st.cfg.Config.WorkingDir, c.chown, c.chmod,
		c.exclude, c.unpack, sourceKey, contentHash, dl)
	if r.cachedStep(st, k, sp) {
		return nil
	}
	layer, err := r.change(ctx, st, func(rootfs string) error {
		cp := &copier{rootfs: rootfs, opts: copyOpts{chmod: mode}}
		if c.chown != "" {
			uid, gid, err := resolveChown(rootfs, c.chown)
			if err != nil {
				return fmt.Errorf("--chown=%s: %w", c.chown, err)
			}
			cp.opts.uid, cp.opts.gid, cp.opts.chown = uid, gid, true
		}
		if fromStage != nil {
			m, err := r.mount(ctx, fromStage)
			if err != nil {
				return err
			}
			defer r.release(ctx, m)
			t = &tree{root: m.rootfs, owners: true, name: "stage " + quote(c.from)}
			if fromStage.key == "" {
				t.name = "image " + quote(c.from)
			}
			for _, src := range c.SourcePaths {
				fs, err := t.resolve(src)
				if err != nil {
					return err
				}
				files = append(files, excludeFiles(fs, excl))
			}
			if n := len(files); n > 0 && (n > 1 || len(files[0]) > 1) && !destIsDir {
				return fmt.Errorf("with more than one source file the destination must be a directory and end with a /: %w", errdefs.ErrInvalidArgument)
			}
		}
		for _, fs := range files {
			for _, f := range fs {
				if err := r.copyOne(ctx, cp, t, f, dest, destIsDir, c, excl); err != nil {
					return err
				}
			}
		}
		for _, d := range downloads {
			target := dest
			if destIsDir || cp.isDir(dest) {
				target = path.Join(dest, d.name)
			}
			f, err := os.Open(d.file)
			if err != nil {
				return err
			}
			err = cp.writeFile(target, f, 0o600, d.mtime)
			f.Close()
			if err != nil {
				return err
			}
		}
		for _, sc := range c.SourceContents {
			target := dest
			if destIsDir || cp.isDir(dest) {
				target = path.Join(dest, sc.Path)
			}
			if err := cp.writeFile(target, strings.NewReader(sc.Data), 0o644, time.Time{}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return sp.failed(fmt.Errorf("%s:%d: %s: %w", r.df.Name, sp.line, c.name, err))
	}
	if err := r.commitStep(st, k, layer, createdBy); err != nil {
		return sp.failed(err)
	}
	sp.done()
	return nil
}

// copyOne copies one resolved source; ADD unpacks a local archive.
func (r *run) copyOne(ctx context.Context, cp *copier, t *tree, f file, dest string, destIsDir bool, c copyCmd, excl *patternmatcher.PatternMatcher) error {
	if c.add && f.info.Mode().IsRegular() && (c.unpack == nil || *c.unpack) {
		ok, err := r.unpackArchive(ctx, cp, t.abs(f.rel), dest)
		if err != nil || ok {
			return err
		}
	}
	target := dest
	if !f.info.IsDir() && (destIsDir || cp.isDir(dest)) {
		target = path.Join(dest, path.Base(filepath.ToSlash(f.rel)))
	}
	if f.info.IsDir() {
		if err := cp.mkdirAll(dest); err != nil {
			return err
		}
	}
	return cp.copyTree(t, f, target, excl)
}

// excludeFiles drops the files COPY --exclude names.
func excludeFiles(fs []file, pm *patternmatcher.PatternMatcher) []file {
	if pm == nil {
		return fs
	}
	var out []file
	for _, f := range fs {
		if m, _ := pm.MatchesOrParentMatches(filepath.ToSlash(f.rel)); !m {
			out = append(out, f)
		}
	}
	return out
}

// unpackArchive extracts a local tar archive (plain, gzip, bzip2, xz or zstd)
// into directory dest, as ADD does; it reports false for a file that is
// not one.
func (r *run) unpackArchive(ctx context.Context, cp *copier, src, dest string) (bool, error) {
	open := func() (io.Reader, func(), bool, error) {
		f, err := os.Open(src)
		if err != nil {
			return nil, nil, false, err
		}
		br := bufio.NewReader(f)
		magic, _ := br.Peek(6)
		var rd io.Reader = br
		closeAll := func() { f.Close() }
		switch {
		case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
			zr, err := gzip.NewReader(br)
			if err != nil {
				return nil, closeAll, false, nil
			}
			rd = zr
		case bytes.HasPrefix(magic, []byte("BZh")):
			rd = bzip2.NewReader(br)
		case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
			zr, err := zstd.NewReader(br)
			if err != nil {
				return nil, closeAll, false, nil
			}
			closeAll = func() { zr.Close(); f.Close() }
			rd = zr
		case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}):
			zr, err := xz.NewReader(br)
			if err != nil {
				return nil, closeAll, false, nil
			}
			rd = zr
		}
		return rd, closeAll, true, nil
	}
	rd, closeAll, ok, err := open()
	if err != nil || !ok {
		if closeAll != nil {
			closeAll()
		}
		return false, err
	}
	hdr, err := tar.NewReader(rd).Next()
	closeAll()
	if err != nil || hdr == nil || hdr.Name == "" {
		return false, nil // not an archive: copied as it is
	}
	if err := cp.mkdirAll(dest); err != nil {
		return false, err
	}
	host, err := cp.dest(dest)
	if err != nil {
		return false, err
	}
	rd, closeAll, _, err = open()
	if err != nil {
		return false, err
	}
	defer closeAll()
	if _, err := image.Apply(ctx, host, rd); err != nil {
		return false, fmt.Errorf("unpack %s: %w", filepath.Base(src), err)
	}
	return true, nil
}

// fetch downloads an ADD URL into the run's directory and checks its
// checksum ("sha256:<hex>") when one is given.
func (r *run) fetch(ctx context.Context, raw, checksum string) (download, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return download{}, fmt.Errorf("%v: %w", err, errdefs.ErrInvalidArgument)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return download{}, fmt.Errorf("%v: %w", err, errdefs.ErrInvalidArgument)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return download{}, fmt.Errorf("%v: %w", err, errdefs.ErrUnavailable)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return download{}, fmt.Errorf("%s: %w", resp.Status, errdefs.ErrUnavailable)
	}
	if err := r.claim(ctx); err != nil {
		return download{}, err
	}
	f, err := os.CreateTemp(r.dir, "download-")
	if err != nil {
		return download{}, err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h), resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return download{}, err
	}
	d := download{url: raw, file: f.Name(), digest: "sha256:" + hex.EncodeToString(h.Sum(nil))}
	if checksum != "" && checksum != d.digest {
		os.Remove(f.Name())
		return download{}, fmt.Errorf("checksum mismatch: got %s, want %s: %w", d.digest, checksum, errdefs.ErrInvalidArgument)
	}
	d.name = path.Base(u.Path)
	if _, params, err := mime.ParseMediaType(resp.Header.Get("Content-Disposition")); err == nil && params["filename"] != "" {
		d.name = path.Base(params["filename"])
	}
	if d.name == "/" || d.name == "." || d.name == "" {
		d.name = "index.html"
	}
	if lm, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		d.mtime = lm
	}
	return d, nil
}

// resolveChown turns "user[:group]" (names or numbers) into ids, names
// looked up in the image; a missing group is the user's id, as in Docker.
func resolveChown(rootfs, spec string) (int, int, error) {
	u, g, hasGroup := strings.Cut(spec, ":")
	uid, err := lookupID(u, func(name string) (int, error) {
		p, err := securejoin.SecureJoin(rootfs, "/etc/passwd")
		if err != nil {
			return 0, err
		}
		us, err := user.ParsePasswdFileFilter(p, func(e user.User) bool { return e.Name == name })
		if err != nil || len(us) == 0 {
			return 0, fmt.Errorf("no user %q in the image: %w", name, errdefs.ErrNotFound)
		}
		return us[0].Uid, nil
	})
	if err != nil {
		return 0, 0, err
	}
	if !hasGroup {
		return uid, uid, nil
	}
	gid, err := lookupID(g, func(name string) (int, error) {
		p, err := securejoin.SecureJoin(rootfs, "/etc/group")
		if err != nil {
			return 0, err
		}
		gs, err := user.ParseGroupFileFilter(p, func(e user.Group) bool { return e.Name == name })
		if err != nil || len(gs) == 0 {
			return 0, fmt.Errorf("no group %q in the image: %w", name, errdefs.ErrNotFound)
		}
		return gs[0].Gid, nil
	})
	return uid, gid, err
}

func lookupID(s string, byName func(string) (int, error)) (int, error) {
	if s == "" {
		return 0, fmt.Errorf("empty user or group: %w", errdefs.ErrInvalidArgument)
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("negative id %d: %w", n, errdefs.ErrInvalidArgument)
		}
		return n, nil
	}
	return byName(s)
}

// workdirStep sets the working directory and creates it, as BuildKit does.
func (r *run) workdirStep(ctx context.Context, st *state, c *instructions.WorkdirCommand, sp *step) error {
	sp.started()
	st.cfg.Config.WorkingDir = workdir(st, c.Path)
	k := key(st.key, "WORKDIR", st.cfg.Config.WorkingDir, st.cfg.Config.User)
	if r.cachedStep(st, k, sp) {
		return nil
	}
	layer, err := r.change(ctx, st, func(rootfs string) error {
		cp := &copier{rootfs: rootfs}
		if u := st.cfg.Config.User; u != "" {
			// The directory belongs to the USER in effect, as in BuildKit.
			if uid, gid, err := resolveChown(rootfs, u); err == nil {
				cp.opts.uid, cp.opts.gid = uid, gid
			}
		}
		return cp.mkdirAll(st.cfg.Config.WorkingDir)
	})
	if err != nil {
		return sp.failed(fmt.Errorf("%s:%d: WORKDIR: %w", r.df.Name, sp.line, err))
	}
	if err := r.commitStep(st, k, layer, sp.text); err != nil {
		return sp.failed(err)
	}
	sp.done()
	return nil
}
