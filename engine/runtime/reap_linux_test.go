package runtime

import (
	"os"
	goruntime "runtime"
	"slices"
	"strconv"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// zombie starts a child that renames itself and exits, and returns once
// it is a zombie (exited, not yet waited for).
func zombie(t *testing.T, name string) int {
	t.Helper()
	pid, err := syscall.ForkExec("/bin/sh", []string{"sh", "-c", `printf '%s' "$1" >/proc/self/comm; exit 3`, "sh", name}, &syscall.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}
	var info unix.Siginfo
	if err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = unix.Wait4(pid, nil, unix.WNOHANG, nil) })
	return pid
}

func TestReapBootstrapZombiesTakesOnlyDeadInitStagesButTheRunsInit(t *testing.T) {
	probe := zombie(t, "runc:[2:INIT]")
	init := zombie(t, "runc:[2:INIT]")
	child := zombie(t, "runc:[1:CHILD]")
	command := zombie(t, "false")

	got := reapBootstrapZombies(init)
	if !slices.Equal(got, []int{probe}) {
		t.Fatalf("reaped %v, want only the probe's stage %d (init %d, first stage %d, command %d)", got, probe, init, child, command)
	}
	if strayStage(probe, "") {
		t.Errorf("the probe's stage %d is still a zombie", probe)
	}
	// The others are left for their waiters: supervise, libcontainer, exec.
	for _, pid := range []int{init, child, command} {
		var ws unix.WaitStatus
		if got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil); err != nil || got != pid || ws.ExitStatus() != 3 {
			t.Errorf("pid %d should have been left for its waiter: wait4 = %d, %v, status %d", pid, got, err, ws.ExitStatus())
		}
	}
}

func TestBootstrapZombieReadsNamesWithParentheses(t *testing.T) {
	pid := zombie(t, "a) Z (runc:[")
	if strayStage(pid, "") {
		t.Fatalf("pid %d (%q) taken for a bootstrap stage", pid, "a) Z (runc:[")
	}
	if strayStage(1<<30, "") {
		t.Fatal("a pid that does not exist taken for a zombie")
	}
}

// zombieIn starts, as a child of this process, a process in the pid
// namespace of nsOf that renames itself and exits, as a bootstrap's last
// stage killed before it renamed itself would, and returns once it is a
// zombie.
func zombieIn(t *testing.T, nsOf int, name string) int {
	t.Helper()
	ns, err := os.Open("/proc/" + strconv.Itoa(nsOf) + "/ns/pid")
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	type started struct {
		pid int
		err error
	}
	ch := make(chan started, 1)
	go func() {
		// The thread's children go to that namespace: it is never
		// unlocked, so it ends with this goroutine.
		goruntime.LockOSThread()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWPID); err != nil {
			ch <- started{err: err}
			return
		}
		pid, err := syscall.ForkExec("/bin/sh", []string{"sh", "-c", `printf '%s' "$1" >/proc/self/comm; exit 3`, "sh", name}, &syscall.ProcAttr{})
		ch <- started{pid, err}
	}()
	s := <-ch
	if s.err != nil {
		t.Fatal(s.err)
	}
	var info unix.Siginfo
	if err := unix.Waitid(unix.P_PID, s.pid, &info, unix.WEXITED|unix.WNOWAIT, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = unix.Wait4(s.pid, nil, unix.WNOHANG, nil) })
	return s.pid
}

func TestReapBootstrapZombiesTakesALastStageStillNamedAsTheFirstInsideTheContainer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a pid namespace")
	}
	// The container's init: pid 1 of a namespace of its own.
	init, err := syscall.ForkExec("/bin/sleep", []string{"sleep", "60"}, &syscall.ProcAttr{Sys: &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWPID}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = unix.Kill(init, unix.SIGKILL)
		_, _ = unix.Wait4(init, nil, 0, nil)
	})
	inside := zombieIn(t, init, "runc:[1:CHILD]")
	outside := zombie(t, "runc:[1:CHILD]")

	got := reapBootstrapZombies(init)
	if !slices.Equal(got, []int{inside}) {
		t.Fatalf("reaped %v, want only the stage in the container's namespace %d (first stage outside %d)", got, inside, outside)
	}
	var ws unix.WaitStatus
	if got, err := unix.Wait4(outside, &ws, unix.WNOHANG, nil); err != nil || got != outside {
		t.Errorf("the first stage outside (%d) should have been left for libcontainer: wait4 = %d, %v", outside, got, err)
	}
}
