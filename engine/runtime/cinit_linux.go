package runtime

// The C container init (cinit_linux.c): for a configuration it can serve,
// the shim hands libcontainer's init a flat plan, resolved here from
// libcontainer's configuration (one source of truth), and the init runs it
// in C after nsexec instead of starting Go. Everything else goes through
// libcontainer's Go init unchanged.
//
// BERTH_GO_INIT=1 in the shim's environment forces libcontainer's Go init
// (for comparison, and as an escape hatch).

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"golang.org/x/sys/unix"
)

// cinitMagic opens every plan; the C init checks it (and the memfd's name)
// before it takes over.
const cinitMagic = "BERTHCINIT1"

// cinitWanted says whether the shim should try the C init at all.
func cinitWanted() bool { return os.Getenv("BERTH_GO_INIT") != "1" }

// cinitKernel says, once per process, whether the kernel has the system
// calls the C init makes: openat2 (Linux 5.6) and the new mount API with
// mount_setattr (5.12). On an older kernel every container takes
// libcontainer's Go init.
var cinitKernel = sync.OnceValue(func() bool {
	return kernelHasCInitCalls(
		func() error { _, err := unix.Openat2(-1, "", &unix.OpenHow{}); return err },
		func() error { return unix.MountSetattr(-1, "", 0, &unix.MountAttr{}) },
	)
})

// kernelHasCInitCalls makes each probe, a call that fails on its arguments
// where the kernel has it, and says whether none was missing (ENOSYS).
func kernelHasCInitCalls(probes ...func() error) bool {
	for _, probe := range probes {
		if errors.Is(probe(), unix.ENOSYS) {
			return false
		}
	}
	return true
}

// cinitReason is why cfg needs libcontainer's Go init, or "" when the C
// init can serve it.
func cinitReason(c *configs.Config, p *libcontainer.Process, terminal bool) string {
	switch {
	case terminal || p.ConsoleSocket != nil:
		return "terminal"
	case c.Seccomp != nil:
		return "seccomp profile not precompiled"
	case len(c.Hooks) > 0:
		return "hooks"
	case c.Namespaces.Contains(configs.NEWUSER) || c.RootlessEUID || c.RootlessCgroups:
		return "user namespace"
	case !c.Namespaces.IsPrivate(configs.NEWNS):
		return "no mount namespace"
	case c.NoPivotRoot:
		return "no pivot_root"
	case c.RootPropagation&unix.MS_SHARED != 0:
		return "shared root propagation"
	case !onlyLoopback(c.Networks) || len(c.Routes) > 0 || len(c.NetDevices) > 0:
		return "networks in libcontainer's config"
	case c.AppArmorProfile != "" || c.ProcessLabel != "" || c.MountLabel != "":
		return "LSM labels"
	case c.Personality != nil || c.Scheduler != nil || c.IOPriority != nil || c.ExecCPUAffinity != nil || c.MemoryPolicy != nil:
		return "scheduling or personality"
	case len(c.TimeOffsets) > 0:
		return "time namespace offsets"
	case len(p.ExtraFiles) > 0:
		return "extra files"
	}
	for _, m := range c.Mounts {
		if r := cinitMountReason(c, m); r != "" {
			return "mount " + m.Destination + ": " + r
		}
	}
	for _, d := range c.Devices {
		if d.Type != 'c' && d.Type != 'b' && d.Type != 'p' {
			return "device " + d.Path
		}
	}
	return ""
}

// onlyLoopback says whether the only networks libcontainer would set up
// are loopback ones (specconv's for a new network namespace).
func onlyLoopback(nets []*configs.Network) bool {
	for _, n := range nets {
		if n.Type != "loopback" {
			return false
		}
	}
	return true
}

// Mount flags the C init turns into mount attributes.
const cinitAttrFlags = unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC |
	unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_RELATIME | unix.MS_STRICTATIME

func cinitMountReason(c *configs.Config, m *configs.Mount) string {
	switch {
	case m.IDMapping != nil || m.RecAttr != nil || m.Extensions != 0 || m.Relabel != "" || m.ClearedFlags != 0:
		return "idmapped, recursive attributes, copy-up or relabel"
	case !filepath.IsAbs(m.Destination):
		return "relative destination"
	}
	flags := m.Flags &^ cinitAttrFlags
	switch m.Device {
	case "bind":
		flags &^= unix.MS_BIND | unix.MS_REC
	case "proc", "tmpfs", "devpts", "mqueue":
	case "sysfs":
		if !c.Namespaces.Contains(configs.NEWNET) {
			return "sysfs without a network namespace"
		}
	case "cgroup":
		if !c.Namespaces.Contains(configs.NEWCGROUP) {
			return "cgroup without a cgroup namespace"
		}
	default:
		return "device " + m.Device
	}
	if flags != 0 {
		return fmt.Sprintf("flags %#x", flags)
	}
	for _, pf := range m.PropagationFlags {
		if pf&^(unix.MS_REC|unix.MS_PRIVATE|unix.MS_SLAVE|unix.MS_SHARED|unix.MS_UNBINDABLE) != 0 {
			return fmt.Sprintf("propagation %#x", pf)
		}
	}
	return ""
}

// mountAttrs turns mount flags into MOUNT_ATTR_* bits.
func mountAttrs(flags int) uint64 {
	var a uint64
	for _, f := range []struct {
		flag int
		attr uint64
	}{
		{unix.MS_RDONLY, unix.MOUNT_ATTR_RDONLY}, {unix.MS_NOSUID, unix.MOUNT_ATTR_NOSUID},
		{unix.MS_NODEV, unix.MOUNT_ATTR_NODEV}, {unix.MS_NOEXEC, unix.MOUNT_ATTR_NOEXEC},
		{unix.MS_NOATIME, unix.MOUNT_ATTR_NOATIME}, {unix.MS_NODIRATIME, unix.MOUNT_ATTR_NODIRATIME},
		{unix.MS_STRICTATIME, unix.MOUNT_ATTR_STRICTATIME},
	} {
		if flags&f.flag != 0 {
			a |= f.attr
		}
	}
	return a
}

// cinitPlan is the plan the C init runs: NUL-terminated words, a record
// per line of work, in the order the init does it. caps is the capability
// masks as the entry reads them; seccompFD the program's fd in the init
// (-1 for none).
func cinitPlan(id string, c *configs.Config, p *libcontainer.Process, caps string, seccompFD int) ([]byte, error) {
	var b bytes.Buffer
	w := func(words ...string) {
		for _, s := range words {
			if strings.IndexByte(s, 0) >= 0 {
				s = strings.ReplaceAll(s, "\x00", "")
			}
			b.WriteString(s)
			b.WriteByte(0)
		}
	}
	n := func(v uint64) string { return strconv.FormatUint(v, 10) }
	w(cinitMagic)
	w("rootfs", c.Rootfs)
	w("rootprop", n(uint64(c.RootPropagation)))
	if len(c.Networks) > 0 {
		w("lo")
	}
	for _, m := range c.Mounts {
		var prop uint64
		for _, pf := range m.PropagationFlags {
			prop |= uint64(pf)
		}
		attrs := mountAttrs(m.Flags)
		rolater := "0"
		if (m.Device == "tmpfs" || filepath.Clean(m.Destination) == "/dev") && attrs&unix.MOUNT_ATTR_RDONLY != 0 {
			attrs &^= unix.MOUNT_ATTR_RDONLY // made read-only once everything under it is mounted
			rolater = "1"
		}
		rec := "0"
		if m.Flags&unix.MS_REC != 0 {
			rec = "1"
		}
		w("mount", m.Device, m.Source, filepath.Clean(m.Destination), m.Data, n(attrs), n(prop), rec, rolater)
	}
	for _, d := range c.Devices {
		w("dev", d.Path, string(rune(d.Type)), n(uint64(d.Major)), n(uint64(d.Minor)),
			n(uint64(d.FileMode.Perm())), n(uint64(d.Uid)), n(uint64(d.Gid)))
	}
	if devTmpfs(c) {
		w("devlinks")
	}
	if c.Hostname != "" {
		w("hostname", c.Hostname)
	}
	if c.Domainname != "" {
		w("domainname", c.Domainname)
	}
	for k, v := range c.Sysctl {
		w("sysctl", strings.ReplaceAll(k, ".", "/"), v)
	}
	if c.Readonlyfs {
		w("rofs")
	}
	umask := uint64(0o022)
	if c.Umask != nil {
		umask = uint64(*c.Umask)
	}
	w("umask", n(umask))
	for _, r := range c.ReadonlyPaths {
		w("ro", r)
	}
	for _, m := range c.MaskPaths {
		w("mask", m)
	}
	if !c.NoNewKeyring {
		w("keyring", "_ses."+id)
	}
	if c.NoNewPrivileges {
		w("nnp")
	}
	w("user", n(uint64(p.UID)), n(uint64(p.GID)))
	for _, g := range p.AdditionalGroups {
		w("group", n(uint64(g)))
	}
	w("caps", caps)
	w("seccomp", strconv.Itoa(seccompFD))
	w("cwd", p.Cwd)
	for _, e := range p.Env {
		w("env", e)
	}
	for _, a := range p.Args {
		w("arg", a)
	}
	w("end")
	return b.Bytes(), nil
}

// symlinkedTarget names the first mount target that the image reaches
// through a symlink, or is empty. Such a target goes to libcontainer's Go
// init, which resolves it as Docker's runc does (inside the root, making
// what is missing: an image's /etc/resolv.conf that links to
// ../run/systemd/resolve/stub-resolv.conf); the C init, stricter, would
// refuse a link whose destination is missing. Targets under a file system
// mounted earlier in the list (/dev/shm under /dev's tmpfs) are not the
// image's and are not looked at. A component that does not exist ends the
// walk: the init makes it.
func symlinkedTarget(rootfs string, mounts []*configs.Mount) string {
	var fresh []string
	for _, m := range mounts {
		d := filepath.Clean(m.Destination)
		if !underAny(d, fresh) && symlinkOnPath(rootfs, d) {
			return d
		}
		if m.Device != "bind" {
			fresh = append(fresh, d)
		}
	}
	return ""
}

// underAny says whether path is at or under one of dirs.
func underAny(path string, dirs []string) bool {
	for _, d := range dirs {
		if path == d || strings.HasPrefix(path, strings.TrimSuffix(d, "/")+"/") {
			return true
		}
	}
	return false
}

// symlinkOnPath says whether a component of dest under rootfs is a
// symlink; it never follows one.
func symlinkOnPath(rootfs, dest string) bool {
	p := rootfs
	for _, c := range strings.Split(strings.TrimPrefix(dest, "/"), "/") {
		if c == "" {
			continue
		}
		p = filepath.Join(p, c)
		fi, err := os.Lstat(p)
		if err != nil {
			return false
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			return true
		}
	}
	return false
}

// devTmpfs says whether /dev is a tmpfs the init fills (libcontainer's
// needsSetupDev).
func devTmpfs(c *configs.Config) bool {
	for _, m := range c.Mounts {
		if m.Device == "bind" && filepath.Clean(m.Destination) == "/dev" {
			return false
		}
	}
	return true
}

// viaInit readies the container's first process p for its init: the C
// init when it can serve it, else libcontainer's Go init and the entry.
func (s *shim) viaInit(p *libcontainer.Process, terminal bool) (done func(), err error) {
	done, ok, err := s.viaCInit(p, terminal)
	if ok || err != nil {
		return done, err
	}
	return s.viaEntry(p, s.lcfg.Rootfs, s.lcfg.Mounts)
}

// viaCInit readies p for the C init unless BERTH_GO_INIT=1 forbids it or
// cfg needs what only the Go init does: the plan goes in as the init's first inherited file (a
// sealed memfd named berth-cinit), the seccomp program as the second. ok
// is false (and p unchanged) when the Go init must run; done closes what p
// inherited, once p has started.
func (s *shim) viaCInit(p *libcontainer.Process, terminal bool) (done func(), ok bool, err error) {
	done = func() {}
	if !cinitWanted() {
		return done, false, nil
	}
	if !cinitKernel() {
		slog.Debug("container init", "init", "go", "reason", "kernel without openat2 or mount_setattr")
		return done, false, nil
	}
	if r := cinitReason(s.lcfg, p, terminal); r != "" {
		slog.Debug("container init", "init", "go", "reason", r)
		return done, false, nil
	}
	if d := symlinkedTarget(s.lcfg.Rootfs, s.lcfg.Mounts); d != "" {
		slog.Debug("container init", "init", "go", "reason", "symlink on the way to mount target "+d)
		return done, false, nil
	}
	slog.Debug("container init", "init", "c")
	caps, err := capMasks(s.lcfg.Capabilities)
	if err != nil {
		return done, false, err
	}
	var files []*os.File
	seccompFD := -1
	if s.program != nil {
		f, err := s.program.memfd()
		if err != nil {
			return done, false, fmt.Errorf("seccomp program: %w", err)
		}
		files = append(files, f)
		seccompFD = 4 // after stdio and the plan
	}
	plan, err := cinitPlan(s.cfg.ID, s.lcfg, p, caps, seccompFD)
	if err != nil {
		closeAll(files)
		return done, false, err
	}
	pf, err := sealedMemfd("berth-cinit", plan)
	if err != nil {
		closeAll(files)
		return done, false, err
	}
	p.ExtraFiles = append([]*os.File{pf}, files...)
	files = append(files, pf)
	return func() { closeAll(files) }, true, nil
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// sealedMemfd returns a read-only, sealed memfd holding data.
func sealedMemfd(name string, data []byte) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), name)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, err
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
