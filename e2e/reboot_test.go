package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"

	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/engine/network"
	"github.com/berth-dev/berth/internal/netnstest"
	"github.com/berth-dev/berth/netdns"
)

// simulateReboot does to one env what a reboot does to the host: every
// process, mount, link, nftables table and cgroup of it is gone, and so is
// $BERTH_RUN; $BERTH_ROOT stays as it was.
func simulateReboot(t *testing.T, e *env) {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(e.root, "containers", "*", "status.json"))
	for _, p := range dirs {
		var st struct {
			State   string `json:"state"`
			Pid     int    `json:"pid"`
			ShimPid int    `json:"shim_pid"`
		}
		if b, err := os.ReadFile(p); err != nil || json.Unmarshal(b, &st) != nil {
			continue
		}
		if st.State != "running" && st.State != "paused" && st.State != "restarting" {
			// A stopped container's pids are stale (another process's by
			// now), and its pid is 0: kill(0) would end the test's own
			// process group.
			continue
		}
		for _, pid := range []int{st.ShimPid, st.Pid} {
			if pid > 0 {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	if st, err := netdns.ServerStatus(context.Background(), filepath.Join(e.run, "dns")); err == nil {
		syscall.Kill(st.Pid, syscall.SIGKILL)
	}
	time.Sleep(300 * time.Millisecond)
	// Mounts, deepest first.
	var mounts []string
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], e.run) {
				mounts = append(mounts, f[4])
			}
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(mounts)))
	for _, m := range mounts {
		syscall.Unmount(m, syscall.MNT_DETACH)
	}
	// Bridges and the table of this env, in its namespace; a dirty host's
	// own firewall forgets Berth's accepts too.
	inst := engine.Instance(e.root)
	wipe := func() error {
		nets, _ := filepath.Glob(filepath.Join(e.root, "network", "networks", "*.json"))
		for _, p := range nets {
			var n struct {
				Network struct{ Bridge string } `json:"network"`
			}
			if b, err := os.ReadFile(p); err == nil && json.Unmarshal(b, &n) == nil && n.Network.Bridge != "" {
				if l, err := netlink.LinkByName(n.Network.Bridge); err == nil {
					netlink.LinkDel(l)
				}
			}
		}
		c, err := nftables.New()
		if err != nil {
			return err
		}
		c.DelTable(&nftables.Table{Name: inst, Family: nftables.TableFamilyINet})
		c.Flush()
		return nil
	}
	if e.netns != "" {
		if err := netnstest.Run(e.netns, wipe); err != nil {
			t.Fatal(err)
		}
		inNamespace(t, e.netns, "iptables-nft", "-F", "FORWARD")
		inNamespace(t, e.netns, "iptables-nft", "-I", "FORWARD", "1", "-j", "DOCKER-USER")
		inNamespace(t, e.netns, "ip6tables-nft", "-F", "FORWARD")
		inNamespace(t, e.netns, "iptables-legacy", "-F", "FORWARD")
		inNamespace(t, e.netns, "nft", "flush chain inet filter forward")
	} else if err := wipe(); err != nil {
		t.Fatal(err)
	}
	detachSockHooks(t)
	cgs, _ := filepath.Glob("/sys/fs/cgroup/*/" + inst + "/*")
	cgs2, _ := filepath.Glob("/sys/fs/cgroup/" + inst + "/*")
	for _, d := range append(cgs, cgs2...) {
		os.Remove(d)
	}
	parents, _ := filepath.Glob("/sys/fs/cgroup/*/" + inst)
	for _, d := range append(parents, "/sys/fs/cgroup/"+inst) {
		os.Remove(d)
	}
	if err := os.RemoveAll(e.run); err != nil {
		t.Fatalf("wipe run dir: %v", err)
	}
}

// TestUpAfterARebootMustBringTheStackBack: after a reboot the containers
// show as exited, and up -d starts them again on re-created networks.
func TestUpAfterARebootMustBringTheStackBack(t *testing.T) {
	e := newEnv(t)
	port := itoa(freePort(t))
	e.writeProject(map[string]string{"compose.yaml": `
name: boot
services:
  web:
    image: busybox
    command: ["sh", "-c", "echo up > /www; httpd -f -p 80 -h /"]
    ports: ["127.0.0.1:` + port + `:80"]
  client:
    image: busybox
    command: ["sleep", "3600"]
    depends_on: [web]
`})
	e.downAtEnd("boot")
	e.must("up", "-d")
	objs, _ := network.SockLBObjects()
	hooksBefore := len(objs)
	simulateReboot(t, e)
	if left := sockHooksLeft(nil); len(left) != 0 {
		t.Fatalf("socket hooks left by the simulated reboot: %v", left)
	}

	ps := e.must("ps", "-a", "--format", "json").stdout
	if strings.Contains(ps, `"State":"running"`) {
		t.Fatalf("containers still shown running after a reboot:\n%s", ps)
	}
	e.must("up", "-d")
	if n := strings.Count(e.must("ps", "--format", "json").stdout, `"State":"running"`); n != 2 {
		t.Fatalf("%d running after up", n)
	}
	if r := e.berth("exec", "-T", "client", "timeout", "10", "wget", "-q", "-O", "-", "http://web/www"); r.code != 0 || !strings.Contains(r.stdout, "up") {
		if e.netns != "" {
			t.Logf("the dirty host:\n%s", hostState(t, e.netns))
		}
		t.Fatalf("client cannot reach web by name after the reboot: %+v", r)
	}
	// The published port's socket hooks are back, and a host client
	// reaches it.
	if objs, _ := network.SockLBObjects(); hooksBefore > 0 && len(objs) == 0 {
		t.Errorf("no socket hooks after up on a host that had them before the reboot")
	}
	if body, err := httpGetIn(e.netns, "127.0.0.1:"+port, "/www"); err != nil || !strings.Contains(body, "up") {
		t.Errorf("host client after the reboot: %q %v", body, err)
	}
	e.must("down", "-t", "1")
	e.mustBeGone("boot")
}

// TestSystemBootAfterARebootMustBringBackRestartingContainers: berth
// system boot (what the systemd unit runs) starts, in every project, the
// containers Docker's daemon would restart, on re-created networks; a ps
// racing it after the reboot is safe; a second boot changes nothing.
func TestSystemBootAfterARebootMustBringBackRestartingContainers(t *testing.T) {
	e := newEnv(t)
	e.useTestdata()
	e.downAtEnd("bootrs")
	e.downAtEnd("bootrs2")
	e.must("up", "-d")
	e.must("-f", "other/compose.yaml", "up", "-d")
	e.must("stop", "-t", "0", "halted", "haltedalways")
	simulateReboot(t, e)

	// ps, many at once, racing the boot: each recovers or shows, under
	// the containers' locks, and none fails.
	results := make(chan result, 5)
	go func() { results <- e.berth("system", "boot") }()
	for range 4 {
		go func() { results <- e.berth("ps", "-a", "--format", "json") }()
	}
	var boot result
	for range 5 {
		r := <-results
		if r.code != 0 {
			t.Fatalf("racing after the reboot: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		if !strings.HasPrefix(r.stdout, "{") {
			boot = r
		}
	}
	started := strings.Fields(boot.stdout)
	slices.Sort(started)
	if want := []string{"bootrs-client-1", "bootrs-haltedalways-1", "bootrs-web-1", "bootrs2-solo-1"}; !slices.Equal(started, want) {
		t.Errorf("boot started %v, want %v", started, want)
	}
	for svc, want := range map[string]string{"web": "running", "client": "running", "haltedalways": "running", "halted": "exited", "plain": "exited", "onfailure": "exited"} {
		if got := psRows(t, e)[svc].State; got != want {
			t.Errorf("%s is %s after boot, want %s", svc, got, want)
		}
	}
	if got := psRows(t, e, "-f", "other/compose.yaml")["solo"].State; got != "running" {
		t.Errorf("the other project's solo is %s after boot", got)
	}
	if r := e.berth("exec", "-T", "client", "wget", "-q", "-O", "-", "http://web/www"); r.code != 0 || !strings.Contains(r.stdout, "up") {
		t.Fatalf("client cannot reach web by name after the boot: %+v", r)
	}
	if r := e.must("system", "boot"); r.stdout != "" {
		t.Errorf("a second boot started %q", r.stdout)
	}
	e.must("down", "-t", "0")
	e.must("-f", "other/compose.yaml", "down", "-t", "0")
	e.mustBeGone("bootrs")
	e.mustBeGone("bootrs2")
}
