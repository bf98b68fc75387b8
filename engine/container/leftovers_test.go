package container

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-dev/berth/internal/crashpoint"
)

// TestCrashHelper is the process the crash test kills: it creates a
// container "a" in the store at $CRASH_STORE, and removes it if asked.
func TestCrashHelper(t *testing.T) {
	root := os.Getenv("CRASH_STORE")
	if root == "" {
		t.Skip("run by TestInterruptedCreatesAndRemovalsMustBeCleanedByList")
	}
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Create(context.Background(), "a", Config{Image: "busybox"})
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("CRASH_REMOVE") != "" {
		if err := s.Remove(context.Background(), c.ID); err != nil {
			t.Fatal(err)
		}
	}
}

// TestInterruptedCreatesAndRemovalsMustBeCleanedByList kills a process
// (SIGKILL) at each point of a create and a removal; the next List shows
// the container whole or not at all, and leaves nothing else in the store.
// A directory without a record (an older berth killed in a create) goes
// too.
func TestInterruptedCreatesAndRemovalsMustBeCleanedByList(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		point   string
		remove  bool
		present bool // the container "a" is there after the crash
	}{
		{point: "container-staged"},
		{point: "container-committed", present: true},
		{point: "container-removing", remove: true},
	} {
		t.Run(tc.point, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$")
			cmd.Env = append(os.Environ(), "CRASH_STORE="+root, crashpoint.Env+"="+tc.point)
			if tc.remove {
				cmd.Env = append(cmd.Env, "CRASH_REMOVE=1")
			}
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("helper was not killed at %s: %v\n%s", tc.point, err, out)
			}
			s, err := Open(root)
			if err != nil {
				t.Fatal(err)
			}
			all, err := s.List(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if got := slices.ContainsFunc(all, func(c Container) bool { return c.Name == "a" }); got != tc.present || len(all) > 1 {
				t.Fatalf("after a crash at %s: %+v, want a present %v", tc.point, all, tc.present)
			}
			if left := storeEntries(t, root, all); len(left) != 0 {
				t.Fatalf("left in the store after a crash at %s: %v", tc.point, left)
			}
			if !tc.present {
				if _, err := s.Create(t.Context(), "a", Config{Image: "busybox"}); err != nil {
					t.Fatalf("the name is still taken: %v", err)
				}
			}
		})
	}
	t.Run("directory without a record", func(t *testing.T) {
		t.Parallel()
		root := t.TempDir()
		s, err := Open(root)
		if err != nil {
			t.Fatal(err)
		}
		bare := s.Dir(newID())
		if err := os.MkdirAll(filepath.Join(bare, "files"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(bare, "status.json"), []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := s.List(t.Context()); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(bare); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("directory without a record kept: %v", err)
		}
	})
}

// storeEntries lists what is in the store's root but the lock and the
// directories of containers.
func storeEntries(t *testing.T, root string, cs []Container) []string {
	t.Helper()
	ents, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if e.Name() == ".lock" || slices.ContainsFunc(cs, func(c Container) bool { return c.ID == e.Name() }) {
			continue
		}
		out = append(out, strings.TrimSpace(e.Name()))
	}
	return out
}
