//go:build seccomp

package runtime

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"unsafe"

	"github.com/opencontainers/runc/libcontainer/configs"
	"golang.org/x/sys/unix"
)

// A child of the test binary with BERTH_TEST_INSTALL set installs the
// program in that file, as the container entry does, and reports what
// keyctl gets then.
func init() {
	path := os.Getenv("BERTH_TEST_INSTALL")
	if path == "" {
		return
	}
	b, err := os.ReadFile(path)
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	p, err := decodeProgram(b)
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	// Every thread, with no_new_privs: the Go runtime has several.
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	prog := unix.SockFprog{Len: uint16(len(p.filter)), Filter: &p.filter[0]}
	if _, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(p.flags)|unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&prog))); errno != 0 {
		fmt.Println("install:", errno)
		os.Exit(1)
	}
	_, err = unix.KeyctlInt(unix.KEYCTL_GET_KEYRING_ID, unix.KEY_SPEC_SESSION_KEYRING, 0, 0, 0)
	if err == nil {
		fmt.Println("allowed")
	} else {
		fmt.Println(unix.ErrnoName(err.(unix.Errno)))
	}
	os.Exit(0)
}

// TestSeccompProgramMustBeCompiledOnceAndFilter compiles a profile through
// the helper, checks the second start reads it from the cache, and proves
// the captured program filters when installed: keyctl, allowed by default,
// gets the profile's EPERM.
func TestSeccompProgramMustBeCompiledOnceAndFilter(t *testing.T) {
	eperm := uint(unix.EPERM)
	cfg := &configs.Seccomp{
		DefaultAction: configs.Allow,
		Architectures: []string{"amd64", "x86", "arm64"},
		Syscalls:      []*configs.Syscall{{Name: "keyctl", Action: configs.Errno, ErrnoRet: &eperm}},
	}
	dir := t.TempDir()
	p, err := cachedProgram(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.bpf"))
	if len(files) != 1 {
		t.Fatalf("cache holds %v, want one program", files)
	}
	// The cached copy is what a second shim gets, and the helper is not
	// run again: a cache entry it cannot parse would fail the call.
	again, err := cachedProgram(dir, cfg)
	if err != nil || !bytes.Equal(again.encode(), p.encode()) {
		t.Fatalf("second lookup: %v, same program %v", err, err == nil && bytes.Equal(again.encode(), p.encode()))
	}
	other := *cfg
	other.Syscalls = nil
	if _, err := cachedProgram(dir, &other); err != nil {
		t.Fatal(err)
	}
	if files, _ = filepath.Glob(filepath.Join(dir, "*.bpf")); len(files) != 2 {
		t.Errorf("another profile shares a cache entry: %v", files)
	}
	for _, tc := range []struct {
		cfg  *configs.Seccomp
		want string
	}{{cfg, "EPERM"}, {&other, "allowed"}} {
		prog, err := cachedProgram(dir, tc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "prog")
		if err := os.WriteFile(path, prog.encode(), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("/proc/self/exe")
		cmd.Env = append(os.Environ(), "BERTH_TEST_INSTALL="+path)
		out, err := cmd.CombinedOutput()
		if got := string(bytes.TrimSpace(out)); err != nil || got != tc.want {
			t.Errorf("keyctl under the program: %q (%v), want %s", got, err, tc.want)
		}
	}
}
