package runtime

import (
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/procstat"
)

// libcontainer starts every process in a container (the init, each exec
// and each health probe) through a bootstrap that forks twice with
// CLONE_PARENT, so its two inner stages, named "runc:[1:CHILD]" and
// "runc:[2:INIT]", are children of the shim. libcontainer waits for them
// only when the bootstrap succeeds. When the container's init is killed
// while a probe or exec is still being set up, the kernel kills the
// probe's inner stage (it has joined the container's pid namespace), the
// bootstrap fails, and both stages stay zombies of the shim. A pid
// namespace's init cannot finish exiting while a zombie of its namespace
// is unreaped, so the container never exits and the shim waits for it
// forever: a stop that hangs.
//
// The last stage is named "runc:[1:CHILD]" from its fork until its first
// instructions rename it: one killed in between is a zombie of the
// container's namespace under the first stage's name, and blocks the same.
//
// reapStrays reaps the ones that block: on every SIGCHLD while a run is
// up, each zombie child still named "runc:[2:INIT]" (it died before its
// command ran), and each zombie named "runc:[1:CHILD]" that is in the
// container's own pid namespace, but for the run's own init, which
// supervise waits for. A first stage proper is left alone: it lives
// outside the container, and libcontainer waits for it itself while it
// starts an init (taking it there fails the start). No run, no reaping: a
// run being created owns its stages until it is up.

// bootstrapInit is the name libcontainer's last bootstrap stage carries
// until it execs the process's command; bootstrapChild the first stage's,
// which the last carries from its fork until it renames itself.
const (
	bootstrapInit  = "runc:[2:INIT]"
	bootstrapChild = "runc:[1:CHILD]"
)

// reapStrays starts reaping, for the life of the shim.
func (s *shim) reapStrays() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, unix.SIGCHLD)
	go func() {
		for range ch {
			if pid := s.initPid(); pid != 0 {
				reapBootstrapZombies(pid)
			}
		}
	}()
}

// initPid is the pid of the current run's init, or 0 between runs.
func (s *shim) initPid() int {
	s.mu.Lock()
	r := s.run
	s.mu.Unlock()
	if r == nil {
		return 0
	}
	pid, _ := r.init.Pid()
	return pid
}

// reapBootstrapZombies waits for each zombie child of this process still
// named as the last bootstrap stage, and each named as the first one in
// keep's pid namespace when that is not this process's, but for keep, and
// returns their pids.
func reapBootstrapZombies(keep int) []int {
	// Only a namespace of the container's own has an init that waits for
	// its zombies; in a shared one a first stage is libcontainer's.
	inside := pidNS(keep)
	if inside == "" || inside == pidNS(os.Getpid()) {
		inside = ""
	}
	var reaped []int
	for _, pid := range childPids() {
		if pid == keep || !strayStage(pid, inside) {
			continue
		}
		var ws unix.WaitStatus
		if got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil); err == nil && got == pid {
			reaped = append(reaped, pid)
		}
	}
	return reaped
}

// childPids lists this process's children (each thread keeps its own list).
func childPids() []int {
	lists, _ := filepath.Glob("/proc/self/task/*/children")
	var pids []int
	for _, l := range lists {
		b, err := os.ReadFile(l)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// strayStage says whether pid is a zombie still named as the last
// bootstrap stage, or as the first one and in the pid namespace inside
// (none when inside is empty).
func strayStage(pid int, inside string) bool {
	name, f, err := procstat.Read(pid)
	if err != nil || len(f) == 0 || f[0] != "Z" {
		return false
	}
	switch name {
	case bootstrapInit:
		return true
	case bootstrapChild:
		return inside != "" && pidNS(pid) == inside
	}
	return false
}

// pidNS names pid's pid namespace (a zombie keeps its own), or is empty
// when pid is gone.
func pidNS(pid int) string {
	ns, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/pid")
	return ns
}
