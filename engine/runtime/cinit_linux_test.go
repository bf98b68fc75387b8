package runtime

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// plainConfig is libcontainer's configuration of a plain container, as
// specconv converts Berth's kind of spec.
func plainConfig(t *testing.T) *configs.Config {
	t.Helper()
	spec := &specs.Spec{
		Version:  specs.Version,
		Root:     &specs.Root{Path: "/rootfs"},
		Hostname: "h",
		Process:  &specs.Process{Args: []string{"sleep", "1"}, Cwd: "/", Env: []string{"PATH=/bin"}},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid", "noexec", "nodev"}},
			{Destination: "/etc/hosts", Type: "bind", Source: "/run/x/hosts", Options: []string{"rbind", "rprivate"}},
		},
		Linux: &specs.Linux{
			CgroupsPath:   "/berth-test/c1",
			MaskedPaths:   []string{"/proc/kcore"},
			ReadonlyPaths: []string{"/proc/sys"},
			Namespaces: []specs.LinuxNamespace{{Type: "pid"}, {Type: "network"}, {Type: "ipc"}, {Type: "uts"},
				{Type: "mount"}, {Type: "cgroup"}},
		},
	}
	c, err := libcontainerConfig("c1", t.TempDir(), spec)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCInitMustServeOnlyWhatItImplements: a plain container's
// configuration goes to the C init; one with what the C init does not do
// goes to libcontainer's Go init, with the reason.
func TestCInitMustServeOnlyWhatItImplements(t *testing.T) {
	p := &libcontainer.Process{Args: []string{"sleep", "1"}}
	if r := cinitReason(plainConfig(t), p, false); r != "" {
		t.Fatalf("plain container refused: %s", r)
	}
	for name, tc := range map[string]struct {
		change   func(*configs.Config)
		terminal bool
		want     string
	}{
		"terminal":    {terminal: true, want: "terminal"},
		"user ns":     {change: func(c *configs.Config) { c.Namespaces.Add(configs.NEWUSER, "") }, want: "user namespace"},
		"hooks":       {change: func(c *configs.Config) { c.Hooks = configs.Hooks{configs.Prestart: nil} }, want: "hooks"},
		"seccomp":     {change: func(c *configs.Config) { c.Seccomp = &configs.Seccomp{} }, want: "seccomp"},
		"apparmor":    {change: func(c *configs.Config) { c.AppArmorProfile = "p" }, want: "LSM"},
		"idmap":       {change: func(c *configs.Config) { c.Mounts[0].IDMapping = &configs.MountIDMapping{} }, want: "idmapped"},
		"copy-up":     {change: func(c *configs.Config) { c.Mounts[1].Extensions = 1 }, want: "copy-up"},
		"overlay":     {change: func(c *configs.Config) { c.Mounts[0].Device = "overlay" }, want: "device overlay"},
		"remount":     {change: func(c *configs.Config) { c.Mounts[0].Flags |= unix.MS_REMOUNT }, want: "flags"},
		"host cgroup": {change: func(c *configs.Config) { c.Namespaces.Remove(configs.NEWCGROUP) }, want: "cgroup namespace"},
		"veth":        {change: func(c *configs.Config) { c.Networks = append(c.Networks, &configs.Network{Type: "veth"}) }, want: "networks"},
	} {
		c := plainConfig(t)
		if tc.change != nil {
			tc.change(c)
		}
		if r := cinitReason(c, p, tc.terminal); !strings.Contains(r, tc.want) {
			t.Errorf("%s: reason %q, want one with %q", name, r, tc.want)
		}
	}
}

// TestCInitPlanMustCarryTheConfigInOrder: the plan has the mounts in the
// configuration's order, the paths, the user and the command.
func TestCInitPlanMustCarryTheConfigInOrder(t *testing.T) {
	c := plainConfig(t)
	c.NoNewPrivileges = true
	p := &libcontainer.Process{Args: []string{"sleep", "1"}, Env: []string{"PATH=/bin"}, Cwd: "/srv", UID: 1000, GID: 1001, AdditionalGroups: []int{5}}
	plan, err := cinitPlan("c1", c, p, "1:2:3:4:5", 4)
	if err != nil {
		t.Fatal(err)
	}
	words := strings.Split(strings.TrimSuffix(string(plan), "\x00"), "\x00")
	if words[0] != cinitMagic || words[len(words)-1] != "end" {
		t.Fatalf("plan framing: %q ... %q", words[0], words[len(words)-1])
	}
	text := strings.Join(words, " ")
	var order []string
	for i, w := range words {
		if w == "mount" {
			order = append(order, words[i+3])
		}
	}
	if got := strings.Join(order, " "); got != "/proc /dev /sys /sys/fs/cgroup /etc/hosts" {
		t.Errorf("mount order %q", got)
	}
	for _, want := range []string{
		"rootfs /rootfs", "lo", "mount bind /run/x/hosts /etc/hosts", "hostname h", "ro /proc/sys", "mask /proc/kcore",
		"keyring _ses.c1", "nnp", "user 1000 1001", "group 5", "caps 1:2:3:4:5", "seccomp 4", "cwd /srv",
		"env PATH=/bin", "arg sleep arg 1 end",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("plan lacks %q: %s", want, text)
		}
	}
	if bytes.Count(plan, []byte("\x00devlinks\x00")) != 1 {
		t.Errorf("plan has no /dev links step: %s", text)
	}
}

// TestSymlinkedMountTargetsMustGoToTheGoInit: a target the image reaches
// through a symlink (a dangling /etc/resolv.conf link, a /etc that links
// elsewhere) is named, so libcontainer's init resolves it as runc does;
// plain targets, missing ones and those under a file system mounted
// earlier in the list are not.
func TestSymlinkedMountTargetsMustGoToTheGoInit(t *testing.T) {
	mounts := func(dests ...string) []*configs.Mount {
		ms := []*configs.Mount{{Device: "tmpfs", Destination: "/dev"}}
		for _, d := range dests {
			ms = append(ms, &configs.Mount{Device: "bind", Destination: d})
		}
		return ms
	}
	for name, tc := range map[string]struct {
		links map[string]string // path under the root -> link text
		dirs  []string
		dests []string
		want  string
	}{
		"plain":            {dirs: []string{"etc", "dev"}, dests: []string{"/etc/hosts", "/etc/resolv.conf"}},
		"missing":          {dests: []string{"/etc/hosts", "/data/x"}},
		"dangling file":    {dirs: []string{"etc"}, links: map[string]string{"etc/resolv.conf": "../run/systemd/resolve/stub-resolv.conf"}, dests: []string{"/etc/hosts", "/etc/resolv.conf"}, want: "/etc/resolv.conf"},
		"linked directory": {links: map[string]string{"etc": "/elsewhere"}, dests: []string{"/etc/hosts"}, want: "/etc/hosts"},
		"under /dev":       {dirs: []string{"dev"}, links: map[string]string{"dev/shm": "/run/shm"}, dests: []string{"/dev/shm"}},
	} {
		root := t.TempDir()
		for _, d := range tc.dirs {
			if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		for p, to := range tc.links {
			if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(to, filepath.Join(root, p)); err != nil {
				t.Fatal(err)
			}
		}
		if got := symlinkedTarget(root, mounts(tc.dests...)); got != tc.want {
			t.Errorf("%s: symlinkedTarget = %q, want %q", name, got, tc.want)
		}
	}
}

// TestCInitMustNotServeOnAKernelWithoutItsCalls: a kernel that answers
// ENOSYS to a call the C init makes sends every container to the Go init;
// one that refuses the probes' arguments has them.
func TestCInitMustNotServeOnAKernelWithoutItsCalls(t *testing.T) {
	has := func() error { return unix.EBADF }
	missing := func() error { return unix.ENOSYS }
	if !kernelHasCInitCalls(has, has) {
		t.Error("calls that fail on their arguments taken for missing")
	}
	if kernelHasCInitCalls(has, missing) || kernelHasCInitCalls(missing, has) {
		t.Error("a call answering ENOSYS not taken for missing")
	}
	if !cinitKernel() {
		t.Error("this kernel taken for one without openat2 or mount_setattr")
	}
}
