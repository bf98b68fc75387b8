package e2e

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cinitEnv is an env whose shims log which init served (BERTH_DEBUG=1).
func cinitEnv(t *testing.T) *env {
	e := newEnv(t)
	e.environ = append(e.environ, "BERTH_DEBUG=1")
	return e
}

// initOf reads from the shim's log which init served the service's
// container: "c", or "go" and why.
func (e *env) initOf(service string) string {
	e.t.Helper()
	id := strings.TrimSpace(e.must("ps", "-a", "-q", "--no-trunc", service).stdout)
	logs, _ := filepath.Glob(filepath.Join(e.run, "*", id+"*", "shim.log"))
	if more, _ := filepath.Glob(filepath.Join(e.run, id+"*", "shim.log")); len(more) > 0 {
		logs = append(logs, more...)
	}
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, `msg="container init"`) {
				return line[strings.Index(line, "init="):]
			}
		}
	}
	e.t.Fatalf("no shim log of %s (%s) says which init served it (logs %v)", service, id, logs)
	return ""
}

// TestCInitMustServeAPlainContainerAndLeaveTheRestToGo starts a plain
// service through the C init and checks what the command sees, and a
// service with a terminal (which the C init does not serve) through
// libcontainer's Go init.
func TestCInitMustServeAPlainContainerAndLeaveTheRestToGo(t *testing.T) {
	e := cinitEnv(t)
	e.writeProject(map[string]string{"compose.yaml": `
name: cinit
services:
  plain:
    image: busybox
    command: ["sleep", "300"]
    hostname: plainhost
    working_dir: /work/here
  tty:
    image: busybox
    command: ["sleep", "300"]
    tty: true
`})
	e.downAtEnd("cinit")
	e.must("up", "-d")
	if got := e.initOf("plain"); got != "init=c" {
		t.Fatalf("plain service served by %q, want the C init", got)
	}
	if got := e.initOf("tty"); !strings.HasPrefix(got, "init=go") || !strings.Contains(got, "terminal") {
		t.Fatalf("tty service served by %q, want libcontainer's Go init (terminal)", got)
	}
	out := e.sh("plain", "hostname; pwd; id -u; cat /proc/1/cmdline | tr '\\0' ' '; echo; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/1/status; cat /proc/self/mountinfo")
	t.Logf("inside:\n%s", out)
	for _, want := range []string{"plainhost\n", "/work/here\n", "sleep 300", "CapEff:\t00000000a80425fb", "Seccomp:\t2"} {
		if !strings.Contains(out, want) {
			t.Errorf("inside the C init's container: no %q in\n%s", want, out)
		}
	}
	e.must("down", "-t", "0")
	e.mustBeGone("cinit")
}

// hostileTar writes busybox's root file system with the entries named in
// links replaced by symlinks (name -> target).
func hostileTar(t *testing.T, links map[string]string) string {
	t.Helper()
	in, err := os.Open(busyboxTar)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	path := filepath.Join(t.TempDir(), "hostile.tar")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	tr, tw := tar.NewReader(in), tar.NewWriter(out)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, replaced := links[strings.TrimSuffix(h.Name, "/")]; replaced {
			continue
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range links {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// hostMounts lists the host's mount points.
func hostMounts(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if f := strings.Fields(line); len(f) > 4 {
			m[f[4]] = true
		}
	}
	return m
}

// TestCInitMustRefuseOrConfineAHostileImage starts images whose mount
// targets are symlinks out of the root, through /proc/self and to "..":
// each container is refused or runs confined, and the host gets no mount
// outside the test's own state directories. A target reached through a
// symlink goes to libcontainer's Go init (runc's resolution, as Docker's),
// so an image whose /etc/resolv.conf links to a file it does not hold
// starts, as under Docker.
func TestCInitMustRefuseOrConfineAHostileImage(t *testing.T) {
	escape := t.TempDir() // a host directory no container may mount on
	cases := map[string]map[string]string{
		"proc-out":        {"proc": escape},
		"proc-dotdot":     {"proc": "../../../../../../" + strings.TrimPrefix(escape, "/")},
		"sys-out":         {"sys": escape},
		"dev-magic":       {"dev": "/proc/self/cwd"},
		"hosts-out":       {"etc/hosts": escape + "/hosts"},
		"hosts-magic":     {"etc/hosts": "/proc/self/root/etc/hosts"},
		"resolv-dotdot":   {"etc/resolv.conf": "../../../../../../" + strings.TrimPrefix(escape, "/") + "/resolv.conf"},
		"hostname-parent": {"etc/hostname": ".."},
		"etc-out":         {"etc": escape},
		"resolv-dangling": {"etc/resolv.conf": "../run/systemd/resolve/stub-resolv.conf"},
	}
	e := cinitEnv(t)
	e.downAtEnd("hostile")
	before := hostMounts(t)
	var compose strings.Builder
	compose.WriteString("name: hostile\nservices:\n")
	for name, links := range cases {
		e.must("image", "import", hostileTar(t, links), "hostile-"+name)
		fmt.Fprintf(&compose, "  %s:\n    image: hostile-%s\n    command: [\"sleep\", \"300\"]\n", name, name)
	}
	e.writeProject(map[string]string{"compose.yaml": compose.String()})
	for name := range cases {
		r := e.berth("up", "-d", name)
		if r.code != 0 && name == "resolv-dangling" {
			t.Errorf("%s: refused, but Docker starts it: %s", name, r.stderr)
		}
		if r.code == 0 {
			if got := e.initOf(name); !strings.Contains(got, "init=go") || !strings.Contains(got, "symlink") {
				t.Errorf("%s: served by %q, want libcontainer's init for a symlinked target", name, got)
			}
		}
		for m := range hostMounts(t) {
			if !before[m] && !strings.HasPrefix(m, workDir) && !strings.HasPrefix(m, "/run/netns") {
				t.Errorf("%s: a new host mount at %s (up: exit %d, %s)", name, m, r.code, r.stderr)
			}
		}
		if entries, _ := os.ReadDir(escape); len(entries) > 0 {
			t.Errorf("%s: the container wrote to the host's %s: %v", name, escape, entries)
		}
		if r.code != 0 {
			t.Logf("%s: refused: %s", name, strings.TrimSpace(r.stderr))
			continue
		}
		// It runs: what it mounted must be inside it.
		out, ok := e.try(name, "cat /etc/hosts; ls /proc/1; cat /proc/self/mountinfo")
		t.Logf("%s: started; inside:\n%s", name, out)
		if !ok {
			t.Errorf("%s: exec failed: %s", name, out)
		}
	}
	e.must("down", "-t", "0")
	e.mustBeGone("hostile")
	for m := range hostMounts(t) {
		if !before[m] && !strings.HasPrefix(m, workDir) {
			t.Errorf("a host mount left at %s", m)
		}
	}
}
