package e2e

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testdisk"
)

// containerDir is the state directory of the project's one container of
// service.
func (e *env) containerDir(service string) string {
	e.t.Helper()
	id := strings.TrimSpace(e.must("ps", "-a", "-q", service).stdout)
	dirs, _ := filepath.Glob(filepath.Join(e.root, "containers", id+"*"))
	if id == "" || len(dirs) != 1 {
		e.t.Fatalf("container of %s: id %q, dirs %v", service, id, dirs)
	}
	return dirs[0]
}

// logFiles lists a container's log files (the lock aside), the current
// one first.
func logFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*-json.log*"))
	files = slices.DeleteFunc(files, func(f string) bool { return strings.HasSuffix(f, ".lock") })
	slices.Sort(files)
	return files
}

// unpackedSize is a log file's size, decompressed if it is gzipped.
func unpackedSize(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		r = zr
	}
	n, err := io.Copy(io.Discard, r)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return n
}

// numbered checks that lines are "<prefix><k>" for consecutive k ending
// at last, and returns how many there are.
func numbered(t *testing.T, out, prefix string, last int) int {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	first := last - len(lines) + 1
	for i, l := range lines {
		if l != prefix+strconv.Itoa(first+i) {
			t.Fatalf("line %d is %q, want %q (of %d lines ending at %d)", i, l, prefix+strconv.Itoa(first+i), len(lines), last)
		}
	}
	return len(lines)
}

// TestLogRotationMustKeepMaxFileFiles: max-size, max-file and compress
// bound the files on disk as Docker's json-file does, logs reads across
// them in order, driver local compresses by default, and driver none keeps
// nothing.
func TestLogRotationMustKeepMaxFileFiles(t *testing.T) {
	e := newEnv(t)
	e.useTestdata()
	e.downAtEnd("logrot")
	e.must("up", "-d")
	for svc, last := range map[string]string{"counter": "line 1999", "plain": "line 999", "local": "line 999"} {
		eventually(t, 30*time.Second, func() error {
			if got := strings.TrimSpace(e.must("logs", "--no-log-prefix", "--tail", "1", svc).stdout); got != last {
				return fmt.Errorf("%s: last line %q", svc, got)
			}
			return nil
		})
	}

	// counter: the current file and two compressed ones, none over 8k
	// (compression runs in the background: wait for it).
	dir := e.containerDir("counter")
	var files []string
	eventually(t, 10*time.Second, func() error {
		files = logFiles(t, dir)
		if len(files) != 3 || !strings.HasSuffix(files[1], ".1.gz") || !strings.HasSuffix(files[2], ".2.gz") {
			return fmt.Errorf("log files %v", files)
		}
		return nil
	})
	for _, f := range files {
		if n := unpackedSize(t, f); n > 8*1024 || n == 0 {
			t.Errorf("%s holds %d bytes, max-size is 8k", filepath.Base(f), n)
		}
	}
	all := numbered(t, e.must("logs", "--no-log-prefix", "counter").stdout, "line ", 1999)
	// Three files of 8k hold some 300 lines of about 75 bytes.
	if all < 200 || all > 400 {
		t.Errorf("logs gives %d lines from three files of 8k", all)
	}
	// A tail that reaches back into the rotated files.
	if n := numbered(t, e.must("logs", "--no-log-prefix", "--tail", strconv.Itoa(all-10), "counter").stdout, "line ", 1999); n != all-10 {
		t.Errorf("--tail %d gave %d lines", all-10, n)
	}

	// plain: four files, none compressed.
	files = logFiles(t, e.containerDir("plain"))
	if len(files) != 4 || strings.HasSuffix(files[3], ".gz") || !strings.HasSuffix(files[3], ".3") {
		t.Errorf("plain's log files: %v", files)
	}
	numbered(t, e.must("logs", "--no-log-prefix", "plain").stdout, "line ", 999)

	// local: the same rotation, compressed by default.
	eventually(t, 10*time.Second, func() error {
		files = logFiles(t, e.containerDir("local"))
		if len(files) != 3 || !strings.HasSuffix(files[1], ".1.gz") || !strings.HasSuffix(files[2], ".2.gz") {
			return fmt.Errorf("local's log files %v", files)
		}
		return nil
	})
	numbered(t, e.must("logs", "--no-log-prefix", "local").stdout, "line ", 999)

	// quiet: no log, and logs says why.
	if files := logFiles(t, e.containerDir("quiet")); len(files) != 0 {
		t.Errorf("driver none wrote %v", files)
	}
	r := e.must("logs", "quiet")
	if strings.Contains(r.stdout, "unseen") || !strings.Contains(r.stdout, "no logs are available with the 'none' log driver") {
		t.Errorf("logs of a container without a log: %+v", r)
	}
	if rows := psRows(t, e); rows["quiet"].State != "running" {
		t.Errorf("quiet: %+v", rows["quiet"])
	}
	e.must("down", "-t", "0")
	e.mustBeGone("logrot")
}

// TestLogsFollowMustGoOnAcrossRotationsAndRestarts: logs -f started with
// the container shows every line of every run of its restart policy once,
// in order, while the log rotates many times, and ends when it stops.
func TestLogsFollowMustGoOnAcrossRotationsAndRestarts(t *testing.T) {
	e := newEnv(t)
	e.useTestdata()
	e.downAtEnd("logfollow")
	e.must("up", "-d")
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	c := e.cmd(ctx, "logs", "-f", "--no-log-prefix")
	var out, errb strings.Builder
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Run(); err != nil {
		t.Fatalf("logs -f: %v\n%s", err, errb.String())
	}
	var want []string
	for run := 1; run <= 3; run++ {
		for i := range 300 {
			want = append(want, fmt.Sprintf("run %d line %d", run, i))
		}
	}
	got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if !slices.Equal(got, want) {
		for i := range min(len(got), len(want)) {
			if got[i] != want[i] {
				t.Fatalf("logs -f: %d lines, want 900; line %d is %q, want %q", len(got), i, got[i], want[i])
			}
		}
		t.Fatalf("logs -f: %d lines, want 900", len(got))
	}
	if files := logFiles(t, e.containerDir("burst")); len(files) < 20 {
		t.Errorf("the log rotated into only %d files", len(files))
	}
	// Read back afterwards, from the compressed files: the same lines.
	if r := e.must("logs", "--no-log-prefix"); r.stdout != out.String() {
		t.Errorf("logs after the exit differs from what logs -f showed")
	}
	e.must("down", "-t", "0")
	e.mustBeGone("logfollow")
}

// TestFullLogDiskMustNotStopTheContainer: with the log on a full disk the
// container runs on (its output is drained and dropped), its status says
// why the log has a gap, and logging resumes once there is room.
func TestFullLogDiskMustNotStopTheContainer(t *testing.T) {
	e := newEnv(t)
	e.useTestdata()
	e.downAtEnd("logfull")
	e.must("create")
	disk, makeRoom := testdisk.Full(t, 1<<20, 64*1024)
	// The log lives on the small disk; status.json stays where it is.
	dir := e.containerDir("chatty")
	logPath := filepath.Join(dir, filepath.Base(dir)+"-json.log")
	os.Remove(logPath)
	if err := os.Symlink(filepath.Join(disk, "log"), logPath); err != nil {
		t.Fatal(err)
	}
	e.must("start")

	type status struct {
		State    string `json:"state"`
		LogError string `json:"log_error"`
	}
	read := func() status {
		var st status
		b, _ := os.ReadFile(filepath.Join(dir, "status.json"))
		json.Unmarshal(b, &st)
		return st
	}
	eventually(t, 30*time.Second, func() error {
		if st := read(); !strings.Contains(st.LogError, "no space left on device") {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	counter := func() int {
		n, _ := strconv.Atoi(strings.TrimSpace(e.must("exec", "-T", "chatty", "cat", "/tmp/n").stdout))
		return n
	}
	full := counter()
	eventually(t, 30*time.Second, func() error {
		if n := counter(); n < full+50 {
			return fmt.Errorf("the container got from %d to %d only", full, n)
		}
		return nil
	})
	if rows := psRows(t, e); rows["chatty"].State != "running" {
		t.Fatalf("with the log's disk full: %+v", rows["chatty"])
	}
	makeRoom()
	eventually(t, 30*time.Second, func() error {
		if st := read(); st.LogError != "" || st.State != "running" {
			return fmt.Errorf("status %+v after room was made", st)
		}
		last := strings.Fields(e.must("logs", "--no-log-prefix", "--tail", "1").stdout)
		if len(last) == 0 {
			return fmt.Errorf("empty log")
		}
		if n, _ := strconv.Atoi(last[0]); n <= full+50 {
			return fmt.Errorf("the last line logged is %d; the container was past %d before", n, full+50)
		}
		return nil
	})
	// Every line logged is whole.
	r := e.must("logs", "--no-log-prefix")
	for i, l := range strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n") {
		if f := strings.Fields(l); len(f) != 2 || len(f[1]) != 500 {
			t.Fatalf("line %d of the log is torn: %.60q", i, l)
		}
	}
	e.must("down", "-t", "0")
	e.mustBeGone("logfull")
}
