package runtime

// Seccomp, compiled once per profile.
//
// libcontainer compiles the container's seccomp profile with libseccomp in
// the container's init, at every start and every exec: about 40 ms of CPU
// for Docker's profile, the largest single cost of a start. The program
// depends only on the profile, this binary (libseccomp's and libcontainer's
// code) and the kernel, so the shim has each profile compiled once per
// boot, keeps the program under the engine's run directory, and the
// container entry (entry_linux.c) installs it where libcontainer would have.
//
// The compiling is still libcontainer's, so the program is the very one it
// would install (ENOSYS stub and flags included): a helper process (berth
// seccomp-compile) runs libcontainer's seccomp setup on a thread whose own
// small filter turns the final seccomp()/prctl() call into a user
// notification; another thread receives it, copies the program out of the
// helper's memory and answers "done" without loading anything.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"time"
	"unsafe"

	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/seccomp"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/lockfile"
)

// compileCommand is the argument that makes this binary the compile helper.
const compileCommand = "seccomp-compile"

// program is a compiled seccomp filter and the flags it is installed with.
type program struct {
	flags  uint32
	filter []unix.SockFilter
}

// encode renders the program as the container entry reads it: the flags
// and the instruction count as native uint32, then the instructions.
func (p *program) encode() []byte {
	var b bytes.Buffer
	_ = binary.Write(&b, binary.NativeEndian, [2]uint32{p.flags, uint32(len(p.filter))})
	_ = binary.Write(&b, binary.NativeEndian, p.filter)
	return b.Bytes()
}

func decodeProgram(b []byte) (*program, error) {
	r := bytes.NewReader(b)
	var head [2]uint32
	if err := binary.Read(r, binary.NativeEndian, &head); err != nil {
		return nil, fmt.Errorf("seccomp program: %w", err)
	}
	if head[1] == 0 || head[1] > 4096 || r.Len() != int(head[1])*8 {
		return nil, fmt.Errorf("seccomp program: %d instructions in %d bytes", head[1], len(b))
	}
	p := &program{flags: head[0], filter: make([]unix.SockFilter, head[1])}
	if err := binary.Read(r, binary.NativeEndian, p.filter); err != nil {
		return nil, fmt.Errorf("seccomp program: %w", err)
	}
	return p, nil
}

// memfd puts the program in a sealed memory file for the container entry:
// the entry reads it from an inherited descriptor, and no process in the
// container can change it, even through /proc/PID/fd.
func (p *program) memfd() (*os.File, error) {
	return sealedMemfd("berth-seccomp", p.encode())
}

// cacheable reports whether a profile can be compiled ahead: one that hands
// syscalls to a user-space agent needs libcontainer at run time.
func cacheable(cfg *configs.Seccomp) bool {
	if cfg == nil || cfg.ListenerPath != "" || cfg.DefaultAction == configs.Notify {
		return false
	}
	for _, s := range cfg.Syscalls {
		if s != nil && s.Action == configs.Notify {
			return false
		}
	}
	return seccompBuilt
}

// cachedProgram returns the compiled program of cfg, kept in dir under
// key, compiling it first (once, under a lock, by a helper process) when it
// is not there.
func cachedProgram(dir, key string, cfg *configs.Seccomp) (*program, error) {
	if p, err := cachedCopy(dir, key); err == nil {
		return p, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	// Twenty shims starting at once compile once.
	l, err := lockfile.Acquire(context.Background(), filepath.Join(dir, ".lock"))
	if err != nil {
		return nil, err
	}
	defer l.Unlock()
	if p, err := cachedCopy(dir, key); err == nil {
		return p, nil
	}
	in, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	// A helper stuck in the kernel must not hold every shim: they fall
	// back to libcontainer's compile.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/proc/self/exe", compileCommand)
	cmd.Stdin = bytes.NewReader(in)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("compile seccomp profile: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	p, err := decodeProgram(out.Bytes())
	if err != nil {
		return nil, err
	}
	return p, atomicfile.Write(filepath.Join(dir, key+".bpf"), out.Bytes(), 0o600)
}

// cachedCopy reads the program kept in dir under key.
func cachedCopy(dir, key string) (*program, error) {
	b, err := os.ReadFile(filepath.Join(dir, key+".bpf"))
	if err != nil {
		return nil, err
	}
	return decodeProgram(b)
}

// programKey names a compiled program: the profile's text (its hex
// SHA-256, SeccompRef.Sum), this binary (which converts and compiles it)
// and the kernel it was compiled for (its flags are probed). A profile
// changed by one byte gets another name.
func programKey(profile string) (string, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &st); err != nil {
		return "", err
	}
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	h := sha256.New()
	fmt.Fprintf(h, "berth-seccomp-2:%s:%d:%d:%d:%d.%d:%s:%s", profile, st.Dev, st.Ino, st.Size, st.Mtim.Sec, st.Mtim.Nsec, unix.ByteSliceToString(uts.Release[:]), goruntime.GOARCH)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// compileMain is the body of "berth seccomp-compile": it reads a
// libcontainer seccomp configuration on stdin and writes the program
// libcontainer would install for it on stdout.
func compileMain() int {
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var cfg configs.Seccomp
	if err := json.Unmarshal(in, &cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	p, err := capture(&cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if _, err := os.Stdout.Write(p.encode()); err != nil {
		return 1
	}
	return 0
}

// seccomp_notif and seccomp_notif_resp of linux/seccomp.h.
type seccompNotif struct {
	ID    uint64
	Pid   uint32
	Flags uint32
	Nr    int32
	Arch  uint32
	IP    uint64
	Args  [6]uint64
}

type seccompNotifResp struct {
	ID    uint64
	Val   int64
	Error int32
	Flags uint32
}

// capture lets libcontainer build and load cfg's program on this thread,
// with the load intercepted, and returns the program.
func capture(cfg *configs.Seccomp) (*program, error) {
	// The receiver must run while this thread sits in the intercepted
	// load, which libcontainer makes with a raw system call (keeping its P)
	// when the profile has flags: with one P (GOMAXPROCS=1 exported, or a
	// cgroup limited to one CPU) the two would wait for each other.
	if goruntime.GOMAXPROCS(0) < 2 {
		goruntime.GOMAXPROCS(2)
	}
	// This thread gets the trap filter and never runs anything else: it is
	// never unlocked, and the helper exits when done.
	goruntime.LockOSThread()
	listener, err := installTrap()
	if err != nil {
		return nil, fmt.Errorf("seccomp trap: %w", err)
	}
	// The receiver hands over the program before it answers the load, so
	// it is there once InitSeccomp returns. It stays blocked on the
	// listener after (closing the descriptor does not wake it), until the
	// helper exits.
	got := make(chan result, 1)
	go receive(listener, got)
	if _, err := seccomp.InitSeccomp(cfg); err != nil {
		return nil, fmt.Errorf("libcontainer seccomp: %w", err)
	}
	select {
	case r := <-got:
		return r.p, r.err
	default:
		return nil, errors.New("libcontainer loaded no seccomp program")
	}
}

type result struct {
	p   *program
	err error
}

// installTrap gives the calling thread a filter that hands seccomp() and
// prctl(PR_SET_SECCOMP) to a listener, and returns the listener.
func installTrap() (int, error) {
	var arch uint32
	switch goruntime.GOARCH {
	case "amd64":
		arch = unix.AUDIT_ARCH_X86_64
	case "arm64":
		arch = unix.AUDIT_ARCH_AARCH64
	default:
		return -1, fmt.Errorf("no seccomp trap for %s", goruntime.GOARCH)
	}
	const (
		ld  = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		ret = unix.BPF_RET | unix.BPF_K
	)
	filter := []unix.SockFilter{
		{Code: ld, K: 4},                            // 0: A = arch
		{Code: jeq, Jf: 6, K: arch},                 // 1: another arch: allow
		{Code: ld, K: 0},                            // 2: A = syscall number
		{Code: jeq, Jt: 3, K: unix.SYS_SECCOMP},     // 3: seccomp(): notify
		{Code: jeq, Jf: 3, K: unix.SYS_PRCTL},       // 4: not prctl: allow
		{Code: ld, K: 16},                           // 5: A = low word of args[0]
		{Code: jeq, Jf: 1, K: unix.PR_SET_SECCOMP},  // 6: PR_SET_SECCOMP: notify
		{Code: ret, K: unix.SECCOMP_RET_USER_NOTIF}, // 7
		{Code: ret, K: unix.SECCOMP_RET_ALLOW},      // 8
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	fd, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_NEW_LISTENER, uintptr(unsafe.Pointer(&prog)))
	goruntime.KeepAlive(filter)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}

// receive answers the trapped calls: libseccomp's probes go on to the
// kernel, the first load of a program is captured, sent on got, and
// answered as done without loading anything.
func receive(listener int, got chan<- result) {
	mem, err := os.Open("/proc/self/mem")
	if err != nil {
		got <- result{err: err}
		return
	}
	defer mem.Close()
	captured := false
	for {
		var n seccompNotif
		if err := ioctl(listener, unix.SECCOMP_IOCTL_NOTIF_RECV, unsafe.Pointer(&n)); err != nil {
			return
		}
		resp := seccompNotifResp{ID: n.ID, Flags: unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE}
		var flags, addr uint64
		switch {
		case n.Nr == unix.SYS_PRCTL && n.Args[1] == unix.SECCOMP_MODE_FILTER:
			addr = n.Args[2]
		case n.Nr == unix.SYS_SECCOMP && n.Args[0] == unix.SECCOMP_SET_MODE_FILTER:
			flags, addr = n.Args[1], n.Args[2]
		}
		if addr != 0 && !captured {
			captured = true
			r := readProgram(mem, addr, flags)
			// Answer "installed" without installing.
			resp = seccompNotifResp{ID: n.ID}
			if r.err != nil {
				resp.Error = -int32(unix.EINVAL)
			}
			got <- r
		}
		_ = ioctl(listener, unix.SECCOMP_IOCTL_NOTIF_SEND, unsafe.Pointer(&resp))
	}
}

// readProgram copies a struct sock_fprog and its instructions out of this
// process's memory, where the trapped thread left them.
func readProgram(mem *os.File, addr, flags uint64) result {
	if flags&unix.SECCOMP_FILTER_FLAG_NEW_LISTENER != 0 {
		return result{err: errors.New("the profile needs a seccomp agent")}
	}
	var hdr [16]byte // unsigned short len, padding, struct sock_filter *filter
	if _, err := mem.ReadAt(hdr[:], int64(addr)); err != nil {
		return result{err: err}
	}
	n := binary.NativeEndian.Uint16(hdr[0:2])
	ptr := binary.NativeEndian.Uint64(hdr[8:16])
	if n == 0 || ptr == 0 {
		return result{err: errors.New("empty seccomp program")}
	}
	raw := make([]byte, int(n)*8)
	if _, err := mem.ReadAt(raw, int64(ptr)); err != nil {
		return result{err: err}
	}
	p := &program{flags: uint32(flags), filter: make([]unix.SockFilter, n)}
	if err := binary.Read(bytes.NewReader(raw), binary.NativeEndian, p.filter); err != nil {
		return result{err: err}
	}
	return result{p: p}
}

func ioctl(fd int, req uint, arg unsafe.Pointer) error {
	for {
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(arg))
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return errno
		}
		return nil
	}
}
