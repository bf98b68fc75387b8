package build

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/containerd/errdefs"
	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/internal/lockfile"
)

// runStep runs a RUN instruction in a container on the stage's root.
func (r *run) runStep(ctx context.Context, st *state, c *instructions.RunCommand, sp *step) error {
	sp.started()
	if sec := instructions.GetSecurity(c); sec == instructions.SecurityInsecure {
		return sp.errorf(errdefs.ErrNotImplemented, "RUN --security=insecure is not supported")
	}
	if len(instructions.GetDevices(c)) > 0 {
		return sp.errorf(errdefs.ErrNotImplemented, "RUN --device is not supported")
	}
	network := instructions.GetNetwork(c)
	if network == instructions.NetworkDefault {
		network = r.o.Network
	}
	if network == "" {
		network = instructions.NetworkDefault
	}
	args, script, err := runArgs(st, c)
	if err != nil {
		return sp.errorf(errdefs.ErrInvalidArgument, "RUN: %v", err)
	}
	mounts := instructions.GetMounts(c)
	mountKeys, err := r.mountKeys(ctx, mounts)
	if err != nil {
		return sp.failed(fmt.Errorf("%s:%d: RUN --mount: %w", r.df.Name, sp.line, err))
	}
	// The key has the image's environment and every declared ARG, set or
	// used or not (as in Docker): a changed build argument reruns the
	// steps after its ARG line.
	argNames := slices.Sorted(maps.Keys(st.args))
	var argEnv []string
	for _, n := range argNames {
		argEnv = append(argEnv, n+"="+st.args[n])
	}
	cfg := st.cfg.Config
	k := key(st.key, "RUN", args, script, cfg.Env, argEnv, mountKeys, network, cfg.User, cfg.WorkingDir, r.o.ExtraHosts)
	createdBy := "RUN " + strings.Join(args, " ")
	if len(argEnv) > 0 {
		createdBy = fmt.Sprintf("RUN |%d %s %s", len(argEnv), strings.Join(argEnv, " "), strings.Join(args, " "))
	}
	if r.cachedStep(st, k, sp) {
		return nil
	}
	if r.b.Exec == nil {
		return sp.errorf(errdefs.ErrNotImplemented, "RUN needs a runtime, and this builder has none")
	}
	out := &lineWriter{emit: sp.log, keep: 10}
	layer, err := r.change(ctx, st, func(rootfs string) error {
		return r.execute(ctx, st, rootfs, args, script, mounts, network, out)
	})
	out.flush()
	if err != nil {
		var exit *exitError
		if errors.As(err, &exit) {
			exit.tail = out.tail()
			return sp.failed(fmt.Errorf("%s:%d: RUN %s: %w", r.df.Name, sp.line, strings.Join(args, " "), exit))
		}
		return sp.failed(fmt.Errorf("%s:%d: RUN: %w", r.df.Name, sp.line, err))
	}
	if err := r.commitStep(st, k, layer, createdBy); err != nil {
		return sp.failed(err)
	}
	sp.done()
	return nil
}

// exitError is a RUN whose process failed: its exit code and last lines.
type exitError struct {
	code int
	tail string
}

func (e *exitError) Error() string {
	return fmt.Sprintf("did not complete successfully: exit code %d%s", e.code, e.tail)
}

// runArgs is the command of a RUN: exec form as written, shell form with
// the stage's shell. A RUN that is just one heredoc runs its content as a
// script (a file, when it starts with "#!"); other heredocs go to the
// shell, which reads them itself.
func runArgs(st *state, c *instructions.RunCommand) (args []string, script string, err error) {
	cmd := c.ShellDependantCmdLine
	if len(c.Files) > 0 {
		if len(cmd.CmdLine) != 1 || !cmd.PrependShell {
			return nil, "", fmt.Errorf("a heredoc needs the shell form")
		}
		if h := parser.MustParseHeredoc(cmd.CmdLine[0]); h != nil {
			data := c.Files[0].Data
			if c.Files[0].Chomp {
				data = parser.ChompHeredocContent(data)
			}
			if strings.HasPrefix(data, "#!") {
				return []string{"/dev/pipes/" + c.Files[0].Name}, data, nil
			}
			cmd = instructions.ShellDependantCmdLine{CmdLine: []string{data}, PrependShell: true}
		} else {
			full := cmd.CmdLine[0]
			for _, f := range c.Files {
				full += "\n" + f.Data + f.Name
			}
			cmd = instructions.ShellDependantCmdLine{CmdLine: []string{full}, PrependShell: true}
		}
	}
	if !cmd.PrependShell && len(cmd.CmdLine) == 0 {
		return nil, "", fmt.Errorf("no command")
	}
	sh := st.cfg.Config.Shell
	if !cmd.PrependShell {
		return slices.Clone(cmd.CmdLine), "", nil
	}
	if len(sh) == 0 {
		sh = []string{"/bin/sh", "-c"}
	}
	return append(slices.Clone(sh), strings.Join(cmd.CmdLine, " ")), "", nil
}

// mountKey is what of a RUN --mount goes into the step's key: a bind's
// content (by hash or by the stage's key), never a cache's.
type mountKey struct {
	Type, Target, Source, From string
	ReadOnly                   bool
	Content                    string `json:",omitempty"`
	Env                        string `json:",omitempty"`
}

func (r *run) mountKeys(ctx context.Context, ms []*instructions.Mount) ([]mountKey, error) {
	var out []mountKey
	for _, m := range ms {
		mk := mountKey{Type: string(m.Type), Target: m.Target, Source: m.Source, From: m.From, ReadOnly: m.ReadOnly}
		if m.Env != nil {
			mk.Env = *m.Env
		}
		switch m.Type {
		case instructions.MountTypeSSH:
			return nil, fmt.Errorf("type=ssh is not supported: %w", errdefs.ErrNotImplemented)
		case instructions.MountTypeBind:
			if m.From == "" {
				fs, err := r.ctxDir.resolve(orDot(m.Source))
				if err != nil {
					return nil, err
				}
				h, err := r.ctxDir.hash(fs, nil)
				if err != nil {
					return nil, err
				}
				mk.Content = h
			} else if j, ok := r.df.stageIndex(m.From); ok {
				s, err := r.waitStage(ctx, j)
				if err != nil {
					return nil, err
				}
				mk.Content = "stage:" + s.key
			} else if dir, ok := r.o.Contexts[m.From]; ok && !strings.HasPrefix(dir, "docker-image://") {
				t, err := openContext(dir, "")
				if err != nil {
					return nil, err
				}
				fs, err := t.resolve(orDot(m.Source))
				if err != nil {
					return nil, err
				}
				if mk.Content, err = t.hash(fs, nil); err != nil {
					return nil, err
				}
			} else {
				img, err := r.image(ctx, m.From)
				if err != nil {
					return nil, err
				}
				mk.Content = "image:" + img.ID
			}
		case instructions.MountTypeCache:
			if m.From != "" {
				return nil, fmt.Errorf("type=cache,from= is not supported: %w", errdefs.ErrNotImplemented)
			}
		}
		if m.Target == "" && m.Type != instructions.MountTypeSecret {
			return nil, fmt.Errorf("type=%s needs a target: %w", m.Type, errdefs.ErrInvalidArgument)
		}
		out = append(out, mk)
	}
	return out, nil
}

func orDot(s string) string {
	if s == "" {
		return "."
	}
	return s
}

// execute runs the RUN's process on rootfs with its mounts, then removes
// the mount points it had to create, so they are not part of the layer.
func (r *run) execute(ctx context.Context, st *state, rootfs string, args []string, script string, ms []*instructions.Mount, network string, out *lineWriter) error {
	cfg := st.cfg.Config
	uid, gid, groups, err := container.ResolveUser(rootfs, cfg.User)
	if err != nil {
		return err
	}
	cwd := cfg.WorkingDir
	if cwd == "" {
		cwd = "/"
	}
	if p, err := securejoin.SecureJoin(rootfs, cwd); err == nil {
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		}
	}
	env := slices.Clone(cfg.Env)
	has := map[string]bool{}
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		has[k] = true
	}
	for _, n := range slices.Sorted(maps.Keys(st.args)) {
		if !has[n] {
			env = append(env, n+"="+st.args[n])
			has[n] = true
		}
	}
	for _, n := range proxyArgs {
		if v, ok := r.o.Args[n]; ok && !has[n] {
			env = append(env, n+"="+v)
		}
	}
	if !has["PATH"] {
		env = append(env, "PATH="+defaultPath)
	}
	var cleanups []func()
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}()
	var specMounts []specs.Mount
	if script != "" {
		dir := filepath.Join(r.dir, "pipes-"+filepath.Base(filepath.Dir(rootfs)))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		cleanups = append(cleanups, func() { os.RemoveAll(dir) })
		if err := os.WriteFile(filepath.Join(dir, path.Base(args[0])), []byte(script), 0o755); err != nil {
			return err
		}
		specMounts = append(specMounts, specs.Mount{Destination: "/dev/pipes", Type: "bind", Source: dir, Options: []string{"rbind", "ro"}})
	}
	for _, m := range ms {
		sm, extraEnv, cleanup, err := r.runMount(ctx, m, rootfs)
		if cleanup != nil {
			cleanups = append(cleanups, cleanup)
		}
		if err != nil {
			return err
		}
		if sm != nil {
			specMounts = append(specMounts, *sm)
		}
		env = append(env, extraEnv...)
	}
	// Mount points the runtime creates when missing: remove the ones that
	// were missing afterwards, so they do not land in the layer.
	points := []string{"/proc", "/sys", "/dev", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf"}
	for _, m := range specMounts {
		points = append(points, m.Destination)
	}
	created := missingPaths(rootfs, points)
	defer removeStubs(rootfs, created)

	code, err := r.b.Exec.Run(ctx, Process{
		ID: filepath.Base(filepath.Dir(rootfs)), Rootfs: rootfs, Args: args, Env: env, Cwd: cwd,
		UID: uid, GID: gid, Groups: groups, Network: network, ExtraHosts: r.o.ExtraHosts,
		Mounts: specMounts, ShmSize: r.o.ShmSize, Ulimits: r.o.Ulimits, Output: out,
	})
	if err != nil {
		return err
	}
	if code != 0 {
		return &exitError{code: code}
	}
	return nil
}

// runMount prepares one RUN --mount.
func (r *run) runMount(ctx context.Context, m *instructions.Mount, rootfs string) (*specs.Mount, []string, func(), error) {
	target := m.Target
	switch m.Type {
	case instructions.MountTypeCache:
		id := m.CacheID
		if id == "" {
			id = target
		}
		sum := sha256.Sum256([]byte(id))
		dir := filepath.Join(r.b.MountsDir, hex.EncodeToString(sum[:16]))
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, nil, nil, err
			}
			mode := fs.FileMode(0o755)
			if m.Mode != nil {
				mode = fs.FileMode(*m.Mode)
			}
			os.Chmod(dir, mode)
			os.Lchown(dir, intOr(m.UID, 0), intOr(m.GID, 0))
		}
		var cleanup func()
		if m.CacheSharing == instructions.MountSharingLocked {
			l, err := lockfile.Acquire(ctx, dir+".lock")
			if err != nil {
				return nil, nil, nil, err
			}
			cleanup = func() { l.Unlock() }
		}
		opts := []string{"rbind"}
		if m.ReadOnly {
			opts = append(opts, "ro")
		}
		return &specs.Mount{Destination: workdirAbs(target), Type: "bind", Source: dir, Options: opts}, nil, cleanup, nil
	case instructions.MountTypeTmpfs:
		opts := []string{"nosuid", "nodev"}
		if m.SizeLimit > 0 {
			opts = append(opts, fmt.Sprintf("size=%d", m.SizeLimit))
		}
		return &specs.Mount{Destination: workdirAbs(target), Type: "tmpfs", Source: "tmpfs", Options: opts}, nil, nil, nil
	case instructions.MountTypeSecret:
		id := m.CacheID
		if id == "" {
			id = path.Base(target)
		}
		if id == "" || id == "." || id == "/" {
			return nil, nil, nil, fmt.Errorf("type=secret needs an id or a target: %w", errdefs.ErrInvalidArgument)
		}
		content, ok, err := r.secret(id)
		if err != nil {
			return nil, nil, nil, err
		}
		if !ok {
			if m.Required {
				return nil, nil, nil, fmt.Errorf("secret %q is required but was not given: %w", id, errdefs.ErrNotFound)
			}
			return nil, nil, nil, nil
		}
		var env []string
		if m.Env != nil && *m.Env != "" {
			env = append(env, *m.Env+"="+string(content))
			if target == "" {
				return nil, env, nil, nil
			}
		}
		if target == "" {
			target = "/run/secrets/" + id
		}
		f, err := os.CreateTemp(r.dir, "secret-")
		if err != nil {
			return nil, nil, nil, err
		}
		cleanup := func() { os.Remove(f.Name()) }
		_, err = f.Write(content)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		mode := fs.FileMode(0o400)
		if m.Mode != nil {
			mode = fs.FileMode(*m.Mode)
		}
		if err == nil {
			err = os.Chmod(f.Name(), mode)
		}
		if err == nil {
			err = os.Chown(f.Name(), intOr(m.UID, 0), intOr(m.GID, 0))
		}
		if err != nil {
			return nil, nil, cleanup, err
		}
		return &specs.Mount{Destination: workdirAbs(target), Type: "bind", Source: f.Name(), Options: []string{"rbind", "ro"}}, env, cleanup, nil
	case instructions.MountTypeBind:
		return r.bindMount(ctx, m)
	}
	return nil, nil, nil, fmt.Errorf("type=%s is not supported: %w", m.Type, errdefs.ErrNotImplemented)
}

// bindMount mounts a directory of the context, a named context, a stage
// or an image; writes to a read-write one are thrown away.
func (r *run) bindMount(ctx context.Context, m *instructions.Mount) (*specs.Mount, []string, func(), error) {
	var root string
	var cleanups []func()
	cleanup := func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}
	switch {
	case m.From == "":
		if r.ctxDir.ignore != nil {
			// Ignored files are not part of the context: bind a copy of
			// what is.
			dir, err := r.filteredContext(ctx)
			if err != nil {
				return nil, nil, nil, err
			}
			root = dir
		} else {
			root = r.ctxDir.root
		}
	default:
		if dir, ok := r.o.Contexts[m.From]; ok && !strings.HasPrefix(dir, "docker-image://") {
			root = dir
			break
		}
		var st *state
		if j, ok := r.df.stageIndex(m.From); ok {
			s, err := r.waitStage(ctx, j)
			if err != nil {
				return nil, nil, nil, err
			}
			st = s
		} else {
			img, err := r.image(ctx, m.From)
			if err != nil {
				return nil, nil, nil, err
			}
			st = &state{layers: img.Layers}
		}
		mt, err := r.mount(ctx, st)
		if err != nil {
			return nil, nil, nil, err
		}
		cleanups = append(cleanups, func() { r.release(ctx, mt) })
		root = mt.rootfs
	}
	src, err := securejoin.SecureJoin(root, orDot(m.Source))
	if err != nil {
		cleanup()
		return nil, nil, nil, err
	}
	if _, err := os.Stat(src); err != nil {
		cleanup()
		return nil, nil, nil, fmt.Errorf("source %s: %w", orDot(m.Source), notFound(err))
	}
	if !m.ReadOnly {
		// Read-write: an overlay whose upper layer is thrown away.
		dir, err := os.MkdirTemp(r.dir, "rw-")
		if err != nil {
			cleanup()
			return nil, nil, nil, err
		}
		cleanups = append(cleanups, func() { os.RemoveAll(dir) })
		merged := filepath.Join(dir, "merged")
		for _, d := range []string{"upper", "work", "merged"} {
			os.Mkdir(filepath.Join(dir, d), 0o755)
		}
		if st, err := os.Stat(src); err == nil && !st.IsDir() {
			cleanup()
			return nil, nil, nil, fmt.Errorf("source %s: a read-write bind of a file is not supported: %w", m.Source, errdefs.ErrNotImplemented)
		}
		opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", src, filepath.Join(dir, "upper"), filepath.Join(dir, "work"))
		if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
			cleanup()
			return nil, nil, nil, fmt.Errorf("read-write bind: %w", err)
		}
		cleanups = append(cleanups, func() { unix.Unmount(merged, unix.MNT_DETACH) })
		src = merged
	}
	opts := []string{"rbind"}
	if m.ReadOnly {
		opts = append(opts, "ro")
	}
	return &specs.Mount{Destination: workdirAbs(m.Target), Type: "bind", Source: src, Options: opts}, nil, cleanup, nil
}

// filteredContext copies the context less its ignored files, once per
// build, for RUN --mount=type=bind.
func (r *run) filteredContext(ctx context.Context) (string, error) {
	r.filterOnce.Do(func() {
		dir := filepath.Join(r.dir, "context")
		cp := &copier{rootfs: dir}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			r.filterErr = err
			return
		}
		info, err := os.Lstat(r.ctxDir.root)
		if err != nil {
			r.filterErr = err
			return
		}
		r.filterErr = cp.copyTree(&tree{root: r.ctxDir.root, ignore: r.ctxDir.ignore, owners: true, name: r.ctxDir.name}, file{rel: ".", info: info}, "/", nil)
		r.filterDir = dir
	})
	return r.filterDir, r.filterErr
}

// secret reads a build secret's content.
func (r *run) secret(id string) ([]byte, bool, error) {
	s, ok := r.o.Secrets[id]
	if !ok {
		return nil, false, nil
	}
	if s.Env != "" {
		v, ok := os.LookupEnv(s.Env)
		return []byte(v), ok, nil
	}
	b, err := os.ReadFile(s.File)
	if err != nil {
		return nil, false, fmt.Errorf("secret %q: %w", id, err)
	}
	return b, true, nil
}

func intOr(p *uint64, d int) int {
	if p == nil {
		return d
	}
	return int(*p)
}

// workdirAbs makes a mount target absolute (relative ones are below "/").
func workdirAbs(p string) string { return path.Join("/", p) }

// missingPaths returns the paths (and their missing parents) that do not
// exist in rootfs, deepest first.
func missingPaths(rootfs string, paths []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range paths {
		for cur := path.Clean("/" + p); cur != "/"; cur = path.Dir(cur) {
			if seen[cur] {
				break
			}
			host, err := securejoin.SecureJoin(rootfs, cur)
			if err != nil {
				break
			}
			if _, err := os.Lstat(host); err == nil {
				break
			}
			seen[cur] = true
			out = append(out, cur)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	return out
}

// removeStubs removes mount points the runtime created, when they are
// still empty.
func removeStubs(rootfs string, paths []string) {
	for _, p := range paths {
		host, err := securejoin.SecureJoin(rootfs, p)
		if err != nil {
			continue
		}
		st, err := os.Lstat(host)
		if err != nil || (st.Mode().IsRegular() && st.Size() > 0) {
			continue
		}
		os.Remove(host) // fails, as it should, on a directory with content
	}
}

// lineWriter splits a step's output into lines for the progress display
// and keeps the last few for an error message.
type lineWriter struct {
	mu   sync.Mutex
	emit func(string)
	keep int
	buf  []byte
	last []string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.line(string(bytes.TrimRight(w.buf[:i], "\r")))
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

func (w *lineWriter) line(s string) {
	w.emit(s)
	w.last = append(w.last, s)
	if len(w.last) > w.keep {
		w.last = w.last[1:]
	}
}

func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.line(string(w.buf))
		w.buf = nil
	}
}

// tail is the last lines of output, for an error message.
func (w *lineWriter) tail() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.last) == 0 {
		return ""
	}
	return "; last output:\n    " + strings.Join(w.last, "\n    ") + "\n"
}
