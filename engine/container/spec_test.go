package container

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func hasNS(s *specs.Spec, t specs.LinuxNamespaceType) bool {
	return slices.ContainsFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == t })
}

// TestSpecDefaults checks the floor every container gets, and that the
// libcontainer config built from it carries the same settings on both cgroup
// versions (the v2 path is checked here even on a v1 host).
func TestSpecDefaults(t *testing.T) {
	t.Parallel()
	for _, v2 := range []bool{false, true} {
		s, err := Spec(SpecOptions{
			Rootfs:      "/tmp/rootfs",
			CgroupsPath: "/berth-test/abc",
			CgroupV2:    v2,
			Hostname:    "web",
			NetNS:       "/run/berth/netns/abc",
			Process:     Process{Args: []string{"sh"}, Cwd: "/", Env: []string{"PATH=/bin"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, ns := range []specs.LinuxNamespaceType{specs.PIDNamespace, specs.MountNamespace, specs.UTSNamespace, specs.IPCNamespace, specs.NetworkNamespace} {
			if !hasNS(s, ns) {
				t.Errorf("v2=%v: namespace %s missing", v2, ns)
			}
		}
		if hasNS(s, specs.CgroupNamespace) != v2 {
			t.Errorf("v2=%v: cgroup namespace present=%v", v2, !v2)
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
		dir := t.TempDir()
		wd, _ := os.Getwd()
		_ = wd
		s.Root.Path = filepath.Join(dir, "rootfs")
		cfg, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{CgroupName: "abc", Spec: s})
		if err != nil {
			t.Fatalf("v2=%v: specconv: %v", v2, err)
		}
		if cfg.Cgroups.Path != "/berth-test/abc" {
			t.Errorf("cgroup path %q", cfg.Cgroups.Path)
		}
		if cfg.Seccomp == nil || cfg.Seccomp.DefaultAction != configs.Errno {
			t.Errorf("seccomp not converted")
		}
		if cfg.Namespaces.Contains(configs.NEWCGROUP) != v2 {
			t.Errorf("v2=%v: libcontainer cgroup ns mismatch", v2)
		}
		if p := cfg.Namespaces.PathOf(configs.NEWNET); p != "/run/berth/netns/abc" {
			t.Errorf("netns path %q", p)
		}
		if cfg.Cgroups.Resources == nil || len(cfg.Cgroups.Resources.Devices) == 0 {
			t.Errorf("device rules missing")
		}
	}
	_ = cgroups.IsCgroup2UnifiedMode
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
