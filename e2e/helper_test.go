package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestShimsAndDNSMustRunTheLeanHelper: berth (as make build makes it)
// installs the helper it carries under $BERTH_RUN/helper/<sum>/berth and
// runs every shim and the DNS server from it; containers, exec and
// init: true work through it, and ps still names the processes berth;
// all of it with relative state roots.
func TestShimsAndDNSMustRunTheLeanHelper(t *testing.T) {
	e := newEnv(t)
	// The project is named in the file: exec (inside) takes no -p.
	e.writeProject(map[string]string{"compose.yaml": `
name: leanhelper
services:
  plain:
    image: busybox
    command: ["sleep", "3600"]
  withinit:
    image: busybox
    init: true
    command: ["sleep", "3600"]
`})
	e.downAtEnd("leanhelper")
	// The state roots relative to the project directory berth runs in
	// (the same directories as e.root and e.run): shims and the DNS server
	// run from / and must still find them.
	e.environ = []string{"BERTH_ROOT=../" + filepath.Base(e.root), "BERTH_RUN=../" + filepath.Base(e.run)}
	if filepath.Dir(e.root) != filepath.Dir(e.dir) || filepath.Dir(e.run) != filepath.Dir(e.dir) {
		t.Fatal("the env's layout changed")
	}
	e.must("up", "-d")
	helpers, _ := filepath.Glob(filepath.Join(e.run, "helper", "*", "berth"))
	if len(helpers) != 1 {
		t.Fatalf("helpers installed: %v, want one", helpers)
	}
	exe := func(pid int) string {
		t.Helper()
		p, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	pids, _ := filepath.Glob(filepath.Join(e.run, "containers", "*", "shim.pid"))
	if len(pids) != 2 {
		t.Fatalf("shims: %v", pids)
	}
	for _, p := range pids {
		if got := exe(pidIn(p)); got != helpers[0] {
			t.Errorf("%s runs %s, want the helper %s", p, got, helpers[0])
		}
	}
	if got := exe(e.dnsPid()); got != helpers[0] {
		t.Errorf("the DNS server runs %s, want the helper %s", got, helpers[0])
	}
	if fi, err := os.Stat(helpers[0]); err != nil || fi.Mode().Perm() != 0o500 {
		t.Errorf("helper mode: %v %v", fi.Mode(), err)
	}
	// The helper is smaller than berth: it carries no compose-go loader,
	// Kubernetes or CLI code.
	hf, _ := os.Stat(helpers[0])
	bf, _ := os.Stat(berthBin)
	if hf.Size() >= bf.Size()/2 {
		t.Errorf("helper is %d bytes, berth %d: not lean", hf.Size(), bf.Size())
	}
	if got := inside(t, e, "withinit", "cat /proc/1/cmdline | tr '\\0' ' '"); !strings.HasPrefix(got, "/proc/self/exe container-entry ") {
		t.Errorf("init: true's PID 1 is %q", got)
	}
	if got := inside(t, e, "plain", "echo hi"); strings.TrimSpace(got) != "hi" {
		t.Errorf("exec through the helper's shim: %q", got)
	}
	// A second up reuses the installed helper, and removes another
	// build's that nothing uses.
	stale := filepath.Join(e.run, "helper", "00000000000000aa")
	os.MkdirAll(stale, 0o700)
	os.WriteFile(filepath.Join(stale, "berth"), []byte("old"), 0o500)
	e.must("up", "-d", "--force-recreate")
	if again, _ := filepath.Glob(filepath.Join(e.run, "helper", "*", "berth")); len(again) != 1 || again[0] != helpers[0] {
		t.Errorf("helpers after a second up: %v", again)
	}
	// Name resolution goes through the DNS server (started from / too).
	if got := inside(t, e, "plain", "nslookup withinit >/dev/null && echo found"); strings.TrimSpace(got) != "found" {
		t.Errorf("plain resolving withinit: %q", got)
	}
	// Nothing is left in another state root or instance.
	e.must("down", "-t", "0")
	e.mustBeGone("leanhelper")
}
