package container

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/cgroups"
	devices "github.com/opencontainers/cgroups/devices/config"
	"github.com/opencontainers/cgroups/fs2"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func testSpec(t *testing.T, sec Security, res Resources) *specs.Spec {
	t.Helper()
	s, err := Spec(SpecOptions{
		Rootfs:      "/tmp/rootfs",
		CgroupsPath: "/berth-test/abc",
		Hostname:    "web",
		Process:     Process{Args: []string{"sh"}, Cwd: "/"},
	}, SecurityOpts(sec, res)...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// libcontainerConfig converts the spec as the shim does.
func libcontainerConfig(t *testing.T, s *specs.Spec) *configs.Config {
	t.Helper()
	s.Root.Path = filepath.Join(t.TempDir(), "rootfs")
	cfg, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{CgroupName: "abc", Spec: s})
	if err != nil {
		t.Fatalf("specconv: %v", err)
	}
	return cfg
}

func TestCapabilities(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		add, drop []string
		has, not  []string
		n         int // expected size, 0 to skip
	}{
		{"drop one", nil, []string{"CAP_NET_RAW"}, []string{"CAP_CHOWN"}, []string{"CAP_NET_RAW"}, 13},
		{"add one", []string{"CAP_NET_ADMIN"}, nil, []string{"CAP_NET_ADMIN", "CAP_CHOWN"}, nil, 15},
		{"drop all, add one", []string{"CAP_NET_BIND_SERVICE"}, []string{"ALL"}, []string{"CAP_NET_BIND_SERVICE"}, []string{"CAP_CHOWN"}, 1},
		{"add all but one", []string{"ALL"}, []string{"CAP_SYS_ADMIN"}, []string{"CAP_SYS_PTRACE", "CAP_NET_ADMIN"}, []string{"CAP_SYS_ADMIN"}, len(AllCapabilities()) - 1},
		{"add twice", []string{"CAP_CHOWN"}, nil, []string{"CAP_CHOWN"}, nil, 14},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testSpec(t, Security{CapAdd: tc.add, CapDrop: tc.drop}, Resources{})
			c := s.Process.Capabilities
			for _, set := range [][]string{c.Bounding, c.Effective, c.Permitted} {
				for _, h := range tc.has {
					if !slices.Contains(set, h) {
						t.Errorf("%s missing from %v", h, set)
					}
				}
				for _, n := range tc.not {
					if slices.Contains(set, n) {
						t.Errorf("%s present in %v", n, set)
					}
				}
				if tc.n > 0 && len(set) != tc.n {
					t.Errorf("%d capabilities, want %d: %v", len(set), tc.n, set)
				}
			}
			if len(c.Inheritable)+len(c.Ambient) > 0 {
				t.Errorf("inheritable or ambient capabilities set: %v %v", c.Inheritable, c.Ambient)
			}
		})
	}
}

func TestNormalizeCapability(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"net_admin": "CAP_NET_ADMIN", "CAP_SYS_TIME": "CAP_SYS_TIME", "all": "ALL", " chown ": "CAP_CHOWN"} {
		if got, err := NormalizeCapability(in); err != nil || got != want {
			t.Errorf("%q = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := NormalizeCapability("CAP_FLY"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("unknown capability: %v", err)
	}
}

func TestPrivileged(t *testing.T) {
	t.Parallel()
	s := testSpec(t, Security{Privileged: true}, Resources{})
	if len(s.Process.Capabilities.Bounding) != len(AllCapabilities()) {
		t.Errorf("privileged caps %d, want all %d", len(s.Process.Capabilities.Bounding), len(AllCapabilities()))
	}
	if s.Linux.Seccomp != nil {
		t.Errorf("privileged container has a seccomp profile")
	}
	if len(s.Linux.MaskedPaths)+len(s.Linux.ReadonlyPaths) > 0 {
		t.Errorf("privileged container has masked paths")
	}
	for _, m := range s.Mounts {
		if (m.Destination == "/sys" || m.Destination == "/sys/fs/cgroup") && slices.Contains(m.Options, "ro") {
			t.Errorf("%s read-only", m.Destination)
		}
	}
	if r := s.Linux.Resources.Devices; len(r) != 1 || !r[0].Allow || r[0].Access != "rwm" {
		t.Errorf("device rules %+v, want allow all", r)
	}
	if !slices.ContainsFunc(s.Linux.Devices, func(d specs.LinuxDevice) bool { return d.Path == "/dev/null" }) {
		t.Errorf("host devices not added")
	}
	// A profile given with privileged still applies, as in Docker.
	s = testSpec(t, Security{Privileged: true, Seccomp: `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["chmod"],"action":"SCMP_ACT_ERRNO"}]}`}, Resources{})
	if s.Linux.Seccomp == nil || len(s.Linux.Seccomp.Syscalls) != 1 {
		t.Errorf("explicit profile dropped for a privileged container: %+v", s.Linux.Seccomp)
	}
}

func TestSeccompChoices(t *testing.T) {
	t.Parallel()
	if s := testSpec(t, Security{Seccomp: SeccompUnconfined}, Resources{}); s.Linux.Seccomp != nil {
		t.Errorf("unconfined kept a profile")
	}
	def := testSpec(t, Security{}, Resources{})
	admin := testSpec(t, Security{CapAdd: []string{"CAP_SYS_ADMIN"}}, Resources{})
	// Docker's profile allows mount to CAP_SYS_ADMIN only: the default
	// profile must follow the capabilities set before it.
	allows := func(s *specs.Spec, name string) bool {
		for _, sc := range s.Linux.Seccomp.Syscalls {
			if sc.Action == specs.ActAllow && slices.Contains(sc.Names, name) {
				return true
			}
		}
		return false
	}
	if allows(def, "mount") || !allows(admin, "mount") {
		t.Errorf("mount allowed: default %v, with CAP_SYS_ADMIN %v", allows(def, "mount"), allows(admin, "mount"))
	}
	cfg := libcontainerConfig(t, testSpec(t, Security{Seccomp: `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read","write"],"action":"SCMP_ACT_ALLOW"}]}`}, Resources{}))
	if cfg.Seccomp == nil || cfg.Seccomp.DefaultAction != configs.Errno || len(cfg.Seccomp.Syscalls) != 2 {
		t.Errorf("custom profile not converted: %+v", cfg.Seccomp)
	}
}

func TestSecurityKeysInSpec(t *testing.T) {
	t.Parallel()
	adj := -500
	s := testSpec(t, Security{
		NoNewPrivileges:   true,
		ReadOnly:          true,
		ShmSize:           8 << 20,
		OomScoreAdj:       &adj,
		Tmpfs:             []Tmpfs{{Target: "/run", Options: []string{"exec", "size=1m"}}},
		Sysctls:           map[string]string{"net.ipv4.ip_forward": "1"},
		Ulimits:           []Ulimit{{Name: "nofile", Soft: 100, Hard: 200}, {Name: "core", Soft: -1, Hard: -1}},
		DeviceCgroupRules: []string{"c 10:229 rwm"},
		Uts:               "host",
		Cgroup:            "private",
		Pid:               "host",
	}, Resources{})
	if !s.Process.NoNewPrivileges || !s.Root.Readonly {
		t.Errorf("no_new_privs %v, read-only root %v", s.Process.NoNewPrivileges, s.Root.Readonly)
	}
	mounts := map[string]specs.Mount{}
	for _, m := range s.Mounts {
		mounts[m.Destination] = m
	}
	if o := mounts["/dev/shm"].Options; !slices.Contains(o, "size=8388608") || slices.Contains(o, "size=65536k") {
		t.Errorf("/dev/shm options %v", o)
	}
	if o := mounts["/run"].Options; mounts["/run"].Type != "tmpfs" || slices.Contains(o, "noexec") || !slices.Contains(o, "exec") || !slices.Contains(o, "nosuid") || !slices.Contains(o, "size=1m") {
		t.Errorf("/run tmpfs %+v", mounts["/run"])
	}
	if *s.Process.OOMScoreAdj != -500 {
		t.Errorf("oom_score_adj %v", *s.Process.OOMScoreAdj)
	}
	nofile := slices.IndexFunc(s.Process.Rlimits, func(r specs.POSIXRlimit) bool { return r.Type == "RLIMIT_NOFILE" })
	core := slices.IndexFunc(s.Process.Rlimits, func(r specs.POSIXRlimit) bool { return r.Type == "RLIMIT_CORE" })
	if len(s.Process.Rlimits) != 2 || s.Process.Rlimits[nofile].Soft != 100 || s.Process.Rlimits[core].Hard != ^uint64(0) {
		t.Errorf("rlimits %+v", s.Process.Rlimits)
	}
	if hasNS(s, specs.UTSNamespace) || s.Hostname != "" || hasNS(s, specs.PIDNamespace) || !hasNS(s, specs.CgroupNamespace) {
		t.Errorf("namespaces %+v, hostname %q", s.Linux.Namespaces, s.Hostname)
	}
	cfg := libcontainerConfig(t, s)
	if cfg.Sysctl["net.ipv4.ip_forward"] != "1" || !cfg.Readonlyfs || !cfg.NoNewPrivileges {
		t.Errorf("libcontainer config lost keys: %v %v %v", cfg.Sysctl, cfg.Readonlyfs, cfg.NoNewPrivileges)
	}
	if !slices.ContainsFunc(cfg.Cgroups.Resources.Devices, func(r *devices.Rule) bool {
		return r.Allow && r.Type == devices.CharDevice && r.Major == 10 && r.Minor == 229 && r.Permissions == "rwm"
	}) {
		t.Errorf("device cgroup rule missing from %+v", cfg.Cgroups.Resources.Devices)
	}
}

func TestDevices(t *testing.T) {
	t.Parallel()
	s := testSpec(t, Security{Devices: []Device{{Source: "/dev/null", Target: "/dev/mynull", Permissions: "rw"}}}, Resources{})
	d := s.Linux.Devices[len(s.Linux.Devices)-1]
	if d.Path != "/dev/mynull" || d.Type != "c" || d.Major != 1 || d.Minor != 3 {
		t.Errorf("device %+v", d)
	}
	r := s.Linux.Resources.Devices[len(s.Linux.Resources.Devices)-1]
	if !r.Allow || *r.Major != 1 || *r.Minor != 3 || r.Access != "rw" {
		t.Errorf("device rule %+v", r)
	}
}

// TestResourcesCgroupV1 checks what libcontainer will write on this kind
// of host, through the config the shim builds.
func TestResourcesCgroupV1(t *testing.T) {
	t.Parallel()
	swappiness := int64(10)
	res := Resources{
		Memory: 64 << 20, MemoryReservation: 32 << 20, MemorySwappiness: &swappiness,
		NanoCPUs: 1.5e9, CPUShares: 512, CpusetCpus: "0", PidsLimit: 50,
	}
	cfg := libcontainerConfig(t, testSpec(t, Security{}, res))
	r := cfg.Cgroups.Resources
	if r.Memory != 64<<20 || r.MemoryReservation != 32<<20 || *r.MemorySwappiness != 10 {
		t.Errorf("memory %d reservation %d swappiness %v", r.Memory, r.MemoryReservation, r.MemorySwappiness)
	}
	if SwapLimitSupported() && r.MemorySwap != 128<<20 {
		t.Errorf("memory+swap %d, want twice the memory as Docker", r.MemorySwap)
	}
	if r.CpuQuota != 150000 || r.CpuPeriod != 100000 || r.CpuShares != 512 || r.CpusetCpus != "0" || r.PidsLimit == nil || *r.PidsLimit != 50 {
		t.Errorf("cpu quota %d period %d shares %d cpuset %q pids %d", r.CpuQuota, r.CpuPeriod, r.CpuShares, r.CpusetCpus, r.PidsLimit)
	}
}

// TestResourcesCgroupV2 applies the config the shim builds to a fake
// cgroup v2 directory with libcontainer's own v2 manager, and reads back
// the files it wrote: the v2 path tested on a v1 host.
func TestResourcesCgroupV2(t *testing.T) {
	// cgroups.TestMode is process-wide: not parallel.
	cgroups.TestMode = true
	t.Cleanup(func() { cgroups.TestMode = false })
	type v2case struct {
		name  string
		res   Resources
		files map[string]string
	}
	var cases []v2case
	for _, tc := range []v2case{
		{"memory", Resources{Memory: 64 << 20, MemorySwap: 96 << 20, MemoryReservation: 16 << 20}, map[string]string{
			"memory.max": "67108864", "memory.swap.max": "33554432", "memory.low": "16777216"}},
		{"unlimited swap", Resources{Memory: 64 << 20, MemorySwap: -1}, map[string]string{"memory.max": "67108864", "memory.swap.max": "max"}},
		{"cpus", Resources{NanoCPUs: 5e8}, map[string]string{"cpu.max": "50000 100000"}},
		{"quota", Resources{CPUQuota: 20000, CPUPeriod: 50000}, map[string]string{"cpu.max": "20000 50000"}},
		{"Docker's default shares are v2's default weight", Resources{CPUShares: 1024}, map[string]string{"cpu.weight": "100"}},
		{"cpuset", Resources{CpusetCpus: "0"}, map[string]string{"cpuset.cpus": "0"}},
		{"pids", Resources{PidsLimit: 50}, map[string]string{"pids.max": "50"}},
		{"no pids limit", Resources{PidsLimit: -1}, map[string]string{"pids.max": "max"}},
	} {
		cases = append(cases, tc)
	}
	if dev, majmin := blockDeviceForTest(); dev != "" {
		// The fake io.max keeps the last line written, so one rate each.
		cases = append(cases,
			v2case{"read rate", Resources{BlkioDeviceReadBps: []ThrottleDevice{{Path: dev, Rate: 1 << 20}}}, map[string]string{"io.max": majmin + " rbps=1048576"}},
			v2case{"write rate", Resources{BlkioDeviceWriteIOps: []ThrottleDevice{{Path: dev, Rate: 100}}}, map[string]string{"io.max": majmin + " wiops=100"}})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := libcontainerConfig(t, testSpec(t, Security{}, tc.res))
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "cgroup.controllers"), []byte("cpuset cpu io memory pids\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			m, err := fs2.NewManager(cfg.Cgroups, dir)
			if err != nil {
				t.Fatal(err)
			}
			r := cfg.Cgroups.Resources
			r.Devices = nil // eBPF needs a real cgroup
			if err := m.Set(r); err != nil {
				t.Fatalf("v2 set: %v", err)
			}
			for f, want := range tc.files {
				got, err := os.ReadFile(filepath.Join(dir, f))
				if err != nil || strings.TrimSpace(string(got)) != want {
					t.Errorf("%s = %q (%v), want %q", f, got, err, want)
				}
			}
		})
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	one := 2000
	for _, tc := range []struct {
		name  string
		sec   Security
		res   Resources
		field string
	}{
		{"unknown capability", Security{CapAdd: []string{"CAP_FLY"}}, Resources{}, "cap_add"},
		{"unknown ulimit", Security{Ulimits: []Ulimit{{Name: "files", Soft: 1, Hard: 1}}}, Resources{}, "ulimits"},
		{"soft above hard", Security{Ulimits: []Ulimit{{Name: "nofile", Soft: 10, Hard: 5}}}, Resources{}, "ulimits"},
		{"host sysctl", Security{Sysctls: map[string]string{"vm.swappiness": "1"}}, Resources{}, "sysctls"},
		{"ipc sysctl with host ipc", Security{Ipc: "host", Sysctls: map[string]string{"kernel.shmmax": "1"}}, Resources{}, "sysctls"},
		{"hostname sysctl", Security{Sysctls: map[string]string{"kernel.hostname": "x"}}, Resources{}, "sysctls"},
		{"missing device", Security{Devices: []Device{{Source: "/dev/does-not-exist"}}}, Resources{}, "devices"},
		{"not a device", Security{Devices: []Device{{Source: "/etc/passwd"}}}, Resources{}, "devices"},
		{"bad device permissions", Security{Devices: []Device{{Source: "/dev/null", Permissions: "rwx"}}}, Resources{}, "devices"},
		{"bad cgroup rule", Security{DeviceCgroupRules: []string{"c 1:x rwm"}}, Resources{}, "device_cgroup_rules"},
		{"broken seccomp profile", Security{Seccomp: `{"defaultAction": `}, Resources{}, "security_opt"},
		{"unknown seccomp action", Security{Seccomp: `{"defaultAction":"SCMP_ACT_FLY"}`}, Resources{}, "security_opt"},
		{"bad label", Security{Label: []string{"colour:blue"}}, Resources{}, "security_opt"},
		{"bad tmpfs option", Security{Tmpfs: []Tmpfs{{Target: "/x", Options: []string{"size=big"}}}}, Resources{}, "tmpfs"},
		{"relative tmpfs", Security{Tmpfs: []Tmpfs{{Target: "x"}}}, Resources{}, "tmpfs"},
		{"bad ipc", Security{Ipc: "sometimes"}, Resources{}, "ipc"},
		{"oom score", Security{OomScoreAdj: &one}, Resources{}, "oom_score_adj"},
		{"tiny memory", Security{}, Resources{Memory: 1024}, "memory"},
		{"swap below memory", Security{}, Resources{Memory: 64 << 20, MemorySwap: 32 << 20}, "memory_swap"},
		{"reservation above limit", Security{}, Resources{Memory: 64 << 20, MemoryReservation: 128 << 20}, "memory_reservation"},
		{"too many cpus", Security{}, Resources{NanoCPUs: 4096e9}, "nano_cpus"},
		{"cpus and quota", Security{}, Resources{NanoCPUs: 1e9, CPUQuota: 50000}, "nano_cpus"},
		{"missing cpu", Security{}, Resources{CpusetCpus: "0,4095"}, "cpuset"},
		{"bad cpuset", Security{}, Resources{CpusetCpus: "a-b"}, "cpuset"},
		{"pids", Security{}, Resources{PidsLimit: -5}, "pids_limit"},
		{"blkio weight", Security{}, Resources{BlkioWeight: 5000}, "blkio_config"},
		{"missing block device", Security{}, Resources{BlkioDeviceReadBps: []ThrottleDevice{{Path: "/dev/nope", Rate: 1}}}, "blkio_config"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.sec.Validate()
			if err == nil {
				err = tc.res.Validate()
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field || !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("err = %v, want a field error on %s", err, tc.field)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
	if err := (Security{Sysctls: map[string]string{"net.core.somaxconn": "1024", "kernel.msgmax": "1", "fs.mqueue.msg_max": "20"}, Ulimits: []Ulimit{{Name: "nofile", Soft: -1, Hard: -1}}}).Validate(); err != nil {
		t.Errorf("namespaced sysctls refused: %v", err)
	}
}

func TestParseDeviceCgroupRule(t *testing.T) {
	t.Parallel()
	r, err := ParseDeviceCgroupRule("b 7:* rm")
	if err != nil || r.Type != "b" || *r.Major != 7 || r.Minor != nil || r.Access != "rm" || !r.Allow {
		t.Errorf("rule %+v, %v", r, err)
	}
	for _, bad := range []string{"", "c 1:3", "x 1:3 r", "c 13 r", "c 1:3 rwx", "c -1:3 r"} {
		if _, err := ParseDeviceCgroupRule(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// blockDeviceForTest finds a block device of this host and its
// "major:minor", or nothing.
func blockDeviceForTest() (string, string) {
	devs, _ := filepath.Glob("/sys/block/*/dev")
	for _, d := range devs {
		majmin, err := os.ReadFile(d)
		name := filepath.Base(filepath.Dir(d))
		if _, serr := os.Stat("/dev/" + name); err == nil && serr == nil {
			return "/dev/" + name, strings.TrimSpace(string(majmin))
		}
	}
	return "", ""
}
