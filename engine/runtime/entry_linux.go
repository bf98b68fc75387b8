package runtime

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/sys/capability"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
)

// entryCommand is the argument that makes this binary the container entry.
const entryCommand = "container-entry"

// entry is the container entry's command line:
//
//	/proc/self/exe container-entry SECCOMP_FD CAPS INIT -- COMMAND...
type entry struct {
	seccompFD int    // a sealed memfd with the program, or -1
	caps      string // "B:E:P:I:A" capability masks in hex, or "-"
	init      bool   // run the minimal init instead of exec'ing COMMAND
	args      []string
}

func (e entry) argv() []string {
	init := "0"
	if e.init {
		init = "1"
	}
	return append([]string{"/proc/self/exe", entryCommand, strconv.Itoa(e.seccompFD), e.caps, init, "--"}, e.args...)
}

// parseEntry reads an entry command line back; ok is false for any other.
func parseEntry(args []string) (e entry, ok bool) {
	if len(args) < 7 || args[0] != "/proc/self/exe" || args[1] != entryCommand || args[5] != "--" {
		return entry{}, false
	}
	fd, err := strconv.Atoi(args[2])
	if err != nil {
		return entry{}, false
	}
	return entry{seccompFD: fd, caps: args[3], init: args[4] == "1", args: args[6:]}, true
}

// InitArgs wraps a container's command so a minimal init runs it: the
// binary itself, which libcontainer's init reaches through /proc/self/exe
// inside the container (a sealed, read-only copy: nothing is bound in from
// the host, and the container cannot write to it).
func InitArgs(args []string) []string {
	return entry{seccompFD: -1, caps: "-", init: true, args: args}.argv()
}

// extraCaps are what the entry needs for a moment, on top of the
// container's own capabilities, to install a filter without no_new_privs
// (CAP_SYS_ADMIN) and then drop what it does not keep from the bounding set
// (CAP_SETPCAP). libcontainer grants them in every set, the ambient one
// included so a non-root user keeps them across the exec into the entry;
// the entry takes them away before it execs the command.
var extraCaps = []string{"CAP_SYS_ADMIN", "CAP_SETPCAP"}

// throughEntry makes p install prog through the container entry instead of
// having libcontainer compile its profile: prog goes in as a sealed memfd,
// the entry learns the capabilities p must end with (want: p's own, or the
// container's), and p gets what the entry needs to install the filter. The
// returned file is the caller's to close once p has started.
func throughEntry(p *libcontainer.Process, prog *program, want *configs.Capabilities, nnp bool) (*os.File, error) {
	if p.Capabilities != nil {
		want = p.Capabilities
	}
	masks, err := capMasks(want)
	if err != nil {
		return nil, err
	}
	f, err := prog.memfd()
	if err != nil {
		return nil, fmt.Errorf("seccomp program: %w", err)
	}
	p.ExtraFiles = append(p.ExtraFiles, f)
	e, ok := parseEntry(p.Args)
	if !ok {
		e = entry{args: p.Args}
	}
	e.seccompFD = 2 + len(p.ExtraFiles) // after stdin, stdout and stderr
	e.caps = masks
	p.Args = e.argv()
	if !nnp {
		p.Capabilities = widen(want, extraCaps)
	}
	return f, nil
}

func mayPtrace(c *configs.Capabilities) bool {
	return c == nil || slices.Contains(c.Bounding, "CAP_SYS_PTRACE")
}

func widen(c *configs.Capabilities, extra []string) *configs.Capabilities {
	add := func(set []string) []string {
		out := slices.Clone(set)
		for _, x := range extra {
			if !slices.Contains(out, x) {
				out = append(out, x)
			}
		}
		return out
	}
	if c == nil {
		c = &configs.Capabilities{}
	}
	return &configs.Capabilities{
		Bounding: add(c.Bounding), Effective: add(c.Effective), Permitted: add(c.Permitted),
		Inheritable: add(c.Inheritable), Ambient: add(c.Ambient),
	}
}

// capMasks renders capability sets as the entry reads them.
func capMasks(c *configs.Capabilities) (string, error) {
	if c == nil {
		c = &configs.Capabilities{}
	}
	var out []string
	for _, set := range [][]string{c.Bounding, c.Effective, c.Permitted, c.Inheritable, c.Ambient} {
		var m uint64
		for _, name := range set {
			n, ok := capNumbers[strings.ToUpper(name)]
			if !ok {
				return "", fmt.Errorf("unknown capability %q", name)
			}
			m |= 1 << n
		}
		out = append(out, strconv.FormatUint(m, 16))
	}
	return strings.Join(out, ":"), nil
}

var capNumbers = func() map[string]uint {
	m := map[string]uint{}
	for _, c := range capability.ListKnown() {
		m["CAP_"+strings.ToUpper(c.String())] = uint(c)
	}
	return m
}()

// seccomp gives the container the spec's seccomp profile: as a program
// compiled once and cached, found by the profile's sum without reading the
// profile, when it can be compiled ahead; as libcontainer's configuration,
// compiled by libcontainer at every start, otherwise.
//
// Not precompiled for a container whose processes may hold CAP_SYS_PTRACE:
// between its exec and its drop of the extra capabilities the entry is an
// ordinary dumpable process, and one of them could attach to it and use its
// CAP_SYS_ADMIN. Without CAP_SYS_PTRACE the kernel refuses the attach to a
// process with capabilities the tracer lacks.
func (s *shim) seccomp(ref SeccompRef) error {
	ahead := s.cfg.SeccompCache != "" && seccompBuilt && !mayPtrace(s.lcfg.Capabilities)
	var key string
	if ahead {
		var err error
		if key, err = programKey(ref.Sum); err != nil {
			ahead = false
		} else if p, err := cachedCopy(s.cfg.SeccompCache, key); err == nil {
			s.program = p
			return nil
		}
	}
	profile, err := readProfile(ref)
	if err != nil {
		return err
	}
	cfg, err := decodeProfile(profile)
	if err != nil {
		return err
	}
	if ahead && cacheable(cfg) {
		p, err := cachedProgram(s.cfg.SeccompCache, key, cfg)
		if err == nil {
			s.program = p
			return nil
		}
		slog.Warn("seccomp profile not precompiled; libcontainer compiles it at each start", "err", err)
	}
	s.lcfg.Seccomp = cfg
	return nil
}

// viaEntry readies p to start through the container entry, when it needs
// it: to install the precompiled seccomp program, or as the minimal init.
// The command is looked up first in root (the container's root file system
// with mounts, or its root with those mounts on top), as libcontainer
// would have, so a missing one is still an error of the start or the exec.
// done closes what p inherited, once p has started.
func (s *shim) viaEntry(p *libcontainer.Process, root string, mounts []*configs.Mount) (done func(), err error) {
	done = func() {}
	if s.program != nil {
		nnp := s.lcfg.NoNewPrivileges
		if p.NoNewPrivileges != nil {
			nnp = *p.NoNewPrivileges
		}
		f, err := throughEntry(p, s.program, s.lcfg.Capabilities, nnp)
		if err != nil {
			return done, err
		}
		done = func() { f.Close() }
	}
	if e, ok := parseEntry(p.Args); ok {
		if err := lookPath(root, mounts, e.args[0], p.Cwd, p.Env); err != nil {
			done()
			return func() {}, err
		}
	}
	return done, nil
}

// runIn starts p in the running container of r. Every process started in
// a running container (exec, healthcheck) goes through here, so none misses
// the precompiled seccomp program.
//
// A process is never started into a paused container: its bootstrap would
// join the frozen cgroup and freeze there while libcontainer, waiting for
// it, holds the container's mutex, which the unpause, a signal and the
// stop all need: a stop that waits forever. A pause waits for the starts
// under way (they take milliseconds); a start after it finds the
// container paused.
func (s *shim) runIn(r *run, p *libcontainer.Process) error {
	s.starts.RLock()
	defer s.starts.RUnlock()
	if s.snapshot().State == StatePaused {
		return errPaused
	}
	pid, err := r.init.Pid()
	if err != nil {
		return err
	}
	entered, err := s.viaEntry(p, fmt.Sprintf("/proc/%d/root", pid), nil)
	if err != nil {
		return err
	}
	defer entered()
	return r.container.Run(p)
}

// lookPath finds the command as exec will inside the container: by PATH
// when it has no slash, from the working directory when relative. A path
// under a mount it cannot see through (a volume, before the container
// exists) is left for exec to find.
func lookPath(root string, mounts []*configs.Mount, cmd, cwd string, env []string) error {
	var candidates []string
	if strings.Contains(cmd, "/") {
		if !filepath.IsAbs(cmd) {
			cmd = filepath.Join(cwd, cmd)
		}
		candidates = []string{cmd}
	} else {
		path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
		for _, kv := range env {
			if v, ok := strings.CutPrefix(kv, "PATH="); ok {
				path = v
			}
		}
		for _, dir := range filepath.SplitList(path) {
			if dir == "" {
				dir = "."
			}
			if !filepath.IsAbs(dir) {
				dir = filepath.Join(cwd, dir)
			}
			candidates = append(candidates, filepath.Join(dir, cmd))
		}
	}
	for _, c := range candidates {
		for _, m := range mounts {
			if d := filepath.Clean(m.Destination); c == d || strings.HasPrefix(c, d+"/") {
				return nil
			}
		}
		host, err := securejoin.SecureJoin(root, c)
		if err != nil {
			continue
		}
		if fi, err := os.Stat(host); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return nil
		}
	}
	if len(candidates) == 1 && strings.Contains(cmd, "/") {
		return fmt.Errorf("exec: %q: stat %s: no such file or directory", cmd, cmd)
	}
	return fmt.Errorf("exec: %q: executable file not found in $PATH", cmd)
}
