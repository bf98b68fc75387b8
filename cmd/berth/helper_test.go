package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
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
	// A binary that is not the one install wrote is written again: one
	// of the right size written over in place (its change time moves on:
	// wait past the clock's coarse tick first), one replaced by another
	// file, a torn one (another size).
	overwrite := func(b string) func(string) {
		return func(path string) { os.Chmod(path, 0o600); os.WriteFile(path, []byte(b), 0o600) }
	}
	for _, tc := range []struct {
		what, path string
		want       []byte
		damage     func(path string)
	}{
		{"helper written over", p, helperBinary, func(path string) { time.Sleep(50 * time.Millisecond); overwrite("#!/bin/no\n")(path) }},
		{"front replaced", fp, frontBinary, func(path string) { os.Remove(path); os.WriteFile(path, []byte("#!/bin/sh\nexit 2\n"), 0o500) }},
		{"helper torn", p, helperBinary, overwrite("#!")},
		{"front torn", fp, frontBinary, overwrite("#!")},
	} {
		tc.damage(tc.path)
		if helperPath(run) != p {
			t.Fatalf("%s: helper lost", tc.what)
		}
		if got, _ := os.ReadFile(tc.path); string(got) != string(tc.want) {
			t.Fatalf("%s: content %q", tc.what, got)
		}
	}
}

// TestHelperVersionsMustBePrunedOnlyWhenUnused: another build's helper
// directory goes once nothing uses it, and stays while a process runs
// from it (a shim) or a berth of its build holds it (between its install
// and its spawns); this build's own and other names are left.
func TestHelperVersionsMustBePrunedOnlyWhenUnused(t *testing.T) {
	bin, front, sum := helperBinary, frontBinary, helperSum
	defer func() { helperBinary, frontBinary, helperSum = bin, front, sum }()
	helperBinary, frontBinary = []byte("#!/bin/sh\n"), []byte("#!/bin/sh\nexit 1\n")
	helperSum = "0123456789abcdef0123  -\n"

	run := t.TempDir()
	dir := filepath.Join(run, "helper")
	old := func(name string) string {
		d := filepath.Join(dir, name)
		os.MkdirAll(d, 0o700)
		os.WriteFile(filepath.Join(d, "front"), []byte("x"), 0o500)
		return d
	}
	exists := func(d string) bool { _, err := os.Stat(d); return err == nil }

	// One runs a process from its directory, as a shim of an old build.
	running := old("1111111111111111")
	sleep, err := os.ReadFile("/bin/sleep")
	if err != nil {
		t.Skip(err)
	}
	os.WriteFile(filepath.Join(running, "berth"), sleep, 0o500)
	shim := exec.Command(filepath.Join(running, "berth"), "60")
	if err := shim.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { shim.Process.Kill(); shim.Wait() }()
	// One is held by a berth of its build.
	held := old("2222222222222222")
	f, err := os.Open(held)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
		t.Fatal(err)
	}
	unused := old("3333333333333333")
	other := old("not-a-version")

	p := helperPath(run)
	if p == "" || !exists(p) {
		t.Fatalf("own helper: %q", p)
	}
	if exists(unused) {
		t.Error("an unused old version was kept")
	}
	if !exists(running) || !exists(held) || !exists(other) {
		t.Fatalf("removed one in use or not ours: running %v, held %v, other %v", exists(running), exists(held), exists(other))
	}

	// Once the process ends and the lock goes, both go at the next
	// command that looks (a version found in use is looked at again a
	// minute later: so, once a minute has passed); this build's own
	// stays, and is held by this process.
	shim.Process.Kill()
	shim.Wait()
	f.Close()
	helperPath(run)
	if !exists(running) {
		t.Fatal("a version found in use was looked at again within the minute")
	}
	ago := time.Now().Add(-pruneEvery)
	if err := os.Chtimes(filepath.Join(dir, ".in-use"), ago, ago); err != nil {
		t.Fatal(err)
	}
	if helperPath(run) != p {
		t.Fatal("own helper lost")
	}
	if exists(running) || exists(held) {
		t.Errorf("unused after all: running %v, held %v", exists(running), exists(held))
	}
	if !exists(p) {
		t.Fatal("own version removed")
	}
	g, _ := os.Open(filepath.Dir(p))
	defer g.Close()
	if syscall.Flock(int(g.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
		t.Error("this berth does not hold its own version")
	}
}

// TestRelativeStateDirsMustBeMadeAbsolute: shims inherit berth's
// environment and run from /, so a relative BERTH_ROOT or BERTH_RUN is
// made absolute from berth's directory first.
func TestRelativeStateDirsMustBeMadeAbsolute(t *testing.T) {
	wd, _ := os.Getwd()
	t.Setenv("BERTH_ROOT", "rel/root")
	t.Setenv("BERTH_RUN", "/abs/run")
	if err := absStateDirs(); err != nil {
		t.Fatal(err)
	}
	if got := os.Getenv("BERTH_ROOT"); got != filepath.Join(wd, "rel/root") {
		t.Errorf("BERTH_ROOT=%q", got)
	}
	if got := os.Getenv("BERTH_RUN"); got != "/abs/run" {
		t.Errorf("BERTH_RUN=%q", got)
	}
}
