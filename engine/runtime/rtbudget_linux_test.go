package runtime

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeCgroup makes dir with a real-time period and runtime, as the
// kernel gives every cgroup of the cpu controller.
func fakeCgroup(t *testing.T, dir string, period, runtime string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{"cpu.rt_period_us": period, "cpu.rt_runtime_us": runtime} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func runtimeOf(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "cpu.rt_runtime_us"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestRaiseRealtimeMustCoverTheSiblingsAndTheNewContainer: each ancestor
// grants what its other children hold plus the path's need, from the
// top, and a grant already large enough is left alone.
func TestRaiseRealtimeMustCoverTheSiblingsAndTheNewContainer(t *testing.T) {
	root := t.TempDir()
	fakeCgroup(t, root, "1000000", "950000")
	fakeCgroup(t, filepath.Join(root, "a"), "1000000", "0")
	fakeCgroup(t, filepath.Join(root, "a", "b"), "1000000", "0")
	// A sibling of the container holding 10% and one of b holding 5%.
	fakeCgroup(t, filepath.Join(root, "a", "b", "other"), "100000", "10000")
	fakeCgroup(t, filepath.Join(root, "a", "side"), "1000000", "50000")
	// The container's own leaf (left from a run) is not counted.
	fakeCgroup(t, filepath.Join(root, "a", "b", "leaf"), "100000", "90000")

	if err := raiseRealtime(root, "/a/b/leaf", bandwidth(100000, 20000)); err != nil {
		t.Fatal(err)
	}
	if got := runtimeOf(t, filepath.Join(root, "a", "b")); got != "300000" {
		t.Errorf("b: %s µs, want 300000 (its child's 10%% and the container's 20%%)", got)
	}
	if got := runtimeOf(t, filepath.Join(root, "a")); got != "349999" {
		t.Errorf("a: %s µs, want 349999 (b's 30%% and side's 5%%, in the kernel's rounding)", got)
	}
	if got := runtimeOf(t, root); got != "950000" {
		t.Errorf("the root changed: %s", got)
	}

	// Enough already: nothing written.
	if err := os.WriteFile(filepath.Join(root, "a", "cpu.rt_runtime_us"), []byte("900000"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := raiseRealtime(root, "/a/b/leaf", bandwidth(100000, 20000)); err != nil {
		t.Fatal(err)
	}
	if got := runtimeOf(t, filepath.Join(root, "a")); got != "900000" {
		t.Errorf("a's larger grant was changed to %s", got)
	}
	// Directly under the root: the host's budget, nothing to raise.
	if err := raiseRealtime(root, "/leaf", bandwidth(100000, 20000)); err != nil {
		t.Fatal(err)
	}
}
