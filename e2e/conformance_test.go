package e2e

import (
	"crypto/sha256"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// TestContainersMustBeConfinedAsDockerConfinesThem is the security
// conformance suite: every check runs inside a real container and tries
// what Docker's default confinement forbids, or reads the confinement the
// kernel reports. A check that cannot fail is no check: where it helps,
// the same probe runs where it must succeed too.
func TestContainersMustBeConfinedAsDockerConfinesThem(t *testing.T) {
	e := newEnv(t)
	e.useTestdata()
	e.downAtEnd("conform")
	binBefore := fileHash(t, berthBin)
	e.must("up", "-d")

	t.Run("no host process is visible", func(t *testing.T) {
		got := inside(t, e, "plain", "ls /proc | grep -c '^[0-9]'; cat /proc/1/cmdline | tr '\\0' ' '")
		lines := strings.Split(got, "\n")
		if n, _ := strconv.Atoi(lines[0]); n == 0 || n > 4 || len(lines) < 2 || strings.TrimSpace(lines[1]) != "sleep 3600" {
			t.Errorf("the container sees %q", got)
		}
	})
	t.Run("masked paths are empty and read-only paths refuse writes", func(t *testing.T) {
		masked := []string{"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
			"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
			"/sys/firmware", "/sys/devices/virtual/powercap"}
		script := "for p in " + strings.Join(masked, " ") + "; do if [ -d $p ]; then ls -A $p; elif [ -e $p ]; then head -c 64 $p; fi; done"
		if got := inside(t, e, "plain", script); got != "" {
			t.Errorf("masked paths show content: %q", got)
		}
		if got := inside(t, e, "plain", "head -c 16 /proc/uptime | wc -c"); got == "0" {
			t.Errorf("control: /proc/uptime is empty too, the check above proves nothing")
		}
		for _, p := range []string{"/proc/sysrq-trigger", "/proc/sys/kernel/domainname", "/proc/irq/default_smp_affinity"} {
			if _, err := os.Stat(p); err != nil {
				continue // not in this kernel
			}
			if r := e.berth("exec", "-T", "plain", "sh", "-c", "echo 0 > "+p); r.code == 0 || !strings.Contains(r.stderr, "Read-only file system") {
				t.Errorf("write to %s: exit %d %s", p, r.code, r.stderr)
			}
		}
	})
	t.Run("cannot mount, load modules or change the clock", func(t *testing.T) {
		for _, check := range []string{"mount", "module", "clock"} {
			if got := inside(t, e, "plain", "/prober "+check); got != "EPERM" {
				t.Errorf("%s: %s, want EPERM", check, got)
			}
		}
	})
	t.Run("capabilities are Docker's default set", func(t *testing.T) {
		for _, f := range []string{"CapEff", "CapPrm", "CapBnd"} {
			if got := statusField(t, e, "plain", f); got != "00000000a80425fb" {
				t.Errorf("%s %s, want Docker's 00000000a80425fb", f, got)
			}
		}
		for _, f := range []string{"CapInh", "CapAmb"} {
			if got := statusField(t, e, "plain", f); got != "0000000000000000" {
				t.Errorf("%s %s", f, got)
			}
		}
		// A non-root user keeps none.
		if got := statusField(t, e, "suid", "CapEff"); got != "0000000000000000" {
			t.Errorf("non-root CapEff %s", got)
		}
	})
	t.Run("seccomp filters every process", func(t *testing.T) {
		if got := statusField(t, e, "plain", "Seccomp"); got != "2" {
			t.Errorf("first process: Seccomp %s", got)
		}
		if got := inside(t, e, "plain", "grep '^Seccomp:' /proc/self/status"); !strings.HasSuffix(got, "2") {
			t.Errorf("exec'd process: %s", got)
		}
		if got := statusField(t, e, "init", "Seccomp"); got != "2" {
			t.Errorf("init: Seccomp %s", got)
		}
		// Mode 2 with a filter that allows everything would pass the
		// checks above: keyctl, which only Docker's profile forbids here,
		// proves the filter is Docker's, in every way a process starts.
		if got := inside(t, e, "first", "cat /tmp/keyctl"); got != "EPERM" {
			t.Errorf("keyctl in the first process: %s, want EPERM", got)
		}
		if got := inside(t, e, "first", "for i in $(seq 100); do [ -s /tmp/health ] && break; sleep 0.1; done; cat /tmp/health"); got != "EPERM" {
			t.Errorf("keyctl in a healthcheck: %q, want EPERM", got)
		}
		for _, svc := range []string{"plain", "init", "nnp", "suid"} {
			if got := inside(t, e, svc, "/prober keyctl"); got != "EPERM" {
				t.Errorf("keyctl in an exec'd process of %s: %s, want EPERM", svc, got)
			}
		}
		if got := inside(t, e, "unconfined", "/prober keyctl"); got != "allowed" {
			t.Errorf("control: keyctl without seccomp: %s, so the checks above prove nothing", got)
		}
	})
	t.Run("no signal is ignored at start", func(t *testing.T) {
		if got := statusField(t, e, "plain", "SigIgn"); got != "0000000000000000" {
			t.Errorf("the first process starts with signals ignored: %s", got)
		}
	})
	t.Run("no-new-privileges stops a setuid binary", func(t *testing.T) {
		for _, svc := range []string{"nnp", "suid"} {
			if r := e.berth("exec", "-T", "-u", "root", svc, "sh", "-c", "cp /prober /suid && chmod 4755 /suid"); r.code != 0 {
				t.Fatalf("%s: make a setuid binary: %+v", svc, r)
			}
		}
		if got := statusField(t, e, "nnp", "NoNewPrivs"); got != "1" {
			t.Errorf("NoNewPrivs %s", got)
		}
		if got := inside(t, e, "nnp", "/suid euid"); got != "65534" {
			t.Errorf("with no-new-privileges a setuid binary ran as %s", got)
		}
		if got := inside(t, e, "suid", "/suid euid"); got != "0" {
			t.Errorf("control: without no-new-privileges the setuid binary ran as %s, so the check above proves nothing", got)
		}
	})
	t.Run("a read-only root refuses writes", func(t *testing.T) {
		for _, script := range []string{"touch /x", "mkdir /x", "echo x >> /etc/passwd"} {
			if r := e.berth("exec", "-T", "ro", "sh", "-c", script); r.code == 0 || !strings.Contains(r.stderr, "Read-only file system") {
				t.Errorf("%s: exit %d %s", script, r.code, r.stderr)
			}
		}
	})
	t.Run("memory and pids limits are enforced", func(t *testing.T) {
		if r := e.berth("exec", "-T", "limited", "sh", "-c", "tail /dev/zero"); r.code != 137 {
			t.Errorf("a process growing past the memory limit ended with %d, want 137 (OOM killed)", r.code)
		}
		// The limit counts threads: the shell, the prober's and sleep's
		// take some of the ten.
		if got := inside(t, e, "limited", "/prober spawn 20"); got == "0" || len(got) != 1 {
			t.Errorf("%s of 20 children started under pids_limit 10", got)
		}
		if got := inside(t, e, "plain", "/prober spawn 20"); got != "20" {
			t.Errorf("control: %s of 20 children started without a limit", got)
		}
	})
	t.Run("no host file descriptor is visible", func(t *testing.T) {
		for _, tc := range []struct{ svc, what, pid string }{
			{"plain", "the first process", "1"},
			{"init", "the init's command", "$(pidof sleep)"},
		} {
			if got := inside(t, e, tc.svc, "ls /proc/"+tc.pid+"/fd | sort -n | tr '\\n' ' '"); got != "0 1 2" {
				t.Errorf("%s holds fds %q", tc.what, got)
			}
		}
		// An exec'd ls, with no shell in between: its only extra
		// descriptor is the directory it reads.
		r := e.must("exec", "-T", "plain", "ls", "-l", "/proc/self/fd/")
		var fds []string
		for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n")[1:] {
			f := strings.Fields(l)
			if len(f) >= 11 && !strings.HasSuffix(f[10], "/fd") {
				fds = append(fds, f[8])
			}
		}
		if strings.Join(fds, " ") != "0 1 2" {
			t.Errorf("an exec'd process holds:\n%s", r.stdout)
		}
		if got := inside(t, e, "plain", "for f in 0 1 2; do readlink /proc/1/fd/$f; done | tr '\\n' ' '"); !strings.HasPrefix(got, "/dev/null pipe:") {
			t.Errorf("the first process's stdio: %q", got)
		}
	})
	t.Run("an exec'd process cannot reach the berth binary through /proc/PID/exe", func(t *testing.T) {
		// CVE-2019-5736: a process in the container grabs the runtime's
		// binary through /proc/PID/exe while the runtime enters the
		// container (every exec), or when the container's command is
		// "#!/proc/self/exe", and writes to it once it is no longer busy.
		var st unix.Stat_t
		if err := unix.Stat(berthBin, &st); err != nil {
			t.Fatal(err)
		}
		host := fmt.Sprintf("%d:%d", st.Dev, st.Ino)
		inside(t, e, "init", `printf '#!/proc/self/exe\n' > /evil && chmod +x /evil`)
		var wg sync.WaitGroup
		var watch result
		wg.Add(1)
		go func() { defer wg.Done(); watch = e.berth("exec", "-T", "init", "/prober", "exe", "4s", host) }()
		for range 8 {
			e.berth("exec", "-T", "init", "true")
			e.berth("exec", "-T", "init", "/evil")
		}
		wg.Wait()
		seen := strings.Split(strings.TrimSpace(watch.stdout), ";")
		if watch.code != 0 || len(seen) == 0 || seen[0] == "" {
			t.Fatalf("the prober saw no foreign executable (the init's at least): %+v", watch)
		}
		// What a container can grab is a sealed copy of the binary (an
		// overlay with no upper layer, or a sealed memfd where overlayfs
		// cannot be used): never the host's file, never writable.
		for _, s := range seen {
			switch _, res, _ := strings.Cut(s, " "); res {
			case "HOST":
				t.Errorf("the container got a handle on the host's berth binary (%s)", host)
			case "written":
				t.Errorf("a container wrote to a runtime executable: %s", s)
			}
		}
		t.Logf("executables seen from inside: %s (host binary %s)", watch.stdout, host)
	})
	if fileHash(t, berthBin) != binBefore {
		t.Fatalf("the berth binary changed during the suite")
	}
}

func fileHash(t *testing.T, p string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}
