package container

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
)

func TestRenameKeepsNamesUnique(t *testing.T) {
	t.Parallel()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.Create(t.Context(), "tmp_app-1", Config{Image: "busybox"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(t.Context(), "other", Config{Image: "busybox"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Rename(t.Context(), a.ID, "other"); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("rename to a taken name: %v", err)
	}
	if _, err := s.Rename(t.Context(), a.ID, "bad/name"); err == nil {
		t.Fatal("rename to an invalid name succeeded")
	}
	if _, err := s.Rename(t.Context(), a.ID, "app-1"); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(t.Context(), "app-1")
	if err != nil || got.ID != a.ID || got.Config.Image != "busybox" {
		t.Fatalf("after rename: %+v, %v", got, err)
	}
	if _, err := s.Get(t.Context(), "tmp_app-1"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("old name still found: %v", err)
	}
	if _, err := s.Rename(t.Context(), "nope", "x"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("rename of a missing container: %v", err)
	}
}

// TestCreateWritesTheRecordBeforeTheLock: a create has its record written
// and synced before it waits for the store's lock, so the creates of one
// up queue only for the name check and the rename; the record appears
// only once the lock is free, and a List meanwhile leaves the create's
// staging directory alone.
func TestCreateWritesTheRecordBeforeTheLock(t *testing.T) {
	t.Parallel()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.lock(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	type created struct {
		c   Container
		err error
	}
	done := make(chan created, 1)
	go func() {
		c, err := s.Create(t.Context(), "web-1", Config{Image: "busybox"})
		done <- created{c, err}
	}()
	staged := func() bool {
		m, _ := filepath.Glob(filepath.Join(s.Root(), stagePrefix+"*", "container.json"))
		return len(m) == 1
	}
	for deadline := time.Now().Add(10 * time.Second); !staged(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			l.Unlock()
			t.Fatal("no record was staged while the store's lock was held")
		}
	}
	if all, _ := s.List(t.Context()); len(all) != 0 {
		t.Fatalf("a record is in place before the lock was free: %+v", all)
	}
	l.Unlock()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got, err := s.Get(t.Context(), "web-1"); err != nil || got.ID != r.c.ID {
		t.Fatalf("after the create: %+v, %v", got, err)
	}
	if m, _ := filepath.Glob(filepath.Join(s.Root(), ".*")); len(m) != 1 || filepath.Base(m[0]) != ".lock" {
		t.Fatalf("staged files left: %v", m)
	}
}

// TestConcurrentCreatesKeepNamesUnique: of concurrent creates of one name
// exactly one succeeds; the others fail with ErrAlreadyExists and leave
// no directory behind.
func TestConcurrentCreatesKeepNamesUnique(t *testing.T) {
	t.Parallel()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const n = 16
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := s.Create(t.Context(), "db-1", Config{Image: "busybox"})
			errs <- err
		}()
	}
	ok := 0
	for range n {
		switch err := <-errs; {
		case err == nil:
			ok++
		case !errors.Is(err, errdefs.ErrAlreadyExists):
			t.Errorf("create: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d creates of one name succeeded, want 1", ok)
	}
	ents, _ := os.ReadDir(s.Root())
	dirs := 0
	for _, e := range ents {
		if e.IsDir() {
			dirs++
		}
	}
	if dirs != 1 {
		t.Fatalf("%d directories in the store, want 1", dirs)
	}
}

// TestCreateSeesNamesChangedByAnotherCommand: a rename, a removal or a new
// container by another command (another Store on the same directory)
// counts at this command's next create; so does the name of a record whose
// fields come in another order than Berth writes them.
func TestCreateSeesNamesChangedByAnotherCommand(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	mine, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	other, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	a, err := mine.Create(t.Context(), "a", Config{Image: "busybox"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mine.Create(t.Context(), "b", Config{Image: "busybox"}); err != nil {
		t.Fatal(err) // mine has read a's name now
	}
	if _, err := other.Rename(t.Context(), a.ID, "c"); err != nil {
		t.Fatal(err)
	}
	if _, err := mine.Create(t.Context(), "c", Config{Image: "busybox"}); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("create of a name another command renamed a container to: %v", err)
	}
	if _, err := mine.Create(t.Context(), "a", Config{Image: "busybox"}); err != nil {
		t.Fatalf("create of the name the rename freed: %v", err)
	}
	d, err := other.Create(t.Context(), "d", Config{Image: "busybox"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mine.Create(t.Context(), "d", Config{Image: "busybox"}); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("create of a name another command took: %v", err)
	}
	if err := other.Remove(t.Context(), d.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := mine.Create(t.Context(), "d", Config{Image: "busybox"}); err != nil {
		t.Fatalf("create of the name of a removed container: %v", err)
	}
	id := strings.Repeat("ab", 32)
	if err := os.MkdirAll(mine.Dir(id), 0o700); err != nil {
		t.Fatal(err)
	}
	rec := `{"created": "2026-11-26T00:00:00Z", "config": {"image": "busybox"}, "name": "e", "id": "` + id + `"}`
	if err := os.WriteFile(filepath.Join(mine.Dir(id), "container.json"), []byte(rec), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := mine.Create(t.Context(), "e", Config{Image: "busybox"}); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("create of the name of a record written in another order: %v", err)
	}
}

// TestNetworkingReadsEachContainersSettings: the DNS publication's reader
// of the records returns every container's networking keys by ID.
func TestNetworkingReadsEachContainersSettings(t *testing.T) {
	t.Parallel()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.Create(t.Context(), "a", Config{Image: "busybox", Net: Networking{DNS: []string{"192.0.2.53"}, Links: map[string]string{"db": "p-db-1"}}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Create(t.Context(), "b", Config{Image: "busybox", Net: Networking{Mode: NetworkModeNone}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Networking()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !slices.Equal(got[a.ID].DNS, []string{"192.0.2.53"}) || got[a.ID].Links["db"] != "p-db-1" || got[b.ID].Mode != NetworkModeNone {
		t.Fatalf("networking by ID: %+v", got)
	}
}
