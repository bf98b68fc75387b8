package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/cgroups"
	"golang.org/x/sys/unix"
)

// inside runs a shell script in a service's container and returns its
// output; a failed exec fails t (a subtest's t, unlike e.must).
func inside(t *testing.T, e *env, service, script string) string {
	t.Helper()
	r := e.berth("exec", "-T", service, "sh", "-c", script)
	if r.code != 0 {
		t.Errorf("exec in %s: %s: exit %d\n%s%s", service, script, r.code, r.stdout, r.stderr)
	}
	return strings.TrimSpace(r.stdout)
}

// statusField is a /proc/PID/status field of the container's first
// process.
func statusField(t *testing.T, e *env, service, field string) string {
	t.Helper()
	return strings.TrimSpace(strings.TrimPrefix(inside(t, e, service, "grep '^"+field+":' /proc/1/status"), field+":"))
}

// TestSecurityKeysMustShowInsideTheContainer starts one container per
// security key and looks at each from inside (or, for shared namespaces,
// compares with the host), so a key that is accepted but not applied fails.
func TestSecurityKeysMustShowInsideTheContainer(t *testing.T) {
	dev := deviceOfHost(t)
	var devStat unix.Stat_t
	if err := unix.Stat(dev, &devStat); err != nil {
		t.Fatal(err)
	}
	t.Setenv("BERTH_TEST_DEVICE", dev)
	t.Setenv("BERTH_TEST_DEVICE_RULE", fmt.Sprintf("c %d:%d r", unix.Major(devStat.Rdev), unix.Minor(devStat.Rdev)))
	e := newEnv(t)
	e.useTestdata()
	t.Cleanup(func() {
		// Docker leaves a cgroup_parent behind; the test does not. This
		// runs after the down below (cleanups run last first).
		dirs, _ := filepath.Glob("/sys/fs/cgroup/*/berth-e2e-parent")
		for _, d := range dirs {
			os.Remove(d)
		}
	})
	e.downAtEnd("seckeys")
	up := e.must("up", "-d")
	if strings.Contains(up.stderr, "WARN") {
		t.Errorf("up warned about supported keys:\n%s", up.stderr)
	}

	t.Run("cap_add and cap_drop", func(t *testing.T) {
		// CAP_CHOWN (bit 0) and CAP_NET_BIND_SERVICE (bit 10) only.
		if got := statusField(t, e, "caps", "CapEff"); got != "0000000000000401" {
			t.Errorf("CapEff %s, want 0000000000000401", got)
		}
		bnd := statusField(t, e, "capall", "CapBnd")
		var caps uint64
		fmt.Sscanf(bnd, "%x", &caps)
		if caps&(1<<21) != 0 || caps&(1<<12) == 0 || caps&(1<<19) == 0 {
			t.Errorf("cap_add ALL minus SYS_ADMIN: CapBnd %s", bnd)
		}
	})
	t.Run("privileged", func(t *testing.T) {
		if got := statusField(t, e, "priv", "Seccomp"); got != "0" {
			t.Errorf("Seccomp %s in a privileged container", got)
		}
		if got := inside(t, e, "priv", "mkdir -p /tmp/m && mount -t tmpfs none /tmp/m && echo mounted"); got != "mounted" {
			t.Errorf("mount in a privileged container: %s", got)
		}
		if got := inside(t, e, "priv", "test -c /dev/kmsg && echo present"); got != "present" {
			t.Errorf("host devices missing: %q", got)
		}
	})
	t.Run("security_opt", func(t *testing.T) {
		if got := statusField(t, e, "nnp", "NoNewPrivs"); got != "1" {
			t.Errorf("no-new-privileges: NoNewPrivs %s", got)
		}
		if got := statusField(t, e, "caps", "NoNewPrivs"); got != "0" {
			t.Errorf("NoNewPrivs %s without the option", got)
		}
		if got := statusField(t, e, "unconfined", "Seccomp"); got != "0" {
			t.Errorf("seccomp=unconfined: Seccomp %s", got)
		}
		if got := statusField(t, e, "profile", "Seccomp"); got != "2" {
			t.Errorf("seccomp=profile: Seccomp %s", got)
		}
		if r := e.berth("exec", "-T", "profile", "mkdir", "/made"); r.code == 0 || !strings.Contains(r.stderr, "Operation not permitted") {
			t.Errorf("the profile's mkdir rule did not apply: %+v", r)
		}
		if r := e.berth("exec", "-T", "caps", "mkdir", "/made"); r.code != 0 {
			t.Errorf("mkdir refused without the profile: %+v", r)
		}
		// systempaths=unconfined: /proc/keys is not masked (nothing is
		// mounted over it), as it is in every other container.
		masks := "grep -c ' /proc/keys ' /proc/self/mountinfo || true"
		if got := inside(t, e, "sysopen", masks); got != "0" {
			t.Errorf("systempaths=unconfined: /proc/keys still masked (%s mounts)", got)
		}
		if got := inside(t, e, "caps", masks); got != "1" {
			t.Errorf("control: /proc/keys masked %s times in a default container", got)
		}
	})
	t.Run("read_only and tmpfs", func(t *testing.T) {
		if r := e.berth("exec", "-T", "ro", "touch", "/file"); r.code == 0 || !strings.Contains(r.stderr, "Read-only file system") {
			t.Errorf("write to a read-only root: %+v", r)
		}
		got := inside(t, e, "ro", "touch /scratch/f && stat -c %a /scratch && grep ' /scratch ' /proc/mounts")
		if !strings.HasPrefix(got, "1770\n") || !strings.Contains(got, "size=1024k") || !strings.Contains(got, "noexec") || !strings.Contains(got, "nosuid") {
			t.Errorf("tmpfs: %q", got)
		}
	})
	t.Run("devices and device_cgroup_rules", func(t *testing.T) {
		host := os.Getenv("BERTH_TEST_DEVICE")
		var st unix.Stat_t
		if err := unix.Stat(host, &st); err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("%x:%x\nread-ok", unix.Major(st.Rdev), unix.Minor(st.Rdev))
		if got := inside(t, e, "dev", "stat -c '%t:%T' /dev/mapped && dd if=/dev/mapped bs=1 count=0 >/dev/null 2>&1 && echo read-ok"); got != want {
			t.Errorf("device: %q, want %q", got, want)
		}
		if r := e.berth("exec", "-T", "dev", "sh", "-c", "dd if=/dev/zero of=/dev/mapped bs=1 count=0"); r.code == 0 || !strings.Contains(r.stderr, "Operation not permitted") {
			t.Errorf("write open allowed on a device mapped read-only: %+v", r)
		}
		// The rule lets "rule" read a node it makes itself with the host
		// device's numbers; without it, the same read is refused.
		script := fmt.Sprintf("mknod /tmp/d c %d %d && dd if=/tmp/d bs=1 count=0 >/dev/null 2>&1 && echo read-ok", unix.Major(st.Rdev), unix.Minor(st.Rdev))
		if got := inside(t, e, "rule", script); got != "read-ok" {
			t.Errorf("device_cgroup_rules: %q", got)
		}
		if r := e.berth("exec", "-T", "caps", "sh", "-c", script); r.code == 0 {
			t.Errorf("device readable without a rule: %+v", r)
		}
	})
	t.Run("sysctls", func(t *testing.T) {
		if got := inside(t, e, "sys", "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax /proc/sys/fs/mqueue/msg_max"); got != "1\n123456789\n20" {
			t.Errorf("sysctls: %q", got)
		}
	})
	t.Run("user, group_add, ulimits, shm_size, oom_score_adj", func(t *testing.T) {
		got := inside(t, e, "lim", "id -u; id -G; ulimit -Sn; ulimit -Hn; ulimit -u; df -k /dev/shm | tail -1 | awk '{print $2}'; cat /proc/1/oom_score_adj")
		if got != "65534\n65534 0\n1000\n2000\n77\n8192\n300" {
			t.Errorf("got %q", got)
		}
		if got := statusField(t, e, "lim", "Groups"); got != "0" {
			t.Errorf("group_add: the first process has groups %q", got)
		}
	})
	t.Run("pid, uts and ipc host", func(t *testing.T) {
		for _, ns := range []string{"pid", "uts", "ipc"} {
			host, _ := os.Readlink("/proc/self/ns/" + ns)
			if got := inside(t, e, "hostns", "readlink /proc/self/ns/"+ns); got != host {
				t.Errorf("%s namespace %s, host's %s", ns, got, host)
			}
			if got := inside(t, e, "caps", "readlink /proc/self/ns/"+ns); got == host {
				t.Errorf("a default container shares the host's %s namespace", ns)
			}
		}
		hn, _ := os.Hostname()
		if got := inside(t, e, "hostns", "hostname"); got != hn {
			t.Errorf("uts: host hostname %q, container %q", hn, got)
		}
	})
	t.Run("ipc and pid of another service", func(t *testing.T) {
		if got := inside(t, e, "ipcuser", "cat /dev/shm/marker"); got != "shared" {
			t.Errorf("shareable /dev/shm: %q", got)
		}
		if a, b := inside(t, e, "donor", "readlink /proc/self/ns/ipc"), inside(t, e, "ipcuser", "readlink /proc/self/ns/ipc"); a != b {
			t.Errorf("ipc namespaces differ: %s %s", a, b)
		}
		if a, b := inside(t, e, "donor", "readlink /proc/self/ns/pid"), inside(t, e, "ipcuser", "readlink /proc/self/ns/pid"); a != b {
			t.Errorf("pid namespaces differ: %s %s", a, b)
		}
		if got := inside(t, e, "ipcuser", "ps -o comm | grep -c sleep"); got != "2" {
			t.Errorf("pid: service: sees %s sleep processes, want the donor's and its own", got)
		}
		if a, b := inside(t, e, "caps", "readlink /proc/self/ns/ipc"), inside(t, e, "donor", "readlink /proc/self/ns/ipc"); a == b {
			t.Errorf("unrelated containers share an ipc namespace")
		}
	})
	t.Run("ipc none and private", func(t *testing.T) {
		// none: an IPC namespace of its own and no /dev/shm at all;
		// private: its own namespace and /dev/shm, shared with no one.
		host, _ := os.Readlink("/proc/self/ns/ipc")
		shm := "grep -c ' /dev/shm ' /proc/self/mountinfo || true"
		if got := inside(t, e, "ipcnone", shm); got != "0" {
			t.Errorf("ipc: none has /dev/shm mounted %s times", got)
		}
		if got := inside(t, e, "ipcpriv", shm); got != "1" {
			t.Errorf("ipc: private has /dev/shm mounted %s times", got)
		}
		seen := map[string]string{host: "the host"}
		for _, svc := range []string{"ipcnone", "ipcpriv", "donor"} {
			ns := inside(t, e, svc, "readlink /proc/self/ns/ipc")
			if other, ok := seen[ns]; ok {
				t.Errorf("%s shares its ipc namespace with %s", svc, other)
			}
			seen[ns] = svc
		}
		if got := inside(t, e, "ipcpriv", "echo mine > /dev/shm/own && cat /dev/shm/own; ls /dev/shm"); got != "mine\nown" {
			t.Errorf("ipc: private's /dev/shm: %q", got)
		}
	})
	t.Run("cgroup_parent and cgroup", func(t *testing.T) {
		v2 := cgroups.IsCgroup2UnifiedMode()
		host, _ := os.Readlink("/proc/self/ns/cgroup")
		// cg sets only cgroup_parent: its cgroup is under that parent,
		// seen from the host ...
		id := strings.TrimSpace(e.must("ps", "-q", "cg").stdout)
		procs := filepath.Join("/sys/fs/cgroup/pids/berth-e2e-parent", id, "cgroup.procs")
		if v2 {
			procs = filepath.Join("/sys/fs/cgroup/berth-e2e-parent", id, "cgroup.procs")
		}
		if raw, err := os.ReadFile(procs); err != nil || len(strings.Fields(string(raw))) == 0 {
			t.Errorf("cgroup_parent: %s: %q %v", procs, raw, err)
		}
		// ... and, like every container without a cgroup key (on cgroup
		// v1 hosts too, where Docker's default is the host's), it has a
		// cgroup namespace of its own rooted there: its cgroups are all
		// "/" and each /sys/fs/cgroup mount is the namespace's root,
		// read-only (v1: one mount per controller, not binds of the
		// host's path).
		if got := inside(t, e, "cg", "readlink /proc/self/ns/cgroup"); got == host {
			t.Errorf("a container without a cgroup key shares the host's cgroup namespace")
		}
		for _, l := range strings.Split(inside(t, e, "cg", "cat /proc/self/cgroup"), "\n") {
			if !strings.HasSuffix(l, ":/") {
				t.Errorf("/proc/self/cgroup line %q in a private namespace", l)
			}
		}
		cgMounts := func(svc string) [][]string {
			var out [][]string
			for _, l := range strings.Split(inside(t, e, svc, "grep ' /sys/fs/cgroup[/ ]' /proc/self/mountinfo"), "\n") {
				if f := strings.Fields(l); len(f) > 5 && (v2 || f[4] != "/sys/fs/cgroup") {
					out = append(out, f) // the v1 tree's own tmpfs left out
				}
			}
			return out
		}
		mounts := cgMounts("cg")
		if len(mounts) == 0 {
			t.Errorf("no cgroup mounts under /sys/fs/cgroup")
		}
		for _, f := range mounts {
			if f[3] != "/" || !strings.HasPrefix(f[5], "ro,") {
				t.Errorf("cgroup mount %q: want the namespace's root, read-only", strings.Join(f, " "))
			}
		}
		if got := inside(t, e, "cgns", "readlink /proc/self/ns/cgroup"); got == host {
			t.Errorf("cgroup: private shares the host's cgroup namespace")
		}
		if got := inside(t, e, "cghost", "readlink /proc/self/ns/cgroup"); got != host {
			t.Errorf("cgroup: host: namespace %s, the host's %s", got, host)
		}
		// In the host's namespace the container sees its cgroup's full
		// path, and on v1 its controllers are binds of that path: Docker's
		// view on a v1 host.
		if got := inside(t, e, "cghost", "grep pids /proc/self/cgroup"); !strings.Contains(got, "/berth-") {
			t.Errorf("cgroup: host: /proc/self/cgroup %q lacks the host path", got)
		}
		if !v2 {
			for _, f := range cgMounts("cghost") {
				if !strings.HasPrefix(f[3], "/berth-") || !strings.HasPrefix(f[5], "ro,") {
					t.Errorf("cgroup: host: mount %q: want a read-only bind of the container's cgroup", strings.Join(f, " "))
				}
			}
		}
	})
	t.Run("init", func(t *testing.T) {
		if got := inside(t, e, "init", "cat /proc/1/cmdline | tr '\\0' ' '"); !strings.HasPrefix(got, "/proc/self/exe container-entry ") || !strings.Contains(got, " 1 -- sh -c") {
			t.Errorf("PID 1 is %q", got)
		}
		// The orphaned "sleep 1" ends after a second: an init reaps it,
		// a plain "sleep 3600" as PID 1 leaves a zombie.
		zombies := func(svc string) string { return inside(t, e, svc, "ps -o stat,comm | grep '^Z' || true") }
		eventually(t, 10*time.Second, func() error {
			if z := zombies("noinit"); z == "" {
				return fmt.Errorf("no zombie yet without init")
			}
			return nil
		})
		if z := zombies("init"); z != "" {
			t.Errorf("zombies under init: %q", z)
		}
		// The init forwards SIGTERM to sleep, which dies of it: 143.
		// Without it, PID 1 ignores SIGTERM and is killed after the grace.
		e.must("stop", "-t", "10", "init")
		if r := e.must("ps", "-a", "--format", "json", "init"); !strings.Contains(r.stdout, `"ExitCode":143`) {
			t.Errorf("init did not forward SIGTERM: %s", r.stdout)
		}
	})
	t.Run("stop_signal and stop_grace_period", func(t *testing.T) {
		e.must("stop", "stopsig")
		if r := e.must("ps", "-a", "--format", "json", "stopsig"); !strings.Contains(r.stdout, `"ExitCode":3`) {
			t.Errorf("stop_signal SIGUSR1 not delivered: %s", r.stdout)
		}
		t0 := time.Now()
		e.must("stop", "grace")
		// sleep as PID 1 ignores SIGTERM; the 1 s grace, not Docker's
		// default 10 s, must end it.
		if d := time.Since(t0); d > 8*time.Second {
			t.Errorf("stop took %v: stop_grace_period ignored", d)
		}
		if r := e.must("ps", "-a", "--format", "json", "grace"); !strings.Contains(r.stdout, `"ExitCode":137`) {
			t.Errorf("grace: %s", r.stdout)
		}
	})
}

// TestResourceLimitsMustShowInTheContainersCgroups reads the limits back
// from the container's own cgroup files, and watches the OOM killer end a
// container that outgrows its memory.
func TestResourceLimitsMustShowInTheContainersCgroups(t *testing.T) {
	dev := blockDeviceOfHost(t)
	t.Setenv("BERTH_TEST_BLOCKDEV", dev)
	e := newEnv(t)
	e.useTestdata()
	e.downAtEnd("limits")
	up := e.must("up", "-d")
	v2 := cgroups.IsCgroup2UnifiedMode()
	majmin := strings.TrimSpace(readFile(t, "/sys/class/block/"+filepath.Base(dev)+"/dev"))

	read := func(svc string, files ...string) string {
		return inside(t, e, svc, "cd /sys/fs/cgroup && cat "+strings.Join(files, " "))
	}
	if v2 {
		if got := read("res", "memory.max", "memory.swap.max", "memory.low", "cpu.max", "pids.max", "cpuset.cpus"); got != "67108864\n33554432\n33554432\n50000 100000\n30\n0" {
			t.Errorf("v2 limits: %q", got)
		}
		if got := read("res", "io.max"); !strings.Contains(got, majmin+" rbps=1048576 wbps=max riops=max wiops=100") {
			t.Errorf("v2 io.max: %q", got)
		}
	} else {
		got := read("res", "memory/memory.limit_in_bytes", "memory/memory.memsw.limit_in_bytes", "memory/memory.soft_limit_in_bytes",
			"memory/memory.swappiness", "cpu/cpu.cfs_quota_us", "cpu/cpu.cfs_period_us", "cpu/cpu.shares", "cpuset/cpuset.cpus", "pids/pids.max")
		if got != "67108864\n100663296\n33554432\n10\n50000\n100000\n512\n0\n30" {
			t.Errorf("v1 limits: %q", got)
		}
		if got := read("res", "blkio/blkio.throttle.read_bps_device", "blkio/blkio.throttle.write_iops_device"); got != majmin+" 1048576\n"+majmin+" 100" {
			t.Errorf("blkio throttles: %q", got)
		}
		if got := read("deploy", "memory/memory.limit_in_bytes", "memory/memory.soft_limit_in_bytes", "cpu/cpu.cfs_quota_us", "pids/pids.max"); got != "50331648\n16777216\n25000\n20" {
			t.Errorf("deploy.resources: %q", got)
		}
		if got := read("quota", "cpu/cpu.cfs_quota_us", "cpu/cpu.cfs_period_us"); got != "20000\n50000" {
			t.Errorf("cpu_quota, cpu_period: %q", got)
		}
		// The real-time budget is the container's, granted by the
		// cgroups above it (a new cgroup has none to give).
		if got := read("rt", "cpu/cpu.rt_runtime_us", "cpu/cpu.rt_period_us"); got != "10000\n100000" {
			t.Errorf("cpu_rt_runtime, cpu_rt_period: %q", got)
		}
		if got := read("res", "memory/memory.oom_control"); !strings.Contains(got, "oom_kill_disable 1") {
			t.Errorf("oom_kill_disable: %q", got)
		}
		if got := read("deploy", "memory/memory.oom_control"); !strings.Contains(got, "oom_kill_disable 0") {
			t.Errorf("control: oom_kill_disable set without the key: %q", got)
		}
	}
	// This host's block IO controller may take no weights; then up said so.
	if hasWeights() {
		if !v2 && !strings.Contains(read("res", "blkio/blkio.weight 2>/dev/null || cat blkio/blkio.bfq.weight"), "300") {
			t.Errorf("blkio weight not applied")
		}
	} else if !strings.Contains(up.stderr, "blkio_config weights are ignored") {
		t.Errorf("no warning about ignored blkio weights:\n%s", up.stderr)
	}

	eventually(t, 20*time.Second, func() error {
		r := e.must("ps", "-a", "--format", "json", "oom")
		if !strings.Contains(r.stdout, `"ExitCode":137`) {
			return fmt.Errorf("oom: %s", r.stdout)
		}
		return nil
	})
	var st struct {
		OOMKilled bool `json:"oom_killed"`
	}
	id := strings.TrimSpace(e.must("ps", "-a", "-q", "oom").stdout)
	matches, _ := filepath.Glob(filepath.Join(e.root, "containers", id+"*", "status.json"))
	if len(matches) != 1 || json.Unmarshal([]byte(readFile(t, matches[0])), &st) != nil || !st.OOMKilled {
		t.Errorf("status of the OOM-killed container lacks oom_killed: %v", matches)
	}
}

// deviceOfHost is a host device outside the set every container gets, for
// the devices key.
func deviceOfHost(t *testing.T) string {
	for _, d := range []string{"/dev/loop-control", "/dev/fuse", "/dev/loop0"} {
		if _, err := os.Stat(d); err == nil {
			return d
		}
	}
	t.Skip("no /dev/loop-control, /dev/fuse or /dev/loop0 on this host for the devices key")
	return ""
}

// blockDeviceOfHost is a whole block device of this host, for blkio keys.
func blockDeviceOfHost(t *testing.T) string {
	devs, _ := filepath.Glob("/sys/block/*/dev")
	for _, d := range devs {
		name := filepath.Base(filepath.Dir(d))
		if strings.HasPrefix(name, "loop") || strings.HasPrefix(name, "ram") || strings.HasPrefix(name, "zram") {
			continue
		}
		if _, err := os.Stat("/dev/" + name); err == nil {
			return "/dev/" + name
		}
	}
	t.Skip("no block device on this host for blkio_config")
	return ""
}

func hasWeights() bool {
	for _, f := range []string{"/sys/fs/cgroup/blkio/blkio.weight", "/sys/fs/cgroup/blkio/blkio.bfq.weight"} {
		if _, err := os.Stat(f); err == nil {
			return true
		}
	}
	return cgroups.IsCgroup2UnifiedMode()
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestWarningsMustComeOnceFromUp: up warns about keys it ignores; the
// verbs that only read the project (ps, logs, exec) do not repeat it.
func TestWarningsMustComeOnceFromUp(t *testing.T) {
	e := newEnv(t)
	e.writeProject(map[string]string{"compose.yaml": `
name: warns
services:
  s:
    image: busybox
    command: [sleep, "3600"]
    cpu_count: 2
`})
	e.downAtEnd("warns")
	if r := e.must("up", "-d"); strings.Count(r.stderr, `WARN service "s": key "cpu_count"`) != 1 {
		t.Errorf("up -d stderr:\n%s", r.stderr)
	}
	for _, args := range [][]string{{"ps"}, {"logs"}, {"exec", "-T", "s", "true"}} {
		if r := e.must(args...); strings.Contains(r.stderr, "WARN") {
			t.Errorf("%v warned:\n%s", args, r.stderr)
		}
	}
}

// TestConfinementTheHostLacksMustBeRefused: an AppArmor profile or SELinux
// label on a host without them is an error, never a silent no-op; turning
// them off is accepted anywhere.
func TestConfinementTheHostLacksMustBeRefused(t *testing.T) {
	for _, tc := range []struct{ name, opt, host, want string }{
		{"AppArmor", "apparmor=docker-default", "/sys/kernel/security/apparmor", "this host does not run AppArmor"},
		{"SELinux", "label=type:container_t", "/sys/fs/selinux/enforce", "this host does not run SELinux"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := os.Stat(tc.host); err == nil {
				t.Skipf("this host has %s", tc.host)
			}
			e := newEnv(t)
			e.writeProject(map[string]string{"compose.yaml": "services:\n  web:\n    image: busybox\n    security_opt: [" + tc.opt + "]\n"})
			r := e.berth("-p", "lacks", "up", "-d")
			if r.code == 0 || !strings.Contains(r.stderr, `service "web": security_opt: `+tc.opt) || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("up: exit %d\n%s", r.code, r.stderr)
			}
			if r := e.must("-p", "lacks", "ps", "-a", "-q"); strings.TrimSpace(r.stdout) != "" {
				t.Errorf("containers created: %q", r.stdout)
			}
		})
	}
}
