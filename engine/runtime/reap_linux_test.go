package runtime

import (
	"slices"
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
	if bootstrapZombie(probe) {
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
	if bootstrapZombie(pid) {
		t.Fatalf("pid %d (%q) taken for a bootstrap stage", pid, "a) Z (runc:[")
	}
	if bootstrapZombie(1 << 30) {
		t.Fatal("a pid that does not exist taken for a zombie")
	}
}
