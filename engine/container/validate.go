package container

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/containerd/errdefs"
	"github.com/moby/profiles/seccomp"
	"github.com/moby/sys/capability"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// FieldError says which field of a Security or Resources value is wrong.
// Field is the field's JSON name, which is the Compose key it comes from.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

func invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Err: fmt.Errorf(format+": %w", append(args, errdefs.ErrInvalidArgument)...)}
}

// MinMemory is the smallest memory limit a container may get: below it a
// container cannot even start its init. Docker refuses the same values.
const MinMemory = 6 << 20

// Validate checks every security setting that can be checked without the
// image: names, ranges and syntax, and that host devices exist. Errors are
// a *FieldError carrying errdefs.ErrInvalidArgument.
func (s Security) Validate() error {
	for _, field := range []struct {
		name string
		caps []string
	}{{"cap_add", s.CapAdd}, {"cap_drop", s.CapDrop}} {
		for _, c := range field.caps {
			if _, err := NormalizeCapability(c); err != nil {
				return &FieldError{Field: field.name, Err: err}
			}
		}
	}
	if s.Seccomp != "" && s.Seccomp != SeccompUnconfined {
		if err := checkSeccompProfile(s.Seccomp); err != nil {
			return &FieldError{Field: "security_opt", Err: err}
		}
	}
	for _, l := range s.Label {
		k, v, ok := strings.Cut(l, ":")
		if l != "disable" && (!ok || v == "" || !slices.Contains([]string{"user", "role", "type", "level"}, k)) {
			return invalid("security_opt", "label %q: want disable, user:U, role:R, type:T or level:L", l)
		}
	}
	if err := checkAppArmor(s.AppArmor); s.AppArmor != "" && err != nil {
		return &FieldError{Field: "security_opt", Err: err}
	}
	if err := checkSELinux(s.Label); len(s.Label) > 0 && err != nil {
		return &FieldError{Field: "security_opt", Err: err}
	}
	if s.SystemPaths != "" && s.SystemPaths != "unconfined" {
		return invalid("security_opt", "systempaths=%q: only unconfined is known", s.SystemPaths)
	}
	if err := checkMode("ipc", s.Ipc, "private", "shareable", "host", "none"); err != nil {
		return err
	}
	if err := checkMode("pid", s.Pid, "host"); err != nil {
		return err
	}
	if s.Uts != "" && s.Uts != "host" {
		return invalid("uts", "%q: want host", s.Uts)
	}
	if s.Cgroup != "" && s.Cgroup != "host" && s.Cgroup != "private" {
		return invalid("cgroup", "%q: want host or private", s.Cgroup)
	}
	if p := s.CgroupParent; p != "" && (strings.Contains(p, "..") || strings.ContainsAny(p, "\x00\n")) {
		return invalid("cgroup_parent", "%q is not a cgroup path", p)
	}
	if a := s.OomScoreAdj; a != nil && (*a < -1000 || *a > 1000) {
		return invalid("oom_score_adj", "%d is outside -1000 to 1000", *a)
	}
	if s.ShmSize < 0 {
		return invalid("shm_size", "%d is negative", s.ShmSize)
	}
	for _, t := range s.Tmpfs {
		if err := checkTmpfs(t); err != nil {
			return err
		}
	}
	for _, d := range s.Devices {
		if _, err := HostDevices(d); err != nil {
			return &FieldError{Field: "devices", Err: err}
		}
	}
	for _, r := range s.DeviceCgroupRules {
		if _, err := ParseDeviceCgroupRule(r); err != nil {
			return &FieldError{Field: "device_cgroup_rules", Err: err}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(s.Sysctls)) {
		if err := checkSysctl(k, s); err != nil {
			return &FieldError{Field: "sysctls", Err: err}
		}
	}
	for _, u := range s.Ulimits {
		if err := checkUlimit(u); err != nil {
			return &FieldError{Field: "ulimits", Err: err}
		}
	}
	return nil
}

func checkMode(field, v string, modes ...string) error {
	if v == "" || slices.Contains(modes, v) {
		return nil
	}
	if name, ok := strings.CutPrefix(v, "container:"); ok && name != "" {
		return nil
	}
	return invalid(field, "%q: want %s or container:NAME", v, strings.Join(modes, ", "))
}

// SeccompUnconfined is Security.Seccomp for a container without a filter.
const SeccompUnconfined = "unconfined"

// checkSeccompProfile parses a profile in Docker's format the way a start
// will, so a broken profile fails before anything is created.
func checkSeccompProfile(body string) error {
	s := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: defaultCaps}}}
	prof, err := seccomp.LoadProfile(body, s)
	if err != nil {
		return fmt.Errorf("seccomp profile: %s: %w", lowerFirst(err.Error()), errdefs.ErrInvalidArgument)
	}
	if _, err := specconv.SetupSeccomp(prof); err != nil {
		return fmt.Errorf("seccomp profile: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	return nil
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

var (
	capsOnce  sync.Once
	knownCaps map[string]bool // every capability name this build knows
	hostCaps  []string        // the capabilities of the running kernel
)

func loadCaps() {
	knownCaps = map[string]bool{}
	for _, c := range capability.ListKnown() {
		knownCaps["CAP_"+strings.ToUpper(c.String())] = true
	}
	supported, err := capability.ListSupported()
	if err != nil {
		supported = capability.ListKnown()
	}
	// A container cannot get what Berth itself lacks (inside another
	// container, say): capabilities outside our bounding set are left out.
	own, err := capability.NewPid2(0)
	if err == nil {
		err = own.Load()
	}
	for _, c := range supported {
		if err == nil && !own.Get(capability.BOUNDING, c) {
			continue
		}
		hostCaps = append(hostCaps, "CAP_"+strings.ToUpper(c.String()))
	}
}

// NormalizeCapability turns "net_admin", "NET_ADMIN" or "CAP_NET_ADMIN" into
// "CAP_NET_ADMIN", and keeps "ALL", as Docker accepts them.
func NormalizeCapability(name string) (string, error) {
	capsOnce.Do(loadCaps)
	n := strings.ToUpper(strings.TrimSpace(name))
	if n == "ALL" {
		return n, nil
	}
	if !strings.HasPrefix(n, "CAP_") {
		n = "CAP_" + n
	}
	if !knownCaps[n] {
		return "", fmt.Errorf("unknown capability %q: %w", name, errdefs.ErrInvalidArgument)
	}
	return n, nil
}

// AllCapabilities are the capabilities of the running kernel that Berth
// holds itself: what ALL and privileged mean.
func AllCapabilities() []string {
	capsOnce.Do(loadCaps)
	return slices.Clone(hostCaps)
}

// ulimitNames maps Docker's ulimit names to the resources they limit.
var ulimitNames = map[string]string{
	"as": "RLIMIT_AS", "core": "RLIMIT_CORE", "cpu": "RLIMIT_CPU", "data": "RLIMIT_DATA",
	"fsize": "RLIMIT_FSIZE", "locks": "RLIMIT_LOCKS", "memlock": "RLIMIT_MEMLOCK",
	"msgqueue": "RLIMIT_MSGQUEUE", "nice": "RLIMIT_NICE", "nofile": "RLIMIT_NOFILE",
	"nproc": "RLIMIT_NPROC", "rss": "RLIMIT_RSS", "rtprio": "RLIMIT_RTPRIO",
	"rttime": "RLIMIT_RTTIME", "sigpending": "RLIMIT_SIGPENDING", "stack": "RLIMIT_STACK",
}

func checkUlimit(u Ulimit) error {
	if _, ok := ulimitNames[u.Name]; !ok {
		return fmt.Errorf("unknown ulimit %q (want one of %s): %w", u.Name, strings.Join(slices.Sorted(maps.Keys(ulimitNames)), ", "), errdefs.ErrInvalidArgument)
	}
	if u.Soft < -1 || u.Hard < -1 {
		return fmt.Errorf("%s: negative limit (-1 means unlimited): %w", u.Name, errdefs.ErrInvalidArgument)
	}
	if u.Hard != -1 && (u.Soft == -1 || u.Soft > u.Hard) {
		return fmt.Errorf("%s: soft limit %d is above the hard limit %d: %w", u.Name, u.Soft, u.Hard, errdefs.ErrInvalidArgument)
	}
	return nil
}

// rlimit converts a Ulimit to its spec form; -1 is RLIM_INFINITY.
func rlimit(u Ulimit) specs.POSIXRlimit {
	v := func(n int64) uint64 {
		if n < 0 {
			return math.MaxUint64
		}
		return uint64(n)
	}
	return specs.POSIXRlimit{Type: ulimitNames[u.Name], Soft: v(u.Soft), Hard: v(u.Hard)}
}

// ipcSysctls are the sysctls of the IPC namespace outside fs.mqueue.
var ipcSysctls = []string{
	"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
	"kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
}

// checkSysctl accepts only sysctls that belong to a namespace the
// container has of its own: any other would change the host.
func checkSysctl(name string, s Security) error {
	fail := func(why string) error {
		return fmt.Errorf("%s %s: %w", name, why, errdefs.ErrInvalidArgument)
	}
	switch {
	case slices.Contains(ipcSysctls, name) || strings.HasPrefix(name, "fs.mqueue."):
		if s.Ipc == "host" {
			return fail("belongs to the IPC namespace, which ipc: host shares with the host")
		}
	case strings.HasPrefix(name, "net."):
		// The network mode is not a security key: compose refuses net.*
		// when the container shares the host's or another's namespace.
	case name == "kernel.domainname":
		if s.Uts == "host" {
			return fail("belongs to the UTS namespace, which uts: host shares with the host")
		}
	case name == "kernel.hostname":
		return fail("is set with the hostname key")
	default:
		return fail("is not namespaced: setting it would change the host")
	}
	return nil
}

// tmpfsFlags are the mount flags a tmpfs entry may carry besides key=value
// options, as mount(8) spells them.
var tmpfsFlags = []string{
	"ro", "rw", "exec", "noexec", "suid", "nosuid", "dev", "nodev", "sync", "async",
	"atime", "noatime", "diratime", "nodiratime", "relatime", "norelatime",
	"strictatime", "nostrictatime", "mand", "nomand", "dirsync",
}

// tmpfsKeys are tmpfs's own key=value options.
var tmpfsKeys = []string{"size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol", "huge", "inode64", "noswap"}

// ParseTmpfs reads Docker's "PATH[:OPTIONS]" form of a tmpfs entry.
func ParseTmpfs(s string) (Tmpfs, error) {
	target, opts, _ := strings.Cut(s, ":")
	t := Tmpfs{Target: target}
	if opts != "" {
		t.Options = strings.Split(opts, ",")
	}
	return t, checkTmpfs(t)
}

func checkTmpfs(t Tmpfs) error {
	if !path.IsAbs(t.Target) || path.Clean(t.Target) == "/" {
		return invalid("tmpfs", "%q: want an absolute path other than /", t.Target)
	}
	for _, o := range t.Options {
		k, v, hasValue := strings.Cut(o, "=")
		switch {
		case !hasValue && slices.Contains(tmpfsFlags, o), o == "inode64", o == "noswap":
		case hasValue && k == "mode":
			if _, err := strconv.ParseUint(v, 8, 32); err != nil {
				return invalid("tmpfs", "%s: mode %q is not octal", t.Target, v)
			}
		case hasValue && k == "size":
			if _, err := parseTmpfsSize(v); err != nil {
				return invalid("tmpfs", "%s: size %q: %v", t.Target, v, err)
			}
		case hasValue && slices.Contains(tmpfsKeys, k):
		default:
			return invalid("tmpfs", "%s: unknown option %q", t.Target, o)
		}
	}
	return nil
}

// parseTmpfsSize accepts what tmpfs accepts: a number with an optional k, m
// or g suffix, or a percentage of memory.
func parseTmpfsSize(v string) (uint64, error) {
	n := strings.TrimSuffix(v, "%")
	mult := uint64(1)
	if n == v && v != "" {
		switch strings.ToLower(v[len(v)-1:]) {
		case "k":
			mult, n = 1<<10, v[:len(v)-1]
		case "m":
			mult, n = 1<<20, v[:len(v)-1]
		case "g":
			mult, n = 1<<30, v[:len(v)-1]
		}
	}
	x, err := strconv.ParseUint(n, 10, 64)
	if err != nil {
		return 0, errors.New("want a number with an optional k, m, g or % suffix")
	}
	return x * mult, nil
}

// ParseDeviceCgroupRule reads Docker's "TYPE MAJOR:MINOR ACCESS" rule, for
// example "c 1:3 rwm" or "b 7:* r"; "a" means every device.
func ParseDeviceCgroupRule(rule string) (specs.LinuxDeviceCgroup, error) {
	bad := func(why string) (specs.LinuxDeviceCgroup, error) {
		return specs.LinuxDeviceCgroup{}, fmt.Errorf("rule %q: %s (want TYPE MAJOR:MINOR ACCESS, e.g. \"c 1:3 rwm\"): %w", rule, why, errdefs.ErrInvalidArgument)
	}
	f := strings.Fields(rule)
	if len(f) != 3 {
		return bad("three fields expected")
	}
	if f[0] != "a" && f[0] != "b" && f[0] != "c" {
		return bad("type must be a, b or c")
	}
	majS, minS, ok := strings.Cut(f[1], ":")
	if !ok {
		return bad("MAJOR:MINOR expected")
	}
	num := func(s string) (*int64, bool) {
		if s == "*" {
			return nil, true
		}
		n, err := strconv.ParseInt(s, 10, 64)
		return &n, err == nil && n >= 0
	}
	maj, ok1 := num(majS)
	min, ok2 := num(minS)
	if !ok1 || !ok2 {
		return bad("major and minor must be numbers or *")
	}
	if err := checkAccess(f[2]); err != nil {
		return bad(err.Error())
	}
	return specs.LinuxDeviceCgroup{Allow: true, Type: f[0], Major: maj, Minor: min, Access: f[2]}, nil
}

func checkAccess(a string) error {
	if a == "" || strings.Trim(a, "rwm") != "" || len(a) > 3 {
		return fmt.Errorf("access %q must be made of r, w and m", a)
	}
	return nil
}

// Validate checks every resource limit against its range and the host:
// memory at least MinMemory, no more CPUs than the host has, block devices
// that exist. Errors are a *FieldError carrying errdefs.ErrInvalidArgument.
func (r Resources) Validate() error {
	if r.Memory != 0 && r.Memory < MinMemory {
		return invalid("memory", "%s is below the minimum of 6 MiB", bytesString(r.Memory))
	}
	if r.MemorySwap != 0 && r.MemorySwap != -1 {
		if r.Memory == 0 {
			return invalid("memory_swap", "needs a memory limit too")
		}
		if r.MemorySwap < r.Memory {
			return invalid("memory_swap", "%s is below the memory limit %s (it counts memory plus swap)", bytesString(r.MemorySwap), bytesString(r.Memory))
		}
	}
	if r.MemoryReservation < 0 || (r.Memory > 0 && r.MemoryReservation > r.Memory) {
		return invalid("memory_reservation", "%s must be between 0 and the memory limit", bytesString(r.MemoryReservation))
	}
	if s := r.MemorySwappiness; s != nil && (*s < 0 || *s > 100) {
		return invalid("memory_swappiness", "%d is outside 0 to 100", *s)
	}
	if n := runtime.NumCPU(); r.NanoCPUs < 0 || r.NanoCPUs > int64(n)*1e9 {
		return invalid("nano_cpus", "%.2f CPUs asked, this host has %d", float64(r.NanoCPUs)/1e9, n)
	}
	if r.NanoCPUs > 0 && (r.CPUQuota != 0 || r.CPUPeriod != 0) {
		return invalid("nano_cpus", "cpus cannot be combined with cpu_quota or cpu_period")
	}
	if r.CPUShares < 0 || (r.CPUShares > 0 && r.CPUShares < 2) || r.CPUShares > 262144 {
		return invalid("cpu_shares", "%d is outside 2 to 262144", r.CPUShares)
	}
	if r.CPUQuota != 0 && r.CPUQuota != -1 && r.CPUQuota < 1000 {
		return invalid("cpu_quota", "%d µs is below the minimum of 1000", r.CPUQuota)
	}
	if r.CPUPeriod != 0 && (r.CPUPeriod < 1000 || r.CPUPeriod > 1000000) {
		return invalid("cpu_period", "%d µs is outside 1000 to 1000000", r.CPUPeriod)
	}
	if r.CPURealtimeRuntime < -1 || r.CPURealtimePeriod < 0 || (r.CPURealtimePeriod > 0 && r.CPURealtimeRuntime > r.CPURealtimePeriod) {
		return invalid("cpu_rt_runtime", "%d µs must be at most cpu_rt_period", r.CPURealtimeRuntime)
	}
	if r.CpusetCpus != "" {
		if err := checkCpuset(r.CpusetCpus); err != nil {
			return &FieldError{Field: "cpuset", Err: err}
		}
	}
	if r.PidsLimit < -1 {
		return invalid("pids_limit", "%d: want a positive number, or -1 for no limit", r.PidsLimit)
	}
	if w := r.BlkioWeight; w != 0 && (w < 10 || w > 1000) {
		return invalid("blkio_config", "weight %d is outside 10 to 1000", w)
	}
	for _, d := range r.BlkioWeightDevice {
		if d.Weight < 10 || d.Weight > 1000 {
			return invalid("blkio_config", "weight_device %s: weight %d is outside 10 to 1000", d.Path, d.Weight)
		}
	}
	for _, d := range r.blockDevices() {
		if _, _, err := blockDevice(d); err != nil {
			return &FieldError{Field: "blkio_config", Err: err}
		}
	}
	return nil
}

func (r Resources) blockDevices() []string {
	var out []string
	for _, d := range r.BlkioWeightDevice {
		out = append(out, d.Path)
	}
	for _, l := range [][]ThrottleDevice{r.BlkioDeviceReadBps, r.BlkioDeviceWriteBps, r.BlkioDeviceReadIOps, r.BlkioDeviceWriteIOps} {
		for _, d := range l {
			out = append(out, d.Path)
		}
	}
	return out
}

// checkCpuset parses a CPU list ("0-2,4") and checks the CPUs exist.
func checkCpuset(list string) error {
	cpus, err := parseCPUList(list)
	if err != nil {
		return fmt.Errorf("%q: %v: %w", list, err, errdefs.ErrInvalidArgument)
	}
	n := runtime.NumCPU()
	if b, err := os.ReadFile("/sys/devices/system/cpu/online"); err == nil {
		if online, err := parseCPUList(strings.TrimSpace(string(b))); err == nil {
			for _, c := range cpus {
				if !slices.Contains(online, c) {
					return fmt.Errorf("CPU %d of %q is not online on this host (online: %s): %w", c, list, strings.TrimSpace(string(b)), errdefs.ErrInvalidArgument)
				}
			}
			return nil
		}
	}
	for _, c := range cpus {
		if c >= n {
			return fmt.Errorf("CPU %d of %q: this host has %d: %w", c, list, n, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

func parseCPUList(s string) ([]int, error) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("%q is not a CPU number or range", part)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("%q is not a CPU range", part)
			}
		}
		for c := a; c <= b; c++ {
			out = append(out, c)
		}
	}
	return out, nil
}

func bytesString(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
