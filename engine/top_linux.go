package engine

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/procstat"
)

// Process is one process of a container, with what ps -ef shows of it.
type Process struct {
	User    string        // the host's name for its real UID, or the number
	PID     int           // host pid
	PPID    int           // host pid of its parent
	CPU     int           // percent of one CPU over its life (ps's C)
	Started time.Time     // STIME
	TTY     string        // "?" without a terminal
	CPUTime time.Duration // TIME
	Command string        // its command line, or [name] for a kernel-made one
}

// Top lists a running container's processes, as docker top does (ps -ef
// columns, host pids).
func (e *Engine) Top(ctx context.Context, id string) ([]Process, error) {
	pids, err := e.ContainerPids(ctx, id)
	if err != nil {
		return nil, err
	}
	boot := bootTime()
	var out []Process
	for _, pid := range pids {
		p, err := readProcess(pid, boot)
		if err != nil {
			continue // gone since the listing
		}
		out = append(out, p)
	}
	return out, nil
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100

func readProcess(pid int, boot time.Time) (Process, error) {
	name, f, err := procstat.Read(pid)
	if err != nil {
		return Process{}, err
	}
	if len(f) < 20 {
		return Process{}, fmt.Errorf("/proc/%d/stat: short", pid)
	}
	num := func(i int) uint64 { n, _ := strconv.ParseUint(f[i], 10, 64); return n }
	p := Process{PID: pid, PPID: int(num(1))}
	cpu := time.Duration(num(11)+num(12)) * time.Second / clockTicks
	p.CPUTime = cpu
	p.Started = boot.Add(time.Duration(num(19)) * time.Second / clockTicks)
	if life := time.Since(p.Started); life > 0 {
		p.CPU = int(cpu * 100 / life)
	}
	p.TTY = ttyName(num(4))
	p.User = processUser(pid)
	if cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && len(cmd) > 0 {
		p.Command = strings.TrimSpace(strings.ReplaceAll(strings.TrimRight(string(cmd), "\x00"), "\x00", " "))
	} else {
		p.Command = "[" + name + "]"
	}
	return p, nil
}

func ttyName(nr uint64) string {
	if nr == 0 {
		return "?"
	}
	major, minor := unix.Major(nr), unix.Minor(nr)
	if major >= 136 && major <= 143 {
		return fmt.Sprintf("pts/%d", minor+(major-136)*256)
	}
	if major == 4 && minor < 64 {
		return fmt.Sprintf("tty%d", minor)
	}
	return "?"
}

func processUser(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				break
			}
			if u, err := user.LookupId(f[0]); err == nil {
				return u.Username
			}
			return f[0]
		}
	}
	return "?"
}

func bootTime() time.Time {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "btime "); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
			return time.Unix(n, 0)
		}
	}
	return time.Time{}
}
