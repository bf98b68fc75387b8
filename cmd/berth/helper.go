package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/atomicfile"
)

// helperPath is where the lean helper this binary carries (cmd/berth-helper,
// embedded by make build) is installed: $BERTH_RUN/helper/<sum>/berth, named
// berth so ps shows "berth shim". It is installed on first use, content-
// addressed, so shims of an older binary keep theirs. "" when this binary
// carries none (a plain go build) or it cannot be installed: the engine
// then runs shims from this binary, as before.
//
// The front (cmd/berth-front) is installed beside it, as <sum>/front, where
// berth's constructor looks for it (front_linux.c); <sum> covers both. When
// the front cannot be installed, berth simply runs every command itself.
//
// This process holds <sum> locked shared until it exits (useVersion), and
// removes the other versions no process uses (pruneVersions).
func helperPath(run string) string {
	sum := strings.Fields(helperSum)
	if len(helperBinary) == 0 || len(sum) == 0 || len(sum[0]) < 16 {
		return ""
	}
	run, err := filepath.Abs(run)
	if err != nil {
		return ""
	}
	dir := filepath.Join(run, "helper", sum[0][:16])
	if !useVersion(dir) {
		return ""
	}
	install(dir, "front", frontBinary) // without it, berth serves everything
	if !install(dir, "berth", helperBinary) {
		return ""
	}
	pruneVersions(filepath.Dir(dir), filepath.Base(dir))
	return filepath.Join(dir, "berth")
}

// versionLock is the version directory this process uses, held locked
// shared (flock) for the process's life: a berth of another build prunes a
// version only when it can take that lock exclusively, so a version is
// never removed between this berth's install and the shims it spawns.
var versionLock *os.File

// useVersion makes dir and locks it shared (versionLock). A prune may
// hold it exclusively and remove it meanwhile: the lock is then taken on
// a directory no longer there, so it is made again.
func useVersion(dir string) bool {
	for range 3 {
		if os.MkdirAll(dir, 0o700) != nil {
			return false
		}
		f, err := os.Open(dir)
		if err != nil {
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_SH) == nil && sameFile(f, dir) {
			if versionLock != nil {
				versionLock.Close()
			}
			versionLock = f
			return true
		}
		f.Close()
	}
	return false
}

// sameFile says whether the open f is what path names now.
func sameFile(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(path)
	return err == nil && os.SameFile(a, b)
}

// install writes b as dir/name unless it is there already, and reports
// whether it is there now. "There" is checked cheaply, on every command:
// the file is the one install wrote, unchanged since, when its device,
// inode, size and change time (which no one can set back) are those
// recorded in dir/.name.ok as it was written. A binary of the right size
// with other content (written over in place, or replaced) is written
// again. Hashing the files instead would cost about 0.1 s per command
// (docs/performance.md).
func install(dir, name string, b []byte) bool {
	if len(b) == 0 {
		return false
	}
	path, stampPath := filepath.Join(dir, name), filepath.Join(dir, "."+name+".ok")
	if s, ok := stamp(path, int64(len(b))); ok {
		if got, err := os.ReadFile(stampPath); err == nil && string(got) == s {
			return true
		}
	}
	if os.MkdirAll(dir, 0o700) != nil || atomicfile.Write(path, b, 0o500) != nil {
		return false
	}
	if s, ok := stamp(path, int64(len(b))); ok {
		_ = atomicfile.Replace(stampPath, []byte(s), 0o600) // else the next command writes it again
	}
	return true
}

// stamp identifies the regular file at path, of the given size, as install
// records it. berth's C constructor checks the front's stamp in this
// format before it runs the front (front_linux.c, installed).
func stamp(path string, size int64) (string, bool) {
	var st syscall.Stat_t
	if syscall.Stat(path, &st) != nil || st.Mode&syscall.S_IFMT != syscall.S_IFREG || st.Size != size {
		return "", false
	}
	return fmt.Sprintf("%d %d %d %d.%09d\n", st.Dev, st.Ino, st.Size, st.Ctim.Sec, st.Ctim.Nsec), true
}

// pruneVersions removes the helper versions under dir other than keep that
// nothing can still use. A version is in use while
//   - a berth of its build runs: it holds the version's lock shared from
//     before it installs until it exits (useVersion), and its shims are
//     spawned from there;
//   - a process runs from it: a shim or DNS server (which later respawns
//     the DNS server from that path, and whose libcontainer runs
//     /proc/self/exe), a container's init as it starts, or a front.
//
// So a version is removed only with its lock held exclusively (no berth of
// that build can start using it meanwhile: it waits, then makes the
// directory again) and no /proc/*/exe inside it. A berth built before
// this lock existed does not take it (docs/architecture.md). The cost when
// there is nothing to prune is one directory read; while an old version is
// still in use, one /proc scan a minute (below).
func pruneVersions(dir, keep string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	var locked []*os.File
	defer func() {
		for _, f := range locked {
			f.Close()
		}
	}()
	var stale []string
	for _, ent := range entries {
		if name := ent.Name(); name != keep && ent.IsDir() && isVersion(name) {
			f, err := os.Open(filepath.Join(dir, name))
			if err != nil {
				continue
			}
			if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
				f.Close()
				continue
			}
			locked = append(locked, f)
			stale = append(stale, filepath.Join(dir, name))
		}
	}
	if len(stale) == 0 {
		return
	}
	// A version that outlives its berth, with shims still running from it,
	// is looked at again at most once a minute: the scan costs about 5 µs
	// per process on the host.
	recent := filepath.Join(dir, ".in-use")
	if fi, err := os.Stat(recent); err == nil && time.Since(fi.ModTime()) < pruneEvery {
		return
	}
	inUse, ok := exeDirs()
	if !ok {
		return
	}
	kept := false
	for _, d := range stale {
		if inUse[d] {
			kept = true
		} else {
			_ = os.RemoveAll(d)
		}
	}
	if kept {
		_ = atomicfile.Replace(recent, nil, 0o600)
	}
}

// pruneEvery is how often a version found in use is looked at again.
const pruneEvery = time.Minute

// isVersion says whether name is a version directory's: 16 hex digits.
func isVersion(name string) bool {
	if len(name) != 16 {
		return false
	}
	_, err := strconv.ParseUint(name, 16, 64)
	return err == nil
}

// exeDirs is the set of directories holding some process's executable,
// from /proc/*/exe (a deleted one's too); ok is false when /proc cannot be
// read.
func exeDirs() (map[string]bool, bool) {
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return nil, false
	}
	dirs := map[string]bool{}
	for _, p := range procs {
		if c := p.Name()[0]; c < '0' || c > '9' {
			continue
		}
		exe, err := os.Readlink("/proc/" + p.Name() + "/exe")
		if err != nil {
			continue // a kernel thread, or gone
		}
		dirs[filepath.Dir(strings.TrimSuffix(exe, " (deleted)"))] = true
	}
	return dirs, true
}
