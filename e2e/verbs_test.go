package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/engine"
)

// containerID is the full ID of a service's first container.
func containerID(t *testing.T, e *env, service string) string {
	t.Helper()
	id := strings.TrimSpace(e.must("ps", "-a", "-q", "--no-trunc", service).stdout)
	if len(id) != 64 {
		t.Fatalf("ps -q %s: %q", service, id)
	}
	return id
}

// TestContainerVerbsMustActThroughTheShim: kill -s, pause/unpause (the
// freezer), top, stats (-a, --no-trunc), restart, attach (with a
// terminal, with input, with signals proxied or not), and wait (and
// --down-project) do what docker compose's do.
func TestContainerVerbsMustActThroughTheShim(t *testing.T) {
	e := newEnv(t)
	e.useTestdata()
	e.downAtEnd("verbs")
	e.must("up", "-d")

	// kill -s delivers the signal; the container goes on.
	e.must("kill", "-s", "USR1", "db")
	eventually(t, 10*time.Second, func() error {
		if r := e.must("logs", "db"); !strings.Contains(r.stdout, "got USR1") {
			return fmt.Errorf("db log %q", r.stdout)
		}
		return nil
	})
	if rows := psRows(t, e); rows["db"].State != "running" {
		t.Fatalf("db after kill -s USR1: %+v", rows["db"])
	}
	if r := e.berth("kill", "-s", "SIGBOGUS", "db"); r.code != 1 || !strings.Contains(r.stderr, `unknown signal "SIGBOGUS"`) {
		t.Fatalf("kill -s SIGBOGUS: %+v", r)
	}

	// pause freezes every process (the heartbeat stops), unpause thaws.
	webID := containerID(t, e, "web")
	beat := func() string {
		b, _ := os.ReadFile(filepath.Join(e.run, "containers", webID, "rootfs", "tmp", "beat"))
		return string(b)
	}
	e.must("pause", "web")
	rows := psRows(t, e)
	if rows["web"].State != "paused" || !strings.HasSuffix(rows["web"].Status, "(Paused)") {
		t.Fatalf("web after pause: %+v", rows["web"])
	}
	if st, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/freezer", engine.Instance(e.root), webID, "freezer.state")); err == nil && strings.TrimSpace(string(st)) != "FROZEN" {
		t.Errorf("freezer.state %q", st)
	}
	frozen := beat()
	time.Sleep(300 * time.Millisecond)
	if beat() != frozen {
		t.Fatalf("a paused container kept running")
	}
	if r := e.berth("exec", "-T", "web", "true"); r.code != 1 || !strings.Contains(r.stderr, "paused") {
		t.Fatalf("exec in a paused container: %+v", r)
	}
	e.must("unpause", "web")
	eventually(t, 5*time.Second, func() error {
		if beat() == frozen {
			return fmt.Errorf("no heartbeat after unpause")
		}
		return nil
	})

	// top lists the container's processes as ps -ef does.
	top := e.must("top", "web").stdout
	if !strings.HasPrefix(top, "verbs-web-1\n") || !strings.Contains(top, "UID") || !strings.Contains(top, "sh -c echo web start") {
		t.Fatalf("top:\n%s", top)
	}

	// stats --no-stream: one table; --format json: one object a container.
	if out := e.must("stats", "--no-stream").stdout; !strings.Contains(out, "CPU %") || !strings.Contains(out, "verbs-db-1") {
		t.Fatalf("stats table:\n%s", out)
	}
	// Block I/O: 4 MiB written and read back with O_DIRECT (buffered
	// writes reach the disk from the kernel's flusher, charged to no
	// container on cgroup v1) show as at least that much each way.
	e.must("exec", "-T", "web", "sh", "-c", "dd if=/dev/zero of=/blk bs=64k count=64 oflag=direct && dd if=/blk of=/dev/null bs=64k iflag=direct && rm /blk")
	out := e.must("stats", "--no-stream", "--format", "json", "web").stdout
	var row struct{ Container, ID, Name, CPUPerc, MemUsage, MemPerc, PIDs, NetIO, BlockIO string }
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &row); err != nil {
		t.Fatalf("stats json %q: %v", out, err)
	}
	if row.Name != "verbs-web-1" || row.Container != row.Name || len(row.ID) != 12 || !strings.HasSuffix(row.CPUPerc, "%") || !strings.Contains(row.MemUsage, " / ") ||
		!strings.HasSuffix(row.MemPerc, "%") || row.PIDs == "0" || !strings.Contains(row.NetIO, " / ") {
		t.Fatalf("stats row %+v", row)
	}
	var read, written float64
	var ru, wu string
	if n, _ := fmt.Sscanf(row.BlockIO, "%g%s / %g%s", &read, &ru, &written, &wu); n != 4 || ru != "MB" || wu != "MB" || read < 4.19 || written < 4.19 {
		t.Fatalf("stats block I/O %q after 4 MiB each way", row.BlockIO)
	}

	// restart restarts the service and its dependents; --no-deps only it.
	// A container's first line reaches its log a moment after restart
	// returns: count until both counts are what they should be.
	starts := func(step string, db, web int) {
		eventually(t, 5*time.Second, func() error {
			d := strings.Count(e.must("logs", "db").stdout, "db start")
			w := strings.Count(e.must("logs", "web").stdout, "web start")
			if d != db || w != web {
				return fmt.Errorf("after %s: db started %d times, web %d", step, d, w)
			}
			return nil
		})
	}
	e.must("restart", "-t", "5", "db")
	starts("restart db", 2, 2)
	if !strings.Contains(e.must("logs", "db").stdout, "bye") {
		t.Fatalf("restart did not stop db with its stop signal")
	}
	e.must("restart", "--no-deps", "db")
	starts("restart --no-deps db", 3, 2)

	// attach with a terminal: keys in, output out, detach keys leave it;
	// --detach-keys replaces Ctrl-P Ctrl-Q (which then reach the shell).
	for _, tc := range []struct{ typed, want, detach string }{
		{"echo hi-from-attach\n", "hi-from-attach", "\x10\x11"},
		{"\x10\x11echo still-$((1+1))\n", "still-2", "\x18y"},
	} {
		p := openPty(t, 24, 80)
		args := []string{"attach", "term"}
		if tc.detach != "\x10\x11" {
			args = []string{"attach", "--detach-keys", "ctrl-x,y", "--index", "1", "term"}
		}
		c := p.run(e, args...)
		p.typeText(t, tc.typed)
		p.waitOutput(t, tc.want)
		p.typeText(t, tc.detach)
		if code := exitCodeOf(t, c); code != 0 {
			t.Fatalf("detach from %v: exit %d; terminal:\n%s", args, code, p.out.String())
		}
		if rows := psRows(t, e); rows["term"].State != "running" {
			t.Fatalf("term after detach: %+v", rows["term"])
		}
	}

	// attach without a terminal: input reaches the process; its exit code
	// is berth's.
	a := e.cmd(t.Context(), "attach", "reader")
	a.Stdin = strings.NewReader("line\n")
	var aout lockedBuffer
	a.Stdout = &aout
	a.Start()
	if code := exitCodeOf(t, a); code != 4 || !strings.Contains(aout.String(), "read line") {
		t.Fatalf("attach reader: exit %d, output %q", code, aout.String())
	}
	if r := e.berth("attach", "reader"); r.code != 1 || !strings.Contains(r.stderr, `service "reader" is not running`) {
		t.Fatalf("attach to a stopped service: %+v", r)
	}

	// wait returns the exit code of the container.
	if r := e.berth("wait", "job"); r.code != 5 {
		t.Fatalf("wait job: %+v", r)
	}

	// stats -a shows the exited job too, --no-trunc its full ID.
	statsNames := func(args ...string) string {
		return e.must(append([]string{"stats", "--no-stream", "--format", "{{.Name}} {{.ID}}"}, args...)...).stdout
	}
	jobID := containerID(t, e, "job")
	if out := statsNames(); strings.Contains(out, "verbs-job-1") || !strings.Contains(out, "verbs-db-1 "+containerID(t, e, "db")[:12]+"\n") {
		t.Fatalf("stats: %q", out)
	}
	if out := statsNames("-a", "--no-trunc"); !strings.Contains(out, "verbs-job-1 "+jobID+"\n") {
		t.Fatalf("stats -a --no-trunc: %q", out)
	}

	// --sig-proxy=false: a SIGTERM ends berth attach alone; db goes on.
	byes := strings.Count(e.must("logs", "db").stdout, "bye") // from the restarts above
	np := e.cmd(t.Context(), "attach", "--no-stdin", "--sig-proxy=false", "db")
	var npOut lockedBuffer
	np.Stdout = &npOut
	np.Start()
	time.Sleep(500 * time.Millisecond)
	np.Process.Signal(syscall.SIGTERM)
	exitCodeOf(t, np)
	time.Sleep(300 * time.Millisecond) // a proxied SIGTERM would have made db say bye by now
	if strings.Contains(npOut.String(), "bye") || psRows(t, e)["db"].State != "running" || strings.Count(e.must("logs", "db").stdout, "bye") != byes {
		t.Fatalf("attach --sig-proxy=false passed the SIGTERM on: output %q, db %+v", npOut.String(), psRows(t, e)["db"])
	}

	// --sig-proxy: a SIGTERM to berth attach goes to the container.
	sp := e.cmd(t.Context(), "attach", "--no-stdin", "db")
	var spOut lockedBuffer
	sp.Stdout = &spOut
	sp.Start()
	time.Sleep(500 * time.Millisecond)
	sp.Process.Signal(syscall.SIGTERM)
	if code := exitCodeOf(t, sp); code != 0 || !strings.Contains(spOut.String(), "bye") {
		t.Fatalf("attach db after SIGTERM: exit %d, output %q", code, spOut.String())
	}

	// wait --down-project: the first container to exit (web, killed)
	// gives the exit code and takes the whole project down.
	e.must("stop", "-t", "0", "term") // sh as PID 1 ignores the down's SIGTERM
	w := e.cmd(t.Context(), "wait", "--down-project", "web")
	var wOut lockedBuffer
	w.Stdout, w.Stderr = &wOut, &wOut
	w.Start()
	time.Sleep(500 * time.Millisecond)
	e.must("kill", "web")
	if code := exitCodeOf(t, w); code != 137 {
		t.Fatalf("wait --down-project: exit %d\n%s", code, wOut.String())
	}
	if names := psNames(e); names != "" {
		t.Fatalf("wait --down-project left %s", names)
	}
	e.mustBeGone("verbs")
}
