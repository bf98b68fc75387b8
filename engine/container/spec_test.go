package container

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func hasNS(s *specs.Spec, t specs.LinuxNamespaceType) bool {
	return slices.ContainsFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == t })
}

// TestSpecDefaults checks the floor every container gets, and that the
// libcontainer config built from it carries the same settings. The spec
// is the same on cgroup v1 and v2 hosts (libcontainer picks the
// /sys/fs/cgroup mount's kind from the host when it starts).
func TestSpecDefaults(t *testing.T) {
	t.Parallel()
	s, err := Spec(SpecOptions{
		Rootfs:      "/tmp/rootfs",
		CgroupsPath: "/berth-test/abc",
		Hostname:    "web",
		NetNS:       "/run/berth/netns/abc",
		Process:     Process{Args: []string{"sh"}, Cwd: "/", Env: []string{"PATH=/bin"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []specs.LinuxNamespaceType{specs.PIDNamespace, specs.MountNamespace, specs.UTSNamespace, specs.IPCNamespace, specs.NetworkNamespace, specs.CgroupNamespace} {
		if !hasNS(s, ns) {
			t.Errorf("namespace %s missing", ns)
		}
	}
	if got := s.Process.Capabilities.Bounding; len(got) != 14 || slices.Contains(got, "CAP_SYS_ADMIN") {
		t.Errorf("capabilities %v", got)
	}
	if s.Linux.Seccomp == nil || s.Linux.Seccomp.DefaultAction != specs.ActErrno || len(s.Linux.Seccomp.Syscalls) == 0 {
		t.Fatalf("seccomp profile missing or not default-deny")
	}
	if !slices.Contains(s.Linux.MaskedPaths, "/proc/kcore") || !slices.Contains(s.Linux.ReadonlyPaths, "/proc/sys") {
		t.Errorf("masked/readonly paths missing")
	}

	// specconv resolves against the working directory.
	s.Root.Path = filepath.Join(t.TempDir(), "rootfs")
	cfg, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{CgroupName: "abc", Spec: s})
	if err != nil {
		t.Fatalf("specconv: %v", err)
	}
	if cfg.Cgroups.Path != "/berth-test/abc" {
		t.Errorf("cgroup path %q", cfg.Cgroups.Path)
	}
	if cfg.Seccomp == nil || cfg.Seccomp.DefaultAction != configs.Errno {
		t.Errorf("seccomp not converted")
	}
	if !cfg.Namespaces.Contains(configs.NEWCGROUP) {
		t.Errorf("libcontainer config lacks the cgroup namespace")
	}
	if p := cfg.Namespaces.PathOf(configs.NEWNET); p != "/run/berth/netns/abc" {
		t.Errorf("netns path %q", p)
	}
	if cfg.Cgroups.Resources == nil || len(cfg.Cgroups.Resources.Devices) == 0 {
		t.Errorf("device rules missing")
	}
}

// TestCgroupNamespaceIsPrivateUnlessHost: every container gets a cgroup
// namespace of its own, on cgroup v1 hosts too (there libcontainer then
// mounts each controller instead of binding and remounting it), and
// `cgroup: host` gives it the host's, so it sees Docker's v1 view.
func TestCgroupNamespaceIsPrivateUnlessHost(t *testing.T) {
	t.Parallel()
	if !cgroupNamespaces() {
		t.Skip("the kernel has no cgroup namespaces")
	}
	count := func(s *specs.Spec) int {
		n := 0
		for _, ns := range s.Linux.Namespaces {
			if ns.Type == specs.CgroupNamespace {
				n++
			}
		}
		return n
	}
	for _, tc := range []struct {
		cgroup string
		want   int
	}{{"", 1}, {"private", 1}, {"host", 0}} {
		s := testSpec(t, Security{Cgroup: tc.cgroup}, Resources{})
		if got := count(s); got != tc.want {
			t.Errorf("cgroup %q: %d cgroup namespaces in the spec, want %d", tc.cgroup, got, tc.want)
		}
		if got := libcontainerConfig(t, s).Namespaces.Contains(configs.NEWCGROUP); got != (tc.want == 1) {
			t.Errorf("cgroup %q: libcontainer's cgroup namespace %v", tc.cgroup, got)
		}
	}
}

func TestResolveUser(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc/group"), []byte("root:x:0:\napp:x:1001:\nstaff:x:50:app\n"), 0o644)
	for _, tc := range []struct {
		in       string
		uid, gid uint32
		ok       bool
	}{
		{"", 0, 0, true},
		{"1000", 1000, 1001, true},
		{"1234:99", 1234, 99, true},
		{"app", 1000, 1001, true},
		{"app:staff", 1000, 50, true},
		{"nobody-here", 0, 0, false},
	} {
		uid, gid, _, err := ResolveUser(root, tc.in)
		if (err == nil) != tc.ok || (tc.ok && (uid != tc.uid || gid != tc.gid)) {
			t.Errorf("%q: uid=%d gid=%d err=%v", tc.in, uid, gid, err)
		}
	}
	// A passwd that is a link out of the root must not be read.
	evil := t.TempDir()
	os.MkdirAll(filepath.Join(evil, "etc"), 0o755)
	os.Symlink("/etc/passwd", filepath.Join(evil, "etc/passwd"))
	if _, _, _, err := ResolveUser(evil, "root"); err == nil {
		t.Errorf("resolved a user through a link that leaves the root")
	}
}
