package e2e

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCpMustCopyBothWaysAndStayInsideTheContainer: cp copies files and
// directories out of and into a container, running or stopped, through
// its volumes, with docker cp's naming rules; no path or symlink leads to
// the host's files.
func TestCpMustCopyBothWaysAndStayInsideTheContainer(t *testing.T) {
	e := newEnv(t)
	e.useTestdata()
	e.downAtEnd("cp")
	e.must("up", "-d")
	eventually(t, 10*time.Second, func() error {
		if !strings.Contains(e.must("logs", "app").stdout, "ready") {
			return fmt.Errorf("not ready")
		}
		return nil
	})
	local := func(p string) string { return filepath.Join(e.dir, p) }
	read := func(p string) string { b, _ := os.ReadFile(local(p)); return string(b) }

	// Out: a directory under a new name, links kept as links.
	e.must("cp", "app:/srv/site", "site")
	if read("site/index.html") != "page\n" {
		t.Fatalf("site/index.html: %q", read("site/index.html"))
	}
	if l, err := os.Readlink(local("site/pw")); err != nil || l != "/etc/passwd" {
		t.Fatalf("site/pw: %q %v (want the link, not the file)", l, err)
	}
	// Into an existing directory: under the source's name; "/." : contents.
	os.Mkdir(local("into"), 0o755)
	e.must("cp", "app:/srv/site", "into")
	e.must("cp", "app:/srv/site/.", "contents")
	if read("into/site/index.html") != "page\n" || read("contents/index.html") != "page\n" {
		t.Fatalf("into: %q, contents: %q", read("into/site/index.html"), read("contents/index.html"))
	}
	// A tar stream to stdout.
	r := e.must("cp", "app:/srv/site/index.html", "-")
	if h, err := tar.NewReader(bytes.NewReader([]byte(r.stdout))).Next(); err != nil || h.Name != "index.html" {
		t.Fatalf("cp to -: %+v %v", h, err)
	}

	// In: a file into the volume, a directory to a new name.
	os.WriteFile(local("in.txt"), []byte("hello volume\n"), 0o644)
	e.must("cp", "in.txt", "app:/data/")
	os.MkdirAll(local("dir/sub"), 0o755)
	os.WriteFile(local("dir/sub/f"), []byte("deep\n"), 0o600)
	e.must("cp", "dir", "app:/opt/newdir")
	if r := e.must("exec", "-T", "app", "sh", "-c", "cat /data/in.txt /opt/newdir/sub/f; stat -c %u:%a /opt/newdir/sub/f"); r.stdout != "hello volume\ndeep\n0:600\n" {
		t.Fatalf("after cp in: %q", r.stdout)
	}
	// -a keeps owners both ways (else: root's in the container, the
	// caller's here); -L copies what a link points to, not the link.
	os.WriteFile(local("owned.txt"), []byte("owned\n"), 0o644)
	os.Chown(local("owned.txt"), 4321, 4322)
	e.must("cp", "owned.txt", "app:/tmp/plain.txt")
	e.must("cp", "-a", "owned.txt", "app:/tmp/kept.txt")
	if r := e.must("exec", "-T", "app", "sh", "-c", "stat -c %u:%g /tmp/plain.txt /tmp/kept.txt; chown 1234:1235 /tmp/plain.txt"); r.stdout != "0:0\n4321:4322\n" {
		t.Fatalf("owners after cp and cp -a in: %q", r.stdout)
	}
	e.must("cp", "app:/tmp/plain.txt", "out-plain.txt")
	e.must("cp", "--archive", "app:/tmp/plain.txt", "out-kept.txt")
	owner := func(p string) string {
		fi, err := os.Stat(local(p))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		return fmt.Sprintf("%d:%d", st.Uid, st.Gid)
	}
	if o, k := owner("out-plain.txt"), owner("out-kept.txt"); o != fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid()) || k != "1234:1235" {
		t.Fatalf("owners after cp and cp -a out: %s, %s", o, k)
	}
	e.must("cp", "-L", "app:/srv/site/pw", "pw-followed")
	if fi, err := os.Lstat(local("pw-followed")); err != nil || !fi.Mode().IsRegular() || !strings.HasPrefix(read("pw-followed"), "root:") {
		t.Fatalf("cp -L of a link: %v %v %q", fi, err, read("pw-followed"))
	}
	os.Symlink("owned.txt", local("link.txt"))
	e.must("cp", "--follow-link", "link.txt", "app:/tmp/followed.txt")
	if r := e.must("exec", "-T", "app", "sh", "-c", "[ -f /tmp/followed.txt ] && [ ! -L /tmp/followed.txt ] && cat /tmp/followed.txt"); r.stdout != "owned\n" {
		t.Fatalf("cp --follow-link in: %q", r.stdout)
	}

	// Paths and links resolve inside the container, never on the host.
	hostHostname, _ := os.ReadFile("/etc/hostname")
	e.must("cp", "app:/srv/root/etc/hostname", "h")
	if inContainer := e.must("exec", "-T", "app", "cat", "/etc/hostname").stdout; read("h") != inContainer || read("h") == string(hostHostname) && inContainer != string(hostHostname) {
		t.Fatalf("cp through a link to / read %q; the container's is %q", read("h"), inContainer)
	}
	if r := e.berth("cp", "app:/../../../../etc/shadow", "shadow"); r.code == 0 || read("shadow") != "" {
		t.Fatalf("cp of ../../etc/shadow: %+v, copied %d bytes", r, len(read("shadow")))
	}
	marker := fmt.Sprintf("berth-cp-escape-%d", os.Getpid())
	os.WriteFile(local(marker), []byte("x"), 0o644)
	e.must("cp", marker, "app:/tmp/evil/tmp/")
	if _, err := os.Stat(filepath.Join("/tmp", marker)); err == nil {
		os.Remove(filepath.Join("/tmp", marker))
		t.Fatalf("cp through a link to / wrote on the host")
	}
	if r := e.must("exec", "-T", "app", "cat", "/tmp/"+marker); r.stdout != "x" {
		t.Fatalf("the copy did not land in the container's /tmp: %q", r.stdout)
	}

	// A copy in goes to every replica; --index picks one.
	e.must("cp", "in.txt", "pair:/tmp/")
	os.WriteFile(local("one.txt"), []byte("one\n"), 0o644)
	e.must("cp", "--index", "2", "one.txt", "pair:/tmp/")
	for i, want := range []string{"hello volume\n", "hello volume\none\n"} {
		if r := e.must("exec", "-T", "--index", fmt.Sprint(i+1), "pair", "sh", "-c", "cat /tmp/*.txt"); r.stdout != want {
			t.Fatalf("pair-%d after cp: %q", i+1, r.stdout)
		}
	}

	// A read-only mount takes nothing, running or stopped.
	if r := e.berth("cp", "in.txt", "app:/ro/"); r.code == 0 {
		t.Fatalf("cp into a read-only volume of a running container: %+v", r)
	}

	// A stopped container: its root filesystem and its volume.
	e.must("stop", "-t", "1")
	if r := e.berth("cp", "in.txt", "app:/ro/"); r.code == 0 || !strings.Contains(r.stderr, "read-only") {
		t.Fatalf("cp into a read-only volume of a stopped container: %+v", r)
	}
	os.WriteFile(local("late.txt"), []byte("while stopped\n"), 0o644)
	e.must("cp", "late.txt", "app:/data/late.txt")
	e.must("cp", "late.txt", "app:/root-late.txt")
	e.must("cp", "app:/srv/site/index.html", "stopped.html")
	if read("stopped.html") != "page\n" {
		t.Fatalf("cp from a stopped container: %q", read("stopped.html"))
	}
	e.must("start")
	if r := e.must("exec", "-T", "app", "cat", "/data/late.txt", "/root-late.txt"); r.stdout != "while stopped\nwhile stopped\n" {
		t.Fatalf("after start: %q", r.stdout)
	}
	if r := e.berth("cp", "app:/no/such/file", "x"); r.code != 1 || !strings.Contains(r.stderr, "could not find the file /no/such/file") {
		t.Fatalf("missing source: %+v", r)
	}
	e.must("down", "-t", "1")
	e.mustBeGone("cp")
}
