package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// firewalld is a firewalld of a test's own: a private system bus and the
// daemon (nftables backend) running in a dirty host's network namespace,
// where it acts on that namespace only; its configuration is a copy of the
// host's /etc/firewalld.
type firewalld struct {
	t        testing.TB
	dir, bus string
	netns    string
	cmd      *exec.Cmd
}

// startFirewalld starts the bus and firewalld for the env's dirty host and
// points the env's berth commands at the bus. Everything stops with the test.
func startFirewalld(t *testing.T, e *env) *firewalld {
	t.Helper()
	for _, tool := range []string{"firewalld", "firewall-cmd", "dbus-daemon", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (apt-get install firewalld)", tool)
		}
	}
	dir := t.TempDir()
	f := &firewalld{t: t, dir: dir, bus: "unix:path=" + filepath.Join(dir, "bus"), netns: e.netns}
	conf := `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>` + f.bus + `</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_type="method_return"/>
    <allow send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="signal"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
  </policy>
</busconfig>
`
	if err := os.WriteFile(filepath.Join(dir, "bus.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	bus := exec.Command("dbus-daemon", "--config-file="+filepath.Join(dir, "bus.conf"), "--nofork", "--nopidfile")
	if err := bus.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus.Process.Kill(); bus.Wait() })
	if out, err := exec.Command("cp", "-r", "/etc/firewalld", filepath.Join(dir, "etc")).CombinedOutput(); err != nil {
		t.Fatalf("copy /etc/firewalld: %v: %s", err, out)
	}
	f.start()
	t.Cleanup(f.stop)
	e.environ = append(e.environ, "DBUS_SYSTEM_BUS_ADDRESS="+f.bus)
	return f
}

func (f *firewalld) start() {
	f.t.Helper()
	log, err := os.OpenFile(filepath.Join(f.dir, "firewalld.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		f.t.Fatal(err)
	}
	defer log.Close()
	f.cmd = exec.Command("nsenter", "--net="+f.netns, "--", "firewalld", "--nofork", "--nopid",
		"--system-config", filepath.Join(f.dir, "etc"), "--log-target", "console")
	f.cmd.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+f.bus)
	f.cmd.Stdout, f.cmd.Stderr = log, log
	if err := f.cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _ := f.try("--state")
		if strings.TrimSpace(out) == "running" {
			return
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(f.dir, "firewalld.log"))
			f.t.Fatalf("firewalld did not start: %s\n%s", out, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (f *firewalld) stop() {
	if f.cmd != nil {
		f.cmd.Process.Kill()
		f.cmd.Wait()
		f.cmd = nil
	}
}

func (f *firewalld) try(args ...string) (string, error) {
	c := exec.Command("firewall-cmd", args...)
	c.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+f.bus)
	out, err := c.CombinedOutput()
	return string(out), err
}

func (f *firewalld) must(args ...string) string {
	f.t.Helper()
	out, err := f.try(args...)
	if err != nil {
		f.t.Fatalf("firewall-cmd %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return out
}

// trusted lists the Berth bridges bound to the trusted zone.
func (f *firewalld) trusted() []string {
	f.t.Helper()
	var out []string
	for _, i := range strings.Fields(f.must("--zone=trusted", "--list-interfaces")) {
		if strings.HasPrefix(i, "berth-") {
			out = append(out, i)
		}
	}
	return out
}

// With firewalld running (its forward chain rejects what enters from an
// interface in no accepting zone), each network's bridge joins the trusted
// zone: containers reach the outside and published ports are reached from
// it. A binding lost to a reload or a restart of firewalld comes back by
// itself; one removed by hand comes back with the next container start; all
// go with down.
func TestFirewalldTrustsBerthBridges(t *testing.T) {
	e := newEnv(t)
	if e.netns == "" {
		e.netns, e.outside = dirtyHost(t)
	}
	fw := startFirewalld(t, e)
	port := itoa(freePort(t))
	e.writeProject(map[string]string{"compose.yaml": `
name: fwd
services:
  web:
    image: busybox
    command: ["sh", "-c", "echo hello from web > /www; httpd -f -p 80 -h /"]
    ports: ["` + port + `:80"]
  client:
    image: busybox
    command: ["sleep", "3600"]
`})
	e.downAtEnd("fwd")
	e.must("up", "-d")

	bridges := fw.trusted()
	if len(bridges) != 1 {
		t.Fatalf("trusted zone's Berth bridges after up: %v, want the project's one", bridges)
	}
	outside := func() error {
		r := e.berth("exec", "-T", "client", "timeout", "5", "wget", "-q", "-O", "-", "http://"+outsideIP+":"+outsideHTTP+"/")
		if r.code != 0 || !strings.Contains(r.stdout, "outside") {
			return fmt.Errorf("container cannot reach the outside: %+v", r)
		}
		return nil
	}
	check := func(when string) {
		t.Helper()
		if err := outside(); err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		eventually(t, 10*time.Second, func() error {
			body, err := httpGetIn(e.outside, net.JoinHostPort(uplinkIP, port), "/www")
			if err == nil && !strings.Contains(body, "hello from web") {
				err = fmt.Errorf("body %q", body)
			}
			if err != nil {
				return fmt.Errorf("%s: published port from the outside: %w", when, err)
			}
			return nil
		})
	}
	waitTrusted := func(when string) {
		t.Helper()
		eventually(t, 20*time.Second, func() error {
			if got := fw.trusted(); !slices.Equal(got, bridges) {
				return fmt.Errorf("%s: trusted zone's Berth bridges %v, want %v", when, got, bridges)
			}
			return nil
		})
	}
	check("after up")

	// The control: out of the zone, firewalld rejects the container's
	// traffic. The next container start puts the bridge back, as after a
	// reboot.
	fw.must("--zone=trusted", "--remove-interface="+bridges[0])
	if err := outside(); err == nil {
		t.Fatal("the container reached the outside with its bridge in no zone: firewalld is not in the way, the test proves nothing")
	}
	e.must("restart", "-t", "1", "client")
	waitTrusted("after a container start")
	check("after a container start")

	// A reload drops firewalld's runtime configuration; the instance's
	// DNS server hears of it and binds the bridge again.
	fw.must("--reload")
	waitTrusted("after firewall-cmd --reload")
	check("after firewall-cmd --reload")

	// So does a firewalld that starts while containers run.
	fw.stop()
	fw.start()
	waitTrusted("after firewalld restarted")
	check("after firewalld restarted")

	e.must("down", "-t", "1")
	if got := fw.trusted(); len(got) != 0 {
		t.Errorf("Berth bridges left in the trusted zone after down: %v", got)
	}
	if leaks := nsLeaks(t, e.netns); len(leaks) > 0 {
		t.Fatalf("left in the host after down: %v", leaks)
	}
}
