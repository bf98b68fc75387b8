package container

import (
	"fmt"
	"os"
	"sync"

	"github.com/containerd/errdefs"
	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/profiles/seccomp"
	"github.com/moby/sys/capability"
	"github.com/moby/sys/user"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Process is the resolved process of a container.
type Process struct {
	Args           []string
	Env            []string
	Cwd            string
	UID, GID       uint32
	AdditionalGids []uint32
}

// SpecOptions are the host-side facts a spec needs besides the record.
type SpecOptions struct {
	Rootfs      string // absolute path of the mounted root filesystem
	NetNS       string // network namespace to join; empty means a new one
	CgroupsPath string // e.g. "/berth/<id>"
	Hostname    string
	Process     Process
	Mounts      []specs.Mount // volumes, binds, resolv.conf, hosts, hostname
}

// defaultCaps is Docker's default capability set.
var defaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// Paths Docker hides from containers (masked) or makes read-only.
var (
	maskedPaths = []string{
		"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore",
		"/proc/keys", "/proc/latency_stats", "/proc/timer_list",
		"/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
		"/sys/firmware", "/sys/devices/virtual/powercap",
	}
	readonlyPaths = []string{
		"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
	}
)

// Spec builds the OCI runtime spec of a container: Docker's defaults, then
// opts in order, then Docker's default seccomp profile unless an option
// set another or turned it off.
func Spec(o SpecOptions, opts ...SpecOpt) (*specs.Spec, error) {
	if o.Rootfs == "" || len(o.Process.Args) == 0 {
		return nil, fmt.Errorf("spec: rootfs and a command are required: %w", errdefs.ErrInvalidArgument)
	}
	caps := append([]string(nil), defaultCaps...)
	s := &specs.Spec{
		Version:  specs.Version,
		Root:     &specs.Root{Path: o.Rootfs},
		Hostname: o.Hostname,
		Process: &specs.Process{
			Args: o.Process.Args,
			Env:  o.Process.Env,
			Cwd:  o.Process.Cwd,
			User: specs.User{UID: o.Process.UID, GID: o.Process.GID, AdditionalGids: o.Process.AdditionalGids},
			Capabilities: &specs.LinuxCapabilities{
				Bounding: caps, Effective: caps, Permitted: caps,
			},
			Rlimits: []specs.POSIXRlimit{defaultNofile()},
		},
		Mounts: append(defaultMounts(), o.Mounts...),
		Linux: &specs.Linux{
			CgroupsPath: o.CgroupsPath,
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace},
				{Type: specs.MountNamespace},
				{Type: specs.UTSNamespace},
				{Type: specs.IPCNamespace},
				{Type: specs.NetworkNamespace, Path: o.NetNS},
			},
			MaskedPaths:   maskedPaths,
			ReadonlyPaths: readonlyPaths,
			Resources: &specs.LinuxResources{
				// Deny every device, then allow what defaultMounts' /dev gets
				// through libcontainer's standard set.
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
			},
		},
	}
	// A private cgroup namespace on cgroup v1 hosts too (Docker's default
	// there is the host's): libcontainer then mounts each v1 controller
	// once instead of binding the container's cgroup and remounting it
	// read-only, 1 to 2 ms of the init's CPU a start. `cgroup: host`
	// takes it out again. docs/compat.md, docs/performance.md.
	if cgroupNamespaces() {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	}
	for _, opt := range opts {
		if err := opt(s); err != nil {
			return nil, err
		}
	}
	switch s.Linux.Seccomp {
	case unconfined:
		s.Linux.Seccomp = nil
		return s, nil
	case nil:
	default:
		return s, nil
	}
	prof, err := seccomp.GetDefaultProfile(s)
	if err != nil {
		return nil, fmt.Errorf("seccomp profile: %w", err)
	}
	s.Linux.Seccomp = prof
	return s, nil
}

// cgroupNamespaces tells whether the kernel has cgroup namespaces (4.6
// and later): without them a container shares the host's, as under
// Docker.
var cgroupNamespaces = sync.OnceValue(func() bool {
	_, err := os.Stat("/proc/self/ns/cgroup")
	return err == nil
})

func defaultMounts() []specs.Mount {
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid", "noexec", "nodev"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
	}
}

// ResolveUser turns a Compose/Docker user string ("", "1000", "1000:1000",
// "app", "app:staff") into IDs, reading /etc/passwd and /etc/group inside
// rootfs without ever following a link out of it.
func ResolveUser(rootfs, spec string) (uid, gid uint32, groups []uint32, err error) {
	passwd, err := securejoin.SecureJoin(rootfs, "/etc/passwd")
	if err != nil {
		return 0, 0, nil, err
	}
	group, err := securejoin.SecureJoin(rootfs, "/etc/group")
	if err != nil {
		return 0, 0, nil, err
	}
	eu, err := user.GetExecUserPath(spec, &user.ExecUser{}, passwd, group)
	if err != nil {
		if _, statErr := os.Stat(passwd); statErr != nil && spec != "" {
			return 0, 0, nil, fmt.Errorf("user %q: no /etc/passwd in image: %w", spec, errdefs.ErrInvalidArgument)
		}
		return 0, 0, nil, fmt.Errorf("user %q: %v: %w", spec, err, errdefs.ErrInvalidArgument)
	}
	for _, g := range eu.Sgids {
		if g != eu.Gid {
			groups = append(groups, uint32(g))
		}
	}
	return uint32(eu.Uid), uint32(eu.Gid), groups, nil
}

// ResolveGroups turns group_add entries (names or IDs) into IDs, reading
// /etc/group inside rootfs without following a link out of it. A name the
// image does not know is an error, as in Docker.
func ResolveGroups(rootfs string, add []string) ([]uint32, error) {
	if len(add) == 0 {
		return nil, nil
	}
	group, err := securejoin.SecureJoin(rootfs, "/etc/group")
	if err != nil {
		return nil, err
	}
	ids, err := user.GetAdditionalGroupsPath(add, group)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, errdefs.ErrInvalidArgument)
	}
	out := make([]uint32, 0, len(ids))
	for _, id := range ids {
		out = append(out, uint32(id))
	}
	return out, nil
}

// defaultNofile is the open-files limit a container gets: 1048576, as
// under Docker, unless this process may not raise its hard limit that
// far (no CAP_SYS_RESOURCE, inside another container say): then its own
// hard limit, which it can always pass on.
func defaultNofile() specs.POSIXRlimit {
	const want = 1 << 20
	n := uint64(want)
	var cur unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &cur); err == nil && cur.Max < want && !haveCap(capability.CAP_SYS_RESOURCE) {
		n = cur.Max
	}
	return specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Hard: n, Soft: n}
}

func haveCap(c capability.Cap) bool {
	caps, err := capability.NewPid2(0)
	if err != nil || caps.Load() != nil {
		return false
	}
	return caps.Get(capability.EFFECTIVE, c)
}
