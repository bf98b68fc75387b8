package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestHelperPath(t *testing.T) {
	bin, front, sum := helperBinary, frontBinary, helperSum
	defer func() { helperBinary, frontBinary, helperSum = bin, front, sum }()

	helperBinary, helperSum = nil, ""
	if p := helperPath(t.TempDir()); p != "" {
		t.Fatalf("no helper carried, yet %q", p)
	}

	run := t.TempDir()
	helperBinary = []byte("#!/bin/sh\n")
	frontBinary = []byte("#!/bin/sh\nexit 1\n")
	helperSum = "0123456789abcdef0123  -\n"
	p := helperPath(run)
	if want := filepath.Join(run, "helper", "0123456789abcdef", "berth"); p != want {
		t.Fatalf("installed at %q, want %q", p, want)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o500 {
		t.Fatalf("installed helper: %v, %v", fi, err)
	}
	if got, _ := os.ReadFile(p); string(got) != string(helperBinary) {
		t.Fatalf("content %q", got)
	}
	// The front beside it, where berth's constructor looks for it.
	fp := filepath.Join(filepath.Dir(p), "front")
	if got, _ := os.ReadFile(fp); string(got) != string(frontBinary) {
		t.Fatalf("front content %q", got)
	}
	// Installed once: a present file of the right size is used as it is.
	before := fi.ModTime()
	if again := helperPath(run); again != p {
		t.Fatalf("second call: %q", again)
	}
	if fi, _ := os.Stat(p); !fi.ModTime().Equal(before) {
		t.Fatal("reinstalled")
	}
	// A torn file (another size) is replaced.
	os.Chmod(p, 0o600)
	os.WriteFile(p, []byte("#!"), 0o600)
	if helperPath(run) != p {
		t.Fatal("not reinstalled")
	}
	if got, _ := os.ReadFile(p); string(got) != string(helperBinary) {
		t.Fatalf("content after repair %q", got)
	}
	// So is a torn front.
	os.Chmod(fp, 0o600)
	os.WriteFile(fp, []byte("#!"), 0o600)
	if helperPath(run) != p {
		t.Fatal("helper lost with the front")
	}
	if got, _ := os.ReadFile(fp); string(got) != string(frontBinary) {
		t.Fatalf("front after repair %q", got)
	}
}
