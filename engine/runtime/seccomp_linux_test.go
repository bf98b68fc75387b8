//go:build seccomp

package runtime

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"unsafe"

	"github.com/opencontainers/runc/libcontainer/configs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/atomicfile"
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
	p, err := cachedProgram(dir, testKey(t, cfg), cfg)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.bpf"))
	if len(files) != 1 {
		t.Fatalf("cache holds %v, want one program", files)
	}
	// The cached copy is what a second shim gets, and the helper is not
	// run again: a cache entry it cannot parse would fail the call.
	again, err := cachedProgram(dir, testKey(t, cfg), cfg)
	if err != nil || !bytes.Equal(again.encode(), p.encode()) {
		t.Fatalf("second lookup: %v, same program %v", err, err == nil && bytes.Equal(again.encode(), p.encode()))
	}
	other := *cfg
	other.Syscalls = nil
	if _, err := cachedProgram(dir, testKey(t, &other), &other); err != nil {
		t.Fatal(err)
	}
	if files, _ = filepath.Glob(filepath.Join(dir, "*.bpf")); len(files) != 2 {
		t.Errorf("another profile shares a cache entry: %v", files)
	}
	for _, tc := range []struct {
		cfg  *configs.Seccomp
		want string
	}{{cfg, "EPERM"}, {&other, "allowed"}} {
		prog, err := cachedProgram(dir, testKey(t, tc.cfg), tc.cfg)
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

// testKey names cfg's program as a shim names that of a profile written as
// cfg's JSON text.
func testKey(t *testing.T, cfg *configs.Seccomp) string {
	t.Helper()
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	key, err := programKey(hex.EncodeToString(sum[:]))
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// TestCachedProgramMustBeFoundWithoutDecodingTheProfile: a shim whose
// profile's program is cached does not decode the profile (what that wrote
// stays in a shim's memory: no collection runs there), and a changed
// profile is never given the old program.
func TestCachedProgramMustBeFoundWithoutDecodingTheProfile(t *testing.T) {
	decoded := 0
	decode := decodeProfile
	decodeProfile = func(profile []byte) (*configs.Seccomp, error) {
		decoded++
		return decode(profile)
	}
	t.Cleanup(func() { decodeProfile = decode })
	cache, bundle := t.TempDir(), t.TempDir()
	start := func(names []string, caps []string) *shim {
		t.Helper()
		spec := &specs.Spec{
			Version: specs.Version,
			Root:    &specs.Root{Path: "/nonexistent"},
			Process: &specs.Process{Args: []string{"true"}, Cwd: "/", Capabilities: &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}},
			Linux: &specs.Linux{Seccomp: &specs.LinuxSeccomp{
				DefaultAction: specs.ActAllow,
				Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchAARCH64},
				Syscalls:      []specs.LinuxSyscall{{Names: names, Action: specs.ActErrno}},
			}},
		}
		if err := atomicfile.WriteJSON(filepath.Join(bundle, "config.json"), spec, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := Config{ID: "test", Bundle: bundle, SeccompCache: cache}
		if err := prepareStart(&cfg, bundle); err != nil {
			t.Fatal(err)
		}
		if cfg.Seccomp == nil || filepath.Dir(cfg.Seccomp.Path) != cache {
			t.Fatalf("profile %+v, want it kept in the cache %s", cfg.Seccomp, cache)
		}
		s := &shim{cfg: cfg}
		lcfg, err := loadStart(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if lcfg.Seccomp != nil {
			t.Fatal("the profile is in libcontainer's configuration")
		}
		s.lcfg = lcfg
		if err := s.seccomp(*cfg.Seccomp); err != nil {
			t.Fatal(err)
		}
		return s
	}
	caps := []string{"CAP_CHOWN"}
	first := start([]string{"keyctl"}, caps)
	if first.program == nil || first.lcfg.Seccomp != nil || decoded != 1 {
		t.Fatalf("first start: program %v, left to libcontainer %v, decoded %d times", first.program != nil, first.lcfg.Seccomp != nil, decoded)
	}
	again := start([]string{"keyctl"}, caps)
	if again.program == nil || !bytes.Equal(again.program.encode(), first.program.encode()) || again.lcfg.Seccomp != nil {
		t.Fatal("second start did not get the cached program")
	}
	if decoded != 1 {
		t.Errorf("the profile was decoded again although its program is cached (%d decodes)", decoded)
	}
	changed := start([]string{"keyctl", "add_key"}, caps)
	if decoded != 2 || changed.program == nil || bytes.Equal(changed.program.encode(), first.program.encode()) {
		t.Errorf("a changed profile: decoded %d times in all (want 2), same program as before %v", decoded, changed.program != nil && bytes.Equal(changed.program.encode(), first.program.encode()))
	}
	// A container that may ptrace gets libcontainer's compile, as before.
	traced := start([]string{"keyctl"}, append(caps, "CAP_SYS_PTRACE"))
	if traced.program != nil || traced.lcfg.Seccomp == nil || len(traced.lcfg.Seccomp.Syscalls) != 1 {
		t.Errorf("with CAP_SYS_PTRACE: program %v, libcontainer's profile %+v", traced.program != nil, traced.lcfg.Seccomp)
	}
}
