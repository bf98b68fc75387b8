package runtime

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/atomicfile"
)

// TestShimMustStartFromTheConvertedSpecAlone: the spawner converts the
// spec, and the shim starts from what it wrote without reading the spec
// (decoding it cost every shim the runtime-spec types' JSON caches).
// Paths relative to the bundle resolve against the bundle, not against the
// spawner's working directory.
func TestShimMustStartFromTheConvertedSpecAlone(t *testing.T) {
	bundle, dir := t.TempDir(), t.TempDir()
	t.Chdir(t.TempDir())
	rt, period := int64(10000), uint64(100000)
	spec := &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: "rootfs"},
		Process: &specs.Process{
			Args: []string{"sleep", "1"}, Env: []string{"A=1"}, Cwd: "/srv", Terminal: true,
			ConsoleSize: &specs.Box{Height: 24, Width: 80},
			User:        specs.User{UID: 1000, GID: 1001, AdditionalGids: []uint32{5}},
		},
		Mounts: []specs.Mount{
			{Destination: "/data", Source: "data", Type: "bind", Options: []string{"rbind"}},
			{Destination: "/proc", Source: "proc", Type: "proc"},
		},
		Linux: &specs.Linux{
			CgroupsPath: "/berth-test/c1",
			Resources:   &specs.LinuxResources{CPU: &specs.LinuxCPU{RealtimeRuntime: &rt, RealtimePeriod: &period}},
			Seccomp:     &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"keyctl"}, Action: specs.ActErrno}}},
		},
	}
	if err := atomicfile.WriteJSON(filepath.Join(bundle, "config.json"), spec, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Config{ID: "c1", Bundle: bundle}
	if err := prepareStart(&cfg, dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(bundle, "config.json")); err != nil {
		t.Fatal(err)
	}
	// What the shim reads is its configuration as the spawner wrote it.
	var read Config
	if err := atomicfile.ReadJSON(writeConfig(t, cfg), &read); err != nil {
		t.Fatal(err)
	}
	lcfg, err := loadStart(read)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(bundle, "rootfs"); lcfg.Rootfs != want {
		t.Errorf("root %q, want %q (relative to the bundle)", lcfg.Rootfs, want)
	}
	if len(lcfg.Mounts) != 2 || lcfg.Mounts[0].Source != filepath.Join(bundle, "data") || lcfg.Mounts[1].Source != "proc" {
		t.Errorf("mounts %+v, want the bind's source under the bundle and proc's kept", lcfg.Mounts)
	}
	if !slices.Contains(lcfg.Labels, "bundle="+bundle) {
		t.Errorf("labels %v, want bundle=%s", lcfg.Labels, bundle)
	}
	if c := lcfg.Cgroups; c == nil || c.Path != "/berth-test/c1" || c.Resources.CpuRtRuntime != rt || c.Resources.CpuRtPeriod != period {
		t.Errorf("cgroup %+v, want the spec's path and real-time budget", c)
	}
	if lcfg.Seccomp != nil {
		t.Error("the seccomp profile is in libcontainer's configuration, not apart")
	}
	// No cache directory: the profile is kept in the shim's own.
	if read.Seccomp == nil || filepath.Dir(read.Seccomp.Path) != dir {
		t.Fatalf("seccomp %+v, want the profile in %s", read.Seccomp, dir)
	}
	profile, err := readProfile(*read.Seccomp)
	if err != nil {
		t.Fatal(err)
	}
	if sc, err := decodeProfile(profile); err != nil || len(sc.Syscalls) != 1 || sc.Syscalls[0].Name != "keyctl" {
		t.Errorf("profile %+v, %v", sc, err)
	}
	// A profile file changed after the spawn is not taken for the spec's.
	if err := os.WriteFile(read.Seccomp.Path, []byte(`{"defaultAction":"SCMP_ACT_ALLOW"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readProfile(*read.Seccomp); err == nil {
		t.Error("a changed profile file was read as the spec's profile")
	}
	want := ProcessConfig{Args: []string{"sleep", "1"}, Env: []string{"A=1"}, Cwd: "/srv", UID: 1000, GID: 1001,
		AdditionalGids: []uint32{5}, Terminal: true, Size: &WindowSize{Rows: 24, Cols: 80}}
	got, _ := json.Marshal(read.Process)
	if w, _ := json.Marshal(want); string(got) != string(w) {
		t.Errorf("process %s, want %s", got, w)
	}

	// A spec that does not convert fails the spawn, naming the problem.
	spec.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_BOGUS"}}
	if err := atomicfile.WriteJSON(filepath.Join(bundle, "config.json"), spec, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := prepareStart(&cfg, dir); err == nil || err.Error() != `convert spec: unknown rlimit "RLIMIT_BOGUS"` {
		t.Errorf("bad rlimit: %v", err)
	}
}

func writeConfig(t *testing.T, cfg Config) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "shim.json")
	if err := atomicfile.ReplaceJSON(path, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSpecInMemoryMustConvertAsTheBundlesFile: a spec handed to the spawner
// in memory (the engine's starts write no config.json) gives the shim the
// same configuration and the same profile sum as the compact file the
// engine wrote before, so programs cached then are still found; the caller's spec keeps its
// profile, and the shim's configuration carries no spec.
func TestSpecInMemoryMustConvertAsTheBundlesFile(t *testing.T) {
	bundle, dir := t.TempDir(), t.TempDir()
	spec := &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: "rootfs"},
		Process: &specs.Process{Args: []string{"sleep", "1"}, Cwd: "/"},
		Mounts:  []specs.Mount{{Destination: "/data", Source: "data", Type: "bind", Options: []string{"rbind"}}},
		Linux: &specs.Linux{
			CgroupsPath: "/berth-test/c1",
			Seccomp:     &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"keyctl"}, Action: specs.ActErrno}}},
		},
	}
	if err := atomicfile.ReplaceJSON(filepath.Join(bundle, "config.json"), spec, 0o600); err != nil {
		t.Fatal(err)
	}
	fromFile := Config{ID: "c1", Bundle: bundle}
	if err := prepareStart(&fromFile, dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(bundle, "config.json")); err != nil {
		t.Fatal(err)
	}
	inMemory := Config{ID: "c1", Bundle: bundle, Spec: spec}
	if err := prepareStart(&inMemory, dir); err != nil {
		t.Fatalf("a spec in memory must need no config.json: %v", err)
	}
	if string(inMemory.Libcontainer) != string(fromFile.Libcontainer) {
		t.Errorf("libcontainer configuration from memory:\n%s\nfrom the file:\n%s", inMemory.Libcontainer, fromFile.Libcontainer)
	}
	if inMemory.Seccomp == nil || fromFile.Seccomp == nil || *inMemory.Seccomp != *fromFile.Seccomp {
		t.Errorf("seccomp from memory %+v, from the file %+v: want the same profile and sum", inMemory.Seccomp, fromFile.Seccomp)
	}
	if spec.Linux.Seccomp == nil {
		t.Error("the conversion took the profile out of the caller's spec")
	}
	raw, err := json.Marshal(inMemory)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), `"ociVersion"`) {
		t.Errorf("the shim's configuration carries the spec: %s", raw)
	}
	// Without a process (or root) the spawn fails, as with a file.
	inMemory.Spec = &specs.Spec{Root: spec.Root}
	if err := prepareStart(&inMemory, dir); err == nil {
		t.Error("a spec without a process was converted")
	}
}
