package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestAStartMustCreateFewFiles keeps the files a start creates few (each
// is an inode, and inodes are what a start pays for on a journal-less
// ext4; docs/performance.md): the container's /etc files are in its run
// directory, not beside its record, written without staging files, and
// left alone by a restart that would write the same; the OCI spec goes to
// the shim in memory, not through a config.json (BERTH_DEBUG keeps one).
// What the container sees is what the files hold.
func TestAStartMustCreateFewFiles(t *testing.T) {
	e := newEnv(t)
	e.writeProject(map[string]string{"compose.yaml": "name: fewfiles\nservices:\n  app:\n    image: busybox\n    command: [\"sleep\", \"3600\"]\n    hostname: app1\n"})
	e.downAtEnd("fewfiles")
	e.must("up", "-d")
	ents, err := os.ReadDir(filepath.Join(e.root, "containers"))
	var ids []string
	for _, d := range ents {
		if d.IsDir() {
			ids = append(ids, d.Name())
		}
	}
	if err != nil || len(ids) != 1 {
		t.Fatalf("containers %v (%v), want one", ids, err)
	}
	run := filepath.Join(e.run, "containers", ids[0])
	rec := filepath.Join(e.root, "containers", ids[0])
	for _, name := range []string{"hostname", "hosts", "resolv.conf"} {
		want, err := os.ReadFile(filepath.Join(run, name))
		if err != nil {
			t.Errorf("/etc/%s is not in the run directory: %v", name, err)
			continue
		}
		if _, err := os.Stat(filepath.Join(rec, name)); err == nil {
			t.Errorf("/etc/%s was written beside the record too", name)
		}
		if got := e.must("exec", "-T", "app", "cat", "/etc/"+name).stdout; got != string(want) {
			t.Errorf("the container's /etc/%s is %q, the file %q", name, got, want)
		}
	}
	for _, dir := range []string{run, rec} {
		ents, _ := os.ReadDir(dir)
		for _, d := range ents {
			if strings.Contains(d.Name(), ".tmp") {
				t.Errorf("staging file %s left in %s", d.Name(), dir)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(run, "config.json")); err == nil {
		t.Error("a start wrote config.json: the spec goes to the shim in memory")
	}

	hostname := filepath.Join(run, "hostname")
	ino := inodeOf(t, hostname)
	e.must("restart", "-t", "0", "app")
	if inodeOf(t, hostname) != ino {
		t.Error("a restart wrote /etc/hostname again, unchanged")
	}
	if got := e.must("exec", "-T", "app", "cat", "/etc/hostname").stdout; got != "app1\n" {
		t.Errorf("after a restart the container's /etc/hostname is %q", got)
	}

	e.environ = append(e.environ, "BERTH_DEBUG=1")
	e.must("restart", "-t", "0", "app")
	var spec struct {
		Process struct{ Args []string } `json:"process"`
	}
	raw, err := os.ReadFile(filepath.Join(run, "config.json"))
	if err == nil {
		err = json.Unmarshal(raw, &spec)
	}
	if err != nil || strings.Join(spec.Process.Args, " ") != "sleep 3600" {
		t.Errorf("with BERTH_DEBUG the start keeps its spec: %v, args %q", err, spec.Process.Args)
	}
	e.must("down", "-t", "0")
	e.mustBeGone("fewfiles")
}

func inodeOf(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}
