package container

import (
	"errors"
	"testing"

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
