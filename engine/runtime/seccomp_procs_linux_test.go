//go:build seccomp

package runtime

import (
	"testing"

	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestSeccompCompileMustNotStallWithOneP: the compiler's receiver must run
// while its other thread sits in the intercepted load, which libcontainer
// makes with a raw system call (holding its P) whenever the profile has
// flags. With GOMAXPROCS=1 in the environment (exported by a user, or Go's
// own choice in a cgroup limited to one CPU) it must still finish.
func TestSeccompCompileMustNotStallWithOneP(t *testing.T) {
	t.Setenv("GOMAXPROCS", "1")
	eperm := uint(unix.EPERM)
	cfg := &configs.Seccomp{
		DefaultAction: configs.Allow,
		Architectures: []string{"amd64", "x86", "arm64"},
		Flags:         []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagSpecAllow},
		Syscalls:      []*configs.Syscall{{Name: "keyctl", Action: configs.Errno, ErrnoRet: &eperm}},
	}
	// A stall ends in the caller's 30 s timeout, which kills the compiler.
	if _, err := cachedProgram(t.TempDir(), testKey(t, cfg), cfg); err != nil {
		t.Fatal(err)
	}
}
