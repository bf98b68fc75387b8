// Command prober runs inside containers for the e2e security tests: each
// subcommand tries one thing a confined process must not be able to do (or
// reports one fact about its confinement) and prints one line the test
// reads. It is built static, with no cgo, so it runs in any image.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: prober CHECK [ARGS]")
		os.Exit(2)
	}
	checks := map[string]func([]string) string{
		"mount":  tryMount,
		"module": tryModule,
		"clock":  tryClock,
		"keyctl": tryKeyctl,
		"euid":   func([]string) string { return strconv.Itoa(os.Geteuid()) },
		"exe":    watchExes,
		"spawn":  spawn,
	}
	f, ok := checks[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "prober: unknown check %q\n", os.Args[1])
		os.Exit(2)
	}
	fmt.Println(f(os.Args[2:]))
}

// result renders a syscall outcome: "allowed" or the errno's name.
func result(err error) string {
	if err == nil {
		return "allowed"
	}
	if e, ok := err.(syscall.Errno); ok {
		return unix.ErrnoName(e)
	}
	return err.Error()
}

func tryMount([]string) string {
	dir, err := os.MkdirTemp("", "mnt")
	if err != nil {
		return err.Error()
	}
	err = unix.Mount("none", dir, "tmpfs", 0, "")
	if err == nil {
		_ = unix.Unmount(dir, 0)
	}
	return result(err)
}

// tryModule asks the kernel to load an empty module: a process that may
// load modules gets EINVAL or ENOEXEC for the bad image, one that may not
// gets EPERM first.
func tryModule([]string) string {
	return result(unix.InitModule([]byte{0}, ""))
}

// tryClock sets the clock to what it reads, so a successful call changes
// nothing that matters; a confined process must get EPERM.
func tryClock([]string) string {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_REALTIME, &ts); err != nil {
		return err.Error()
	}
	return result(unix.ClockSettime(unix.CLOCK_REALTIME, &ts))
}

// tryKeyctl asks for the session keyring's ID: any process may, unless a
// seccomp filter forbids keyctl, as Docker's default profile does (EPERM).
func tryKeyctl([]string) string {
	_, err := unix.KeyctlInt(unix.KEYCTL_GET_KEYRING_ID, unix.KEY_SPEC_SESSION_KEYRING, 0, 0, 0)
	return result(err)
}

// spawn starts up to N sleeping children and prints how many started; it
// kills them before it exits.
func spawn(args []string) string {
	n := 20
	if len(args) > 0 {
		n, _ = strconv.Atoi(args[0])
	}
	var started []*os.Process
	for range n {
		p, err := os.StartProcess("/bin/sleep", []string{"sleep", "30"}, &os.ProcAttr{})
		if err != nil {
			continue
		}
		started = append(started, p)
	}
	for _, p := range started {
		_ = p.Kill()
		_, _ = p.Wait()
	}
	return strconv.Itoa(len(started))
}

// watchExes plays the CVE-2019-5736 attacker for the given duration: it
// keeps scanning /proc for processes whose executable is neither its own
// nor in the image's /bin, holds an O_PATH handle to each (as the exploit
// does, to outlive the process), and keeps trying to write to every handle,
// while the process runs and after it is gone. The host's berth binary,
// given as "dev:ino", is never written to: reaching it is the failure. It
// prints "dev:ino result" per executable seen: HOST for the host's binary,
// "written" for a copy it could change, else the error that stopped it.
func watchExes(args []string) string {
	d, host := 3*time.Second, ""
	if len(args) > 1 {
		d, _ = time.ParseDuration(args[0])
		host = args[1]
	}
	self, _ := os.Readlink("/proc/self/exe")
	seen := map[string]int{} // dev:ino -> O_PATH fd
	last := map[string]string{}
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		pids, _ := filepath.Glob("/proc/[0-9]*")
		for _, p := range pids {
			link, err := os.Readlink(p + "/exe")
			if err != nil || link == self || strings.HasPrefix(link, "/bin/") {
				continue
			}
			fd, err := unix.Open(p+"/exe", unix.O_PATH|unix.O_CLOEXEC, 0)
			if err != nil {
				continue
			}
			var st unix.Stat_t
			if unix.Fstat(fd, &st) != nil {
				unix.Close(fd)
				continue
			}
			key := fmt.Sprintf("%d:%d", st.Dev, st.Ino)
			if _, ok := seen[key]; ok {
				unix.Close(fd)
				continue
			}
			seen[key] = fd
		}
		for key, fd := range seen {
			switch {
			case key == host:
				last[key] = "HOST"
			case last[key] != "written":
				last[key] = tryWrite(fd)
			}
		}
		time.Sleep(time.Millisecond)
	}
	var out []string
	for key := range seen {
		out = append(out, key+" "+last[key])
	}
	slices.Sort(out)
	return strings.Join(out, ";")
}

// tryWrite reopens an O_PATH handle for writing, as the exploit does, and
// writes one byte: busy (ETXTBSY) only holds while the binary runs.
func tryWrite(fd int) string {
	w, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", fd), unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return result(err)
	}
	defer unix.Close(w)
	if _, err := unix.Pwrite(w, []byte{0x7f}, 0); err != nil {
		return result(err)
	}
	return "written"
}
