package runtime_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/engine/jsonlog"
	"github.com/berth-dev/berth/engine/runtime"
	"github.com/berth-dev/berth/internal/atomicfile"
)

// The test binary doubles as "berth init" and "berth shim", exactly as the
// real binary does.
func TestMain(m *testing.M) {
	runtime.MaybeInit()
	if len(os.Args) > 2 && os.Args[1] == "shim" {
		cfg, err := runtime.ReadConfig(os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := runtime.Serve(context.Background(), cfg, runtime.Hooks{}); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates namespaces and cgroups")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("needs /bin/busybox (Debian busybox-static)")
	}
}

// busyboxRoot makes a minimal root filesystem from the host's static busybox.
func busyboxRoot(t *testing.T) string {
	root := filepath.Join(t.TempDir(), "rootfs")
	for _, d := range []string{"bin", "etc", "proc", "sys", "dev", "tmp"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	b, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "bin/busybox"), b, 0o755)
	for _, a := range []string{"sh", "echo", "sleep", "cat", "id", "grep", "ls"} {
		os.Symlink("busybox", filepath.Join(root, "bin", a))
	}
	os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644)
	return root
}

type harness struct {
	cfg runtime.Config
	dir string
}

func newHarness(t *testing.T, args ...string) *harness {
	t.Helper()
	// A deep directory: socket paths must work beyond sun_path's 108 bytes.
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 60), strings.Repeat("e", 60))
	os.MkdirAll(dir, 0o700)
	id := fmt.Sprintf("rt%d%d", os.Getpid(), time.Now().UnixNano()%1e9)
	spec, err := container.Spec(container.SpecOptions{
		Rootfs:      busyboxRoot(t),
		CgroupsPath: "/berth-rttest/" + id,
		Hostname:    "box",
		Process:     container.Process{Args: args, Env: []string{"PATH=/bin"}, Cwd: "/"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.WriteJSON(filepath.Join(dir, "config.json"), spec, 0o600); err != nil {
		t.Fatal(err)
	}
	h := &harness{dir: dir, cfg: runtime.Config{
		ID: id, Bundle: dir, StateRoot: filepath.Join(dir, "runc"),
		LogPath: filepath.Join(dir, "log.json"), StatusPath: filepath.Join(dir, "status.json"),
		Socket: filepath.Join(dir, "shim.sock"), PidFile: filepath.Join(dir, "shim.pid"),
	}}
	t.Cleanup(func() {
		// Kill anything left so a failing test leaks nothing.
		runtime.Call(context.Background(), h.cfg.Socket, runtime.Request{Op: runtime.OpKill, Signal: "KILL"})
		h.waitExit(t)
		dirs, _ := filepath.Glob("/sys/fs/cgroup/*/berth-rttest")
		for _, d := range append(dirs, "/sys/fs/cgroup/berth-rttest") {
			os.Remove(d)
		}
	})
	return h
}

func (h *harness) start(t *testing.T) *runtime.Spawned {
	t.Helper()
	exe, _ := os.Executable()
	sh, err := runtime.Spawn(t.Context(), exe, h.cfg, filepath.Join(h.dir, "shim.log"))
	if err != nil {
		diag, _ := os.ReadFile(filepath.Join(h.dir, "shim.log"))
		t.Fatalf("spawn: %v\n%s", err, diag)
	}
	return sh
}

// waitExit waits for the shim's final exit, an event it sends, and
// returns the status then.
func (h *harness) waitExit(t *testing.T) runtime.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := runtime.Wait(ctx, h.cfg.Socket, runtime.ConditionExit)
	if errdefs.IsUnavailable(err) {
		// Gone already (or never started): the record has the last word.
		st, err = runtime.ReadStatus(h.cfg.StatusPath)
	}
	if err != nil {
		t.Fatalf("wait for exit: %v", err)
	}
	return st
}

func TestRunRecordsOutputAndExitCode(t *testing.T) {
	needRoot(t)
	h := newHarness(t, "sh", "-c", "echo hello; echo oops >&2; hostname; id -u; exit 3")
	h.start(t)
	st := h.waitExit(t)
	if st.ExitCode != 3 || st.FinishedAt.IsZero() {
		t.Fatalf("status %+v", st)
	}
	lines, err := jsonlog.Lines(h.cfg.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(lines, "|")
	for _, want := range []string{"hello", "oops", "box", "0"} {
		if !strings.Contains(got, want) {
			t.Errorf("log %q lacks %q", got, want)
		}
	}
	if _, err := os.Stat(h.cfg.Socket); !os.IsNotExist(err) {
		t.Errorf("socket left behind")
	}
}

func TestStopEscalatesToKill(t *testing.T) {
	needRoot(t)
	// A process that ignores SIGTERM must still stop, by SIGKILL.
	h := newHarness(t, "sh", "-c", "trap '' TERM; echo ready; while true; do sleep 1; done")
	h.start(t)
	start := time.Now()
	resp, err := runtime.Call(t.Context(), h.cfg.Socket, runtime.Request{Op: runtime.OpStop, Timeout: 300})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status == nil || resp.Status.State != runtime.StateExited || resp.Status.ExitCode != 137 {
		t.Fatalf("stop answered %+v", resp.Status)
	}
	if time.Since(start) < 300*time.Millisecond {
		t.Errorf("killed before the timeout")
	}
}

func TestStopWithTermIsGraceful(t *testing.T) {
	needRoot(t)
	h := newHarness(t, "sh", "-c", "trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done")
	h.start(t)
	time.Sleep(200 * time.Millisecond) // let the shell install its trap
	resp, err := runtime.Call(t.Context(), h.cfg.Socket, runtime.Request{Op: runtime.OpStop, Timeout: 10000})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status.ExitCode != 0 {
		t.Fatalf("exit code %d, want 0 from the trap", resp.Status.ExitCode)
	}
	lines, _ := jsonlog.Lines(h.cfg.LogPath)
	if len(lines) == 0 || lines[len(lines)-1] != "bye" {
		t.Fatalf("log %v", lines)
	}
}

func TestStartFailureIsReported(t *testing.T) {
	needRoot(t)
	h := newHarness(t, "/no/such/binary")
	exe, _ := os.Executable()
	_, err := runtime.Spawn(t.Context(), exe, h.cfg, filepath.Join(h.dir, "shim.log"))
	if err == nil {
		t.Fatal("start of a missing binary succeeded")
	}
	if !strings.Contains(err.Error(), "no/such/binary") {
		t.Errorf("error does not name the binary: %v", err)
	}
}

func TestSeccompAndCapsApply(t *testing.T) {
	needRoot(t)
	// CapEff of Docker's default set is 0xa80425fb; seccomp mode 2 means a
	// filter is installed.
	h := newHarness(t, "sh", "-c", "grep -E '^(CapEff|Seccomp):' /proc/self/status")
	h.start(t)
	h.waitExit(t)
	lines, _ := jsonlog.Lines(h.cfg.LogPath)
	got := strings.Join(lines, "|")
	if !strings.Contains(got, "00000000a80425fb") || !strings.Contains(got, "Seccomp:\t2") {
		t.Fatalf("security settings not applied: %q", got)
	}
}

func TestShimOutlivesCaller(t *testing.T) {
	needRoot(t)
	h := newHarness(t, "sleep", "30")
	h.start(t)
	st, _ := runtime.ReadStatus(h.cfg.StatusPath)
	// The shim runs in its own session, so it is not in our process group.
	out, err := exec.Command("ps", "-o", "sid=", "-p", fmt.Sprint(st.ShimPid)).Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(out)) != fmt.Sprint(st.ShimPid) {
		t.Errorf("shim is not a session leader: sid %s", out)
	}
}

// TestShimConfigMustComeOnItsInput: Spawn hands the shim its configuration
// on its standard input, not in a file (two inodes fewer a start: the
// staged file and its rename); the shim's command line names its run
// directory, for ps.
func TestShimConfigMustComeOnItsInput(t *testing.T) {
	needRoot(t)
	h := newHarness(t, "sleep", "30")
	h.start(t)
	st, err := runtime.ReadStatus(h.cfg.StatusPath)
	if err != nil || st.State != runtime.StateRunning {
		t.Fatalf("status %+v, %v", st, err)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", st.ShimPid))
	if err != nil {
		t.Fatal(err)
	}
	if args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00"); len(args) != 4 || args[1] != "shim" || args[2] != "-" || args[3] != h.dir {
		t.Errorf("shim command line %q, want shim - %s", args, h.dir)
	}
	ents, _ := os.ReadDir(h.dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), "shim.json") {
			t.Errorf("%s written: the configuration goes on the shim's input", e.Name())
		}
	}
}

// TestShimRunsWithOnePButTheContainerDoesNot: a shim keeps less memory
// with one P (docs/performance.md), set in its environment by the spawner;
// the container's command must not inherit it.
func TestShimRunsWithOnePButTheContainerDoesNot(t *testing.T) {
	needRoot(t)
	if _, set := os.LookupEnv("GOMAXPROCS"); set {
		t.Skip("GOMAXPROCS is set here, and a shim keeps the spawner's")
	}
	h := newHarness(t, "sleep", "30")
	h.start(t)
	st, err := runtime.ReadStatus(h.cfg.StatusPath)
	if err != nil {
		t.Fatal(err)
	}
	environ := func(pid int) []string {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil {
			t.Fatal(err)
		}
		return strings.Split(string(b), "\x00")
	}
	if env := environ(st.ShimPid); !slices.Contains(env, "GOMAXPROCS=1") {
		t.Errorf("shim environment lacks GOMAXPROCS=1: %q", env)
	}
	// The start returns once libcontainer's init was told to go on; until it
	// has exec'd the command, the pid is still that init (which keeps the
	// variable, docs/performance.md). Read the command's environment, not
	// the init's.
	cmdline := fmt.Sprintf("/proc/%d/cmdline", st.Pid)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		b, err := os.ReadFile(cmdline)
		if err == nil && string(b) == "sleep\x0030\x00" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the container never ran its command: %s is %q (%v)", cmdline, b, err)
		}
	}
	for _, kv := range environ(st.Pid) {
		if strings.HasPrefix(kv, "GOMAXPROCS=") {
			t.Errorf("the container's process inherited %s", kv)
		}
	}
}

func TestRestartOnFailureStopsAfterN(t *testing.T) {
	needRoot(t)
	h := newHarness(t, "sh", "-c", "echo run; exit 3")
	h.cfg.Restart = "on-failure:2"
	h.start(t)
	st := h.waitExit(t)
	if st.State != runtime.StateExited || st.ExitCode != 3 || st.RestartCount != 2 {
		t.Fatalf("status %+v", st)
	}
	lines, _ := jsonlog.Lines(h.cfg.LogPath)
	if strings.Count(strings.Join(lines, "\n"), "run") != 3 {
		t.Fatalf("want 3 runs, log %v", lines)
	}
}

func TestRestartAlwaysEndsWithStop(t *testing.T) {
	needRoot(t)
	h := newHarness(t, "sh", "-c", "echo run; exit 0")
	h.cfg.Restart = "always"
	h.start(t)
	deadline := time.Now().Add(20 * time.Second)
	for {
		lines, _ := jsonlog.Lines(h.cfg.LogPath)
		if len(lines) >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no restarts: %v", lines)
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := runtime.Call(t.Context(), h.cfg.Socket, runtime.Request{Op: runtime.OpStop, Timeout: 2000})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status.State != runtime.StateExited || resp.Status.RestartCount < 2 {
		t.Fatalf("after stop: %+v", resp.Status)
	}
	before, _ := jsonlog.Lines(h.cfg.LogPath)
	time.Sleep(500 * time.Millisecond)
	after, _ := jsonlog.Lines(h.cfg.LogPath)
	if len(after) != len(before) {
		t.Fatalf("restarted after stop: %d -> %d runs", len(before), len(after))
	}
}

// TestShimGrantsTheRealtimeBudget: a container with a real-time runtime
// starts only once its parent cgroup grants that budget, which the shim
// gives while it holds the cgroup-parent lock (so that a teardown cannot
// remove the raised parent before the container is in it). Nothing else
// raises it here: without the shim's grant the start fails with "invalid
// argument".
func TestShimGrantsTheRealtimeBudget(t *testing.T) {
	needRoot(t)
	if _, err := os.Stat("/sys/fs/cgroup/cpu/cpu.rt_runtime_us"); err != nil {
		t.Skip("no cgroup v1 real-time group scheduling here")
	}
	h := newHarness(t, "sleep", "30")
	var spec specs.Spec
	if err := atomicfile.ReadJSON(filepath.Join(h.dir, "config.json"), &spec); err != nil {
		t.Fatal(err)
	}
	rt, period := int64(10000), uint64(1000000)
	if spec.Linux.Resources == nil {
		spec.Linux.Resources = &specs.LinuxResources{}
	}
	spec.Linux.Resources.CPU = &specs.LinuxCPU{RealtimeRuntime: &rt, RealtimePeriod: &period}
	if err := atomicfile.WriteJSON(filepath.Join(h.dir, "config.json"), &spec, 0o600); err != nil {
		t.Fatal(err)
	}
	h.start(t)
	b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/cpu", spec.Linux.CgroupsPath, "cpu.rt_runtime_us"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != "10000" {
		t.Errorf("the container's cpu.rt_runtime_us is %s, want 10000", got)
	}
}
