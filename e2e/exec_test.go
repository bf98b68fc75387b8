package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestExecMustRunInTheShimWithDockerFlags: exec's flags do what docker
// compose's do, the process's exit code is berth's, and an exec'd process
// is the shim's child: it outlives the CLI, detached or killed.
func TestExecMustRunInTheShimWithDockerFlags(t *testing.T) {
	e := newEnv(t)
	e.useTestdata()
	e.downAtEnd("exec")
	e.must("up", "-d")

	check := func(wantCode int, wantOut string, args ...string) {
		t.Helper()
		r := e.berth(append([]string{"exec"}, args...)...)
		if r.code != wantCode || r.stdout != wantOut {
			t.Errorf("exec %q: code %d stdout %q stderr %q; want %d %q", args, r.code, r.stdout, r.stderr, wantCode, wantOut)
		}
	}
	check(7, "", "-T", "s", "sh", "-c", "exit 7")
	check(0, "hi\n", "-T", "s", "sh", "-c", "echo $GREETING")
	check(0, "yo 1\n", "-T", "-e", "GREETING=yo", "-e", "EXTRA=1", "s", "sh", "-c", "echo $GREETING $EXTRA")
	check(0, "1000\n/tmp\n", "-T", "-u", "1000:1000", "-w", "/tmp", "s", "sh", "-c", "id -u; pwd")
	check(0, "nobody\n", "-T", "-u", "nobody", "s", "id", "-un")
	check(0, "CapEff:\t00000000a80425fb\n", "-T", "s", "grep", "CapEff", "/proc/self/status")
	if r := e.must("exec", "-T", "--privileged", "s", "grep", "CapEff", "/proc/self/status"); strings.Contains(r.stdout, "a80425fb") {
		t.Errorf("--privileged kept the default capabilities: %q", r.stdout)
	}
	one := e.must("exec", "-T", "s", "hostname").stdout
	two := e.must("exec", "-T", "--index", "2", "s", "hostname").stdout
	if one == two || one == "" {
		t.Errorf("--index 2 ran in the same container: %q %q", one, two)
	}

	// A command that does not exist: Docker's 127, with a message.
	r := e.berth("exec", "-T", "s", "no-such-command")
	if r.code != 127 || !strings.Contains(r.stderr, "no-such-command") {
		t.Errorf("missing command: %+v", r)
	}
	// A service whose container does not run: a clear error, exit 1.
	r = e.berth("exec", "-T", "job", "true")
	if r.code != 1 || !strings.Contains(r.stderr, `service "job" is not running`) {
		t.Errorf("exec in a stopped service: %+v", r)
	}

	// -d returns at once; the process goes on in the container.
	start := time.Now()
	e.must("exec", "-d", "s", "sh", "-c", "sleep 1; echo later > /tmp/detached")
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Errorf("exec -d waited for the process: %v", d)
	}
	eventually(t, 10*time.Second, func() error {
		if r := e.berth("exec", "-T", "s", "cat", "/tmp/detached"); r.stdout != "later\n" {
			return fmt.Errorf("detached exec left %q", r.stdout)
		}
		return nil
	})

	// A CLI killed while its exec runs leaves the process running.
	c := e.cmd(t.Context(), "exec", "-T", "s", "sh", "-c", "sleep 1; echo survived > /tmp/orphan")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	c.Process.Signal(syscall.SIGKILL)
	c.Wait()
	eventually(t, 10*time.Second, func() error {
		if r := e.berth("exec", "-T", "s", "cat", "/tmp/orphan"); r.stdout != "survived\n" {
			return fmt.Errorf("exec'd process did not outlive its CLI: %q", r.stdout)
		}
		return nil
	})
	e.must("down", "-t", "1")
	e.mustBeGone("exec")
}

// TestExecWithATerminalMustBehaveAsOne drives berth exec from a real
// terminal: the process gets a terminal of the same size, keys reach it
// raw, the exit code comes back, and the detach keys leave it running.
func TestExecWithATerminalMustBehaveAsOne(t *testing.T) {
	e := newEnv(t)
	e.useTestdata()
	e.downAtEnd("tty")
	e.must("up", "-d")

	shellInTerminal(t, e, 3, "exec", "s", "sh")

	// -i and -t written out, as docker exec takes them: -t gives a
	// terminal even when stdout is not one (the default then is none);
	// -T, given too, wins, as in Compose.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-i", "-t"}, "/dev/pts/"},
		{[]string{"--interactive", "--tty"}, "/dev/pts/"},
		{[]string{"-it"}, "/dev/pts/"},
		{nil, "not a tty"},
		{[]string{"-t", "-T"}, "not a tty"},
	} {
		p := openPty(t, 24, 80)
		c := e.cmd(t.Context(), append(append([]string{"exec"}, tc.args...), "s", "tty")...)
		var out lockedBuffer
		c.Stdin, c.Stdout, c.Stderr = p.slave, &out, &out
		c.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		exitCodeOf(t, c) // tty exits 1 without a terminal
		if !strings.Contains(out.String(), tc.want) {
			t.Errorf("exec %v s tty, stdout a pipe: %q, want %q", tc.args, out.String(), tc.want)
		}
	}

	// Ctrl-P Ctrl-Q: berth exits 0 and the shell goes on without it.
	p2 := openPty(t, 24, 80)
	c := p2.run(e, "exec", "s", "sh")
	p2.typeText(t, "echo ready\n")
	p2.waitOutput(t, "ready")
	p2.typeText(t, "(sleep 1; echo kept > /tmp/after-detach) &\n\x10\x11")
	if code := exitCodeOf(t, c); code != 0 {
		t.Fatalf("detach: exit code %d; terminal:\n%s", code, p2.out.String())
	}
	eventually(t, 10*time.Second, func() error {
		if r := e.berth("exec", "-T", "s", "cat", "/tmp/after-detach"); r.stdout != "kept\n" {
			return fmt.Errorf("after detach: %q", r.stdout)
		}
		return nil
	})

	// Other detach keys, and the default ones passed through as input.
	p3 := openPty(t, 24, 80)
	c = p3.run(e, "exec", "--detach-keys", "ctrl-x,x", "s", "sh")
	p3.typeText(t, "echo ready\n")
	p3.waitOutput(t, "ready")
	p3.typeText(t, "\x10\x11echo still here\n")
	p3.waitOutput(t, "still here")
	p3.typeText(t, "\x18x")
	if code := exitCodeOf(t, c); code != 0 {
		t.Fatalf("--detach-keys: exit code %d; terminal:\n%s", code, p3.out.String())
	}
	if r := e.berth("exec", "--detach-keys", "ctrl-", "-T", "s", "true"); r.code == 0 {
		t.Fatalf("a bad --detach-keys was accepted")
	}
	e.must("down", "-t", "1")
	e.mustBeGone("tty")
}

// protocolOneCommit is the last commit whose shim speaks protocol 1.
const protocolOneCommit = "6e22d62"

// olderBerth builds the berth of protocolOneCommit from the repository's
// history, once per run.
func olderBerth(t *testing.T) string {
	t.Helper()
	out := filepath.Join(workDir, "berth-"+protocolOneCommit)
	if _, err := os.Stat(out); err == nil {
		return out
	}
	if err := exec.Command("git", "-C", "..", "cat-file", "-e", protocolOneCommit+"^{commit}").Run(); err != nil {
		t.Skipf("needs the repository's history to build the berth of %s (protocol 1)", protocolOneCommit)
	}
	src := t.TempDir()
	archive := exec.Command("sh", "-c", fmt.Sprintf("git -C .. archive %s | tar -x -C %s", protocolOneCommit, src))
	if b, err := archive.CombinedOutput(); err != nil {
		t.Fatalf("git archive: %v\n%s", err, b)
	}
	build := exec.Command("go", "build", "-tags", "seccomp,netgo,osusergo", "-o", out, "./cmd/berth")
	build.Dir = src
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the older berth: %v\n%s", err, b)
	}
	return out
}

// TestShimOfAnOlderBerthMustKeepAnswering: a container started by an older
// berth (protocol 1 shim) is seen, followed and stopped by this one; what
// the old shim cannot do (exec) is a clear error; a restart moves the
// container to a shim of this berth.
func TestShimOfAnOlderBerthMustKeepAnswering(t *testing.T) {
	old := olderBerth(t)
	// A state root the older berth makes, image store included: it cannot
	// read what this berth writes, and this berth must read what it did.
	base, err := os.MkdirTemp(workDir, t.Name()+"-")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, root: filepath.Join(base, "root"), run: filepath.Join(base, "run"), dir: filepath.Join(base, "project")}
	os.MkdirAll(e.dir, 0o755)
	e.useTestdata()
	e.downAtEnd("old")
	oldCmd := func(args ...string) {
		t.Helper()
		c := exec.Command(old, args...)
		c.Dir = e.dir
		c.Env = append(os.Environ(), "BERTH_ROOT="+e.root, "BERTH_RUN="+e.run, "BERTH_DNS_UPSTREAMS=none")
		if b, err := c.CombinedOutput(); err != nil {
			t.Fatalf("older berth %v: %v\n%s", args, err, b)
		}
	}
	oldCmd("image", "import", busyboxTar, "busybox")
	oldCmd("up", "-d")
	if ps := e.must("ps", "--format", "json").stdout; !strings.Contains(ps, `"State":"running"`) {
		t.Fatalf("ps of a protocol 1 container: %s", ps)
	}
	eventually(t, 10*time.Second, func() error {
		if r := e.must("logs", "s"); !strings.Contains(r.stdout, "started") {
			return fmt.Errorf("logs: %q", r.stdout)
		}
		return nil
	})
	r := e.berth("exec", "-T", "s", "true")
	if r.code != 3 || !strings.Contains(r.stderr, "older berth") || strings.Contains(r.stderr, "\n") && strings.Count(r.stderr, "\n") > 1 {
		t.Fatalf("exec in a protocol 1 container: %+v", r)
	}
	e.must("stop", "-t", "1")
	if ps := e.must("ps", "-a", "--format", "json").stdout; !strings.Contains(ps, `"State":"exited"`) {
		t.Fatalf("after stop: %s", ps)
	}
	e.must("start")
	if r := e.must("exec", "-T", "s", "echo", "new shim"); r.stdout != "new shim\n" {
		t.Fatalf("exec after restart: %+v", r)
	}
	e.must("down", "-t", "1")
	e.mustBeGone("old")
}
