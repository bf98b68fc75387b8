package container

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/containerd/errdefs"
	"github.com/moby/profiles/seccomp"
	"github.com/opencontainers/cgroups"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/selinux/go-selinux"
	"github.com/opencontainers/selinux/go-selinux/label"
)

// SpecOpt changes a spec, one key each, in the style of containerd's
// oci.SpecOpts. Spec applies them in order after Docker's defaults.
type SpecOpt func(*specs.Spec) error

// unconfined marks a spec whose seccomp filter was turned off on purpose,
// so Spec does not add Docker's default profile.
var unconfined = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}

// SecurityOpts turns a record's security and resource keys into spec
// options, in the order they must apply: capabilities before the seccomp
// profile, whose rules depend on them. Keys that need the engine (shared
// namespaces, the init, group names) are not here.
func SecurityOpts(sec Security, res Resources) []SpecOpt {
	var opts []SpecOpt
	if sec.Privileged {
		opts = append(opts, WithPrivileged())
	} else if len(sec.CapAdd)+len(sec.CapDrop) > 0 {
		opts = append(opts, WithCapabilities(sec.CapAdd, sec.CapDrop))
	}
	if sec.NoNewPrivileges {
		opts = append(opts, WithNoNewPrivileges())
	}
	if sec.ReadOnly {
		opts = append(opts, WithReadonlyRootfs())
	}
	if sec.SystemPaths == "unconfined" {
		opts = append(opts, WithUnmaskedPaths())
	}
	if sec.Uts == "host" {
		opts = append(opts, WithHostNamespace(specs.UTSNamespace))
	}
	switch sec.Cgroup {
	case "host":
		opts = append(opts, WithHostNamespace(specs.CgroupNamespace))
	case "private":
		opts = append(opts, WithPrivateNamespace(specs.CgroupNamespace))
	}
	if sec.Pid == "host" {
		opts = append(opts, WithHostNamespace(specs.PIDNamespace))
	}
	if sec.ShmSize > 0 {
		opts = append(opts, WithShmSize(sec.ShmSize))
	}
	if len(sec.Tmpfs) > 0 {
		opts = append(opts, WithTmpfs(sec.Tmpfs))
	}
	if len(sec.Devices) > 0 {
		opts = append(opts, WithDevices(sec.Devices))
	}
	if len(sec.DeviceCgroupRules) > 0 {
		opts = append(opts, WithDeviceCgroupRules(sec.DeviceCgroupRules))
	}
	if len(sec.Sysctls) > 0 {
		opts = append(opts, WithSysctls(sec.Sysctls))
	}
	if len(sec.Ulimits) > 0 {
		opts = append(opts, WithUlimits(sec.Ulimits))
	}
	if sec.OomScoreAdj != nil {
		opts = append(opts, WithOOMScoreAdj(*sec.OomScoreAdj))
	}
	opts = append(opts, WithResources(res))
	if sec.AppArmor != "" {
		opts = append(opts, WithAppArmor(sec.AppArmor))
	}
	if len(sec.Label) > 0 {
		opts = append(opts, WithSELinuxLabel(sec.Label))
	}
	// Last: the profile's rules depend on the capabilities set above.
	switch {
	case sec.Seccomp != "":
		opts = append(opts, WithSeccomp(sec.Seccomp))
	case sec.Privileged:
		opts = append(opts, WithSeccomp(SeccompUnconfined))
	}
	return opts
}

// WithCapabilities applies cap_add and cap_drop to the default set the way
// Docker does: ALL in cap_add grants every capability but the dropped
// ones, ALL in cap_drop keeps only the added ones.
func WithCapabilities(add, drop []string) SpecOpt {
	return func(s *specs.Spec) error {
		norm := func(in []string) ([]string, error) {
			var out []string
			for _, c := range in {
				n, err := NormalizeCapability(c)
				if err != nil {
					return nil, err
				}
				out = append(out, n)
			}
			return out, nil
		}
		adds, err := norm(add)
		if err != nil {
			return err
		}
		drops, err := norm(drop)
		if err != nil {
			return err
		}
		var caps []string
		switch {
		case slices.Contains(adds, "ALL"):
			for _, c := range AllCapabilities() {
				if !slices.Contains(drops, c) {
					caps = append(caps, c)
				}
			}
		case slices.Contains(drops, "ALL"):
			caps = adds
		default:
			for _, c := range s.Process.Capabilities.Bounding {
				if !slices.Contains(drops, c) {
					caps = append(caps, c)
				}
			}
			for _, c := range adds {
				if !slices.Contains(caps, c) {
					caps = append(caps, c)
				}
			}
		}
		setCaps(s, caps)
		return nil
	}
}

func setCaps(s *specs.Spec, caps []string) {
	caps = slices.Clip(caps)
	s.Process.Capabilities.Bounding = caps
	s.Process.Capabilities.Effective = caps
	s.Process.Capabilities.Permitted = caps
}

// WithPrivileged lifts the confinement as Docker's --privileged does: every
// capability and host device, no masked paths, writable /sys and cgroup
// file system, and (unless a profile is given after it) no seccomp filter.
func WithPrivileged() SpecOpt {
	return func(s *specs.Spec) error {
		setCaps(s, AllCapabilities())
		s.Linux.MaskedPaths = nil
		s.Linux.ReadonlyPaths = nil
		for i, m := range s.Mounts {
			if m.Destination == "/sys" || m.Destination == "/sys/fs/cgroup" {
				s.Mounts[i].Options = slices.DeleteFunc(slices.Clone(m.Options), func(o string) bool { return o == "ro" })
			}
		}
		devs, err := allHostDevices()
		if err != nil {
			return fmt.Errorf("list host devices: %w", err)
		}
		s.Linux.Devices = append(s.Linux.Devices, devs...)
		s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
		return nil
	}
}

// WithAdditionalGids adds supplementary groups to the container's process.
func WithAdditionalGids(gids []uint32) SpecOpt {
	return func(s *specs.Spec) error {
		for _, g := range gids {
			if !slices.Contains(s.Process.User.AdditionalGids, g) {
				s.Process.User.AdditionalGids = append(s.Process.User.AdditionalGids, g)
			}
		}
		return nil
	}
}

// WithNoNewPrivileges sets no_new_privs: setuid binaries and file
// capabilities no longer raise privileges.
func WithNoNewPrivileges() SpecOpt {
	return func(s *specs.Spec) error {
		s.Process.NoNewPrivileges = true
		return nil
	}
}

// WithSeccomp installs a profile in Docker's JSON format instead of the
// default one, or none for SeccompUnconfined. Apply it after the
// capabilities: a profile's rules may depend on them.
func WithSeccomp(profile string) SpecOpt {
	return func(s *specs.Spec) error {
		if profile == SeccompUnconfined {
			s.Linux.Seccomp = unconfined
			return nil
		}
		p, err := seccomp.LoadProfile(profile, s)
		if err != nil {
			return fmt.Errorf("seccomp profile: %s: %w", lowerFirst(err.Error()), errdefs.ErrInvalidArgument)
		}
		s.Linux.Seccomp = p
		return nil
	}
}

// WithReadonlyRootfs mounts the root file system read-only.
func WithReadonlyRootfs() SpecOpt {
	return func(s *specs.Spec) error {
		s.Root.Readonly = true
		return nil
	}
}

// WithUnmaskedPaths leaves /proc and /sys paths unmasked and writable
// (security_opt systempaths=unconfined).
func WithUnmaskedPaths() SpecOpt {
	return func(s *specs.Spec) error {
		s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
		return nil
	}
}

// WithHostNamespace shares the host's namespace of type t.
func WithHostNamespace(t specs.LinuxNamespaceType) SpecOpt {
	return func(s *specs.Spec) error {
		s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == t })
		if t == specs.UTSNamespace {
			s.Hostname = "" // the host's name stays the host's
		}
		return nil
	}
}

// WithPrivateNamespace gives the container a namespace of type t of its own.
func WithPrivateNamespace(t specs.LinuxNamespaceType) SpecOpt {
	return func(s *specs.Spec) error {
		if !slices.ContainsFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == t }) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: t})
		}
		return nil
	}
}

// WithNamespacePath joins the namespace of type t at path (another
// container's /proc/PID/ns/...).
func WithNamespacePath(t specs.LinuxNamespaceType, path string) SpecOpt {
	return func(s *specs.Spec) error {
		s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == t })
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: t, Path: path})
		return nil
	}
}

// WithShmSize sets the size of the container's own /dev/shm.
func WithShmSize(bytes int64) SpecOpt {
	return func(s *specs.Spec) error {
		for i, m := range s.Mounts {
			if m.Destination == "/dev/shm" && m.Type == "tmpfs" {
				opts := slices.DeleteFunc(slices.Clone(m.Options), func(o string) bool { return strings.HasPrefix(o, "size=") })
				s.Mounts[i].Options = append(opts, "size="+strconv.FormatInt(bytes, 10))
			}
		}
		return nil
	}
}

// WithShm replaces the container's /dev/shm: by a bind of source (a
// shareable /dev/shm, or the host's), or by nothing when source is empty
// (ipc: none).
func WithShm(source string) SpecOpt {
	return func(s *specs.Spec) error {
		s.Mounts = slices.DeleteFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == "/dev/shm" })
		if source != "" {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/dev/shm", Type: "bind", Source: source, Options: []string{"rbind", "nosuid", "nodev", "noexec"}})
		}
		return nil
	}
}

// WithTmpfs mounts each tmpfs with Docker's defaults (noexec, nosuid,
// nodev), which the entry's own options override.
func WithTmpfs(ts []Tmpfs) SpecOpt {
	return func(s *specs.Spec) error {
		for _, t := range ts {
			opts := []string{"noexec", "nosuid", "nodev"}
			for _, o := range t.Options {
				if on, found := strings.CutPrefix(o, "no"); found {
					opts = slices.DeleteFunc(opts, func(x string) bool { return x == on })
				} else {
					opts = slices.DeleteFunc(opts, func(x string) bool { return x == "no"+o })
				}
				opts = append(opts, o)
			}
			s.Mounts = append(s.Mounts, specs.Mount{Destination: t.Target, Type: "tmpfs", Source: "tmpfs", Options: opts})
		}
		return nil
	}
}

// WithDevices creates the host's device nodes in the container and lets
// it use them with the given permissions.
func WithDevices(ds []Device) SpecOpt {
	return func(s *specs.Spec) error {
		for _, d := range ds {
			nodes, err := HostDevices(d)
			if err != nil {
				return err
			}
			access := d.Permissions
			if access == "" {
				access = "rwm"
			}
			for _, n := range nodes {
				s.Linux.Devices = append(s.Linux.Devices, n)
				major, minor := n.Major, n.Minor
				s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: n.Type, Major: &major, Minor: &minor, Access: access})
			}
		}
		return nil
	}
}

// WithDeviceCgroupRules adds Docker-style device cgroup rules.
func WithDeviceCgroupRules(rules []string) SpecOpt {
	return func(s *specs.Spec) error {
		for _, r := range rules {
			rule, err := ParseDeviceCgroupRule(r)
			if err != nil {
				return err
			}
			s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, rule)
		}
		return nil
	}
}

// WithSysctls sets namespaced kernel parameters inside the container.
func WithSysctls(kv map[string]string) SpecOpt {
	return func(s *specs.Spec) error {
		if s.Linux.Sysctl == nil {
			s.Linux.Sysctl = map[string]string{}
		}
		for k, v := range kv {
			s.Linux.Sysctl[k] = v
		}
		return nil
	}
}

// WithUlimits sets resource limits, replacing defaults of the same kind.
func WithUlimits(us []Ulimit) SpecOpt {
	return func(s *specs.Spec) error {
		for _, u := range us {
			if err := checkUlimit(u); err != nil {
				return err
			}
			r := rlimit(u)
			s.Process.Rlimits = slices.DeleteFunc(s.Process.Rlimits, func(x specs.POSIXRlimit) bool { return x.Type == r.Type })
			s.Process.Rlimits = append(s.Process.Rlimits, r)
		}
		return nil
	}
}

// WithOOMScoreAdj sets the container's OOM killer preference.
func WithOOMScoreAdj(n int) SpecOpt {
	return func(s *specs.Spec) error {
		s.Process.OOMScoreAdj = &n
		return nil
	}
}

// WithAppArmor confines the container with a loaded AppArmor profile;
// "unconfined" leaves it unconfined.
func WithAppArmor(profile string) SpecOpt {
	return func(s *specs.Spec) error {
		if profile == "unconfined" {
			s.Process.ApparmorProfile = ""
			return nil
		}
		if err := checkAppArmor(profile); err != nil {
			return err
		}
		s.Process.ApparmorProfile = profile
		return nil
	}
}

// WithSELinuxLabel sets the container's SELinux process and mount labels
// from Docker's label options; "disable" leaves them unset.
func WithSELinuxLabel(opts []string) SpecOpt {
	return func(s *specs.Spec) error {
		if slices.Equal(opts, []string{"disable"}) {
			return nil
		}
		if err := checkSELinux(opts); err != nil {
			return err
		}
		proc, mount, err := label.InitLabels(opts)
		if err != nil {
			return fmt.Errorf("selinux label %v: %w: %w", opts, err, errdefs.ErrInvalidArgument)
		}
		s.Process.SelinuxLabel, s.Linux.MountLabel = proc, mount
		return nil
	}
}

// checkAppArmor fails unless the host runs AppArmor and has profile loaded:
// asking for confinement the host cannot give is an error, never a no-op.
func checkAppArmor(profile string) error {
	if profile == "unconfined" {
		return nil
	}
	loaded, err := os.ReadFile("/sys/kernel/security/apparmor/profiles")
	if err != nil {
		return fmt.Errorf("apparmor=%s: this host does not run AppArmor: %w", profile, errdefs.ErrNotImplemented)
	}
	for _, line := range strings.Split(string(loaded), "\n") {
		if name, _, _ := strings.Cut(line, " ("); name == profile {
			return nil
		}
	}
	return fmt.Errorf("apparmor=%s: no such profile is loaded on this host: %w", profile, errdefs.ErrInvalidArgument)
}

func checkSELinux(opts []string) error {
	if slices.Equal(opts, []string{"disable"}) || selinux.GetEnabled() {
		return nil
	}
	return fmt.Errorf("label=%s: this host does not run SELinux: %w", strings.Join(opts, ","), errdefs.ErrNotImplemented)
}

// WithResources sets the cgroup limits. The same spec serves cgroup v1 and
// v2: libcontainer converts shares, swap and weights for v2.
func WithResources(r Resources) SpecOpt {
	return func(s *specs.Spec) error {
		lr := s.Linux.Resources
		if r.Memory != 0 || r.MemoryReservation != 0 || r.MemorySwap != 0 || r.MemorySwappiness != nil || r.OomKillDisable {
			m := &specs.LinuxMemory{}
			if r.Memory > 0 {
				m.Limit = &r.Memory
			}
			if r.MemoryReservation > 0 {
				m.Reservation = &r.MemoryReservation
			}
			swap := r.MemorySwap
			if swap == 0 && r.Memory > 0 {
				swap = 2 * r.Memory // Docker's default: as much swap as memory
			}
			if swap != 0 && SwapLimitSupported() {
				m.Swap = &swap
			}
			if r.MemorySwappiness != nil {
				v := uint64(*r.MemorySwappiness)
				m.Swappiness = &v
			}
			if r.OomKillDisable {
				m.DisableOOMKiller = &r.OomKillDisable
			}
			lr.Memory = m
		}
		if r.NanoCPUs != 0 || r.CPUShares != 0 || r.CPUQuota != 0 || r.CPUPeriod != 0 || r.CpusetCpus != "" || r.CPURealtimeRuntime != 0 || r.CPURealtimePeriod != 0 {
			c := &specs.LinuxCPU{Cpus: r.CpusetCpus}
			if r.CPUShares > 0 {
				v := uint64(r.CPUShares)
				c.Shares = &v
			}
			quota, period := r.CPUQuota, r.CPUPeriod
			if r.NanoCPUs > 0 {
				period = 100000 // Docker's: 100 ms
				quota = r.NanoCPUs * period / 1e9
			}
			if quota != 0 {
				c.Quota = &quota
			}
			if period != 0 {
				p := uint64(period)
				c.Period = &p
			}
			if r.CPURealtimeRuntime != 0 {
				c.RealtimeRuntime = &r.CPURealtimeRuntime
			}
			if r.CPURealtimePeriod != 0 {
				p := uint64(r.CPURealtimePeriod)
				c.RealtimePeriod = &p
			}
			lr.CPU = c
		}
		if r.PidsLimit != 0 {
			lr.Pids = &specs.LinuxPids{Limit: &r.PidsLimit}
		}
		if bio, err := blockIO(r); err != nil {
			return err
		} else if bio != nil {
			lr.BlockIO = bio
		}
		return nil
	}
}

func blockIO(r Resources) (*specs.LinuxBlockIO, error) {
	if r.BlkioWeight == 0 && len(r.blockDevices()) == 0 {
		return nil, nil
	}
	b := &specs.LinuxBlockIO{}
	weights := BlkioWeightSupported()
	if r.BlkioWeight != 0 && weights {
		b.Weight = &r.BlkioWeight
	}
	for _, d := range r.BlkioWeightDevice {
		if !weights {
			break
		}
		major, minor, err := blockDevice(d.Path)
		if err != nil {
			return nil, err
		}
		w := d.Weight
		wd := specs.LinuxWeightDevice{Weight: &w}
		wd.Major, wd.Minor = major, minor
		b.WeightDevice = append(b.WeightDevice, wd)
	}
	throttle := func(in []ThrottleDevice) ([]specs.LinuxThrottleDevice, error) {
		var out []specs.LinuxThrottleDevice
		for _, d := range in {
			major, minor, err := blockDevice(d.Path)
			if err != nil {
				return nil, err
			}
			td := specs.LinuxThrottleDevice{Rate: d.Rate}
			td.Major, td.Minor = major, minor
			out = append(out, td)
		}
		return out, nil
	}
	var err error
	if b.ThrottleReadBpsDevice, err = throttle(r.BlkioDeviceReadBps); err != nil {
		return nil, err
	}
	if b.ThrottleWriteBpsDevice, err = throttle(r.BlkioDeviceWriteBps); err != nil {
		return nil, err
	}
	if b.ThrottleReadIOPSDevice, err = throttle(r.BlkioDeviceReadIOps); err != nil {
		return nil, err
	}
	if b.ThrottleWriteIOPSDevice, err = throttle(r.BlkioDeviceWriteIOps); err != nil {
		return nil, err
	}
	return b, nil
}

var (
	hostOnce               sync.Once
	swapLimit, blkioWeight bool
)

func probeHost() {
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	if cgroups.IsCgroup2UnifiedMode() {
		ctrl, _ := os.ReadFile("/sys/fs/cgroup/cgroup.controllers")
		blkioWeight = slices.Contains(strings.Fields(string(ctrl)), "io")
		// The root cgroup has no memory.swap.max; swap accounting is on
		// unless the kernel was booted without it.
		swapLimit = !strings.Contains(readCmdline(), "swapaccount=0")
		return
	}
	swapLimit = exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
	blkioWeight = exists("/sys/fs/cgroup/blkio/blkio.weight") || exists("/sys/fs/cgroup/blkio/blkio.bfq.weight")
}

func readCmdline() string {
	b, _ := os.ReadFile("/proc/cmdline")
	return string(b)
}

// SwapLimitSupported reports whether the host accounts swap per cgroup, so
// memswap_limit can be honoured. Docker runs without swap limits there too.
func SwapLimitSupported() bool { hostOnce.Do(probeHost); return swapLimit }

// BlkioWeightSupported reports whether the host's block IO controller
// takes weights (blkio.weight or BFQ's). Docker drops weights where not.
func BlkioWeightSupported() bool { hostOnce.Do(probeHost); return blkioWeight }
