package e2e

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDNSMustScopeNamesToTheAskersNetworks runs two projects in one Berth:
// each resolves its own services by name, container name and alias, and
// cannot see the other project's.
func TestDNSMustScopeNamesToTheAskersNetworks(t *testing.T) {
	e := newEnv(t)
	project := func(name string) string {
		return `
name: ` + name + `
services:
  app:
    image: busybox
    command: ["sleep", "3600"]
    networks:
      default:
        aliases: ["` + name + `-alias"]
`
	}
	e.writeProject(map[string]string{"one/compose.yaml": project("one"), "two/compose.yaml": project("two")})
	e.downAtEnd("one")
	e.downAtEnd("two")
	e.must("-f", "one/compose.yaml", "up", "-d")
	e.must("-f", "two/compose.yaml", "up", "-d")

	lookup := func(from, name string) result {
		return e.berth("-f", from+"/compose.yaml", "exec", "-T", "app", "nslookup", name)
	}
	for _, name := range []string{"app", "one-app-1", "one-alias"} {
		if r := lookup("one", name); r.code != 0 || !strings.Contains(r.stdout, "Address") {
			t.Errorf("one cannot resolve %s: %+v", name, r)
		}
	}
	if r := lookup("one", "two-app-1"); r.code == 0 && strings.Contains(r.stdout, "Name:") {
		t.Errorf("one resolved two's container: %s", r.stdout)
	}
	if r := lookup("two", "one-alias"); r.code == 0 && strings.Contains(r.stdout, "Name:") {
		t.Errorf("two resolved one's alias: %s", r.stdout)
	}
	// /etc/hosts carries the container's own name.
	if r := e.berth("-f", "one/compose.yaml", "exec", "-T", "app", "cat", "/etc/hosts"); !strings.Contains(r.stdout, "127.0.0.1") {
		t.Errorf("/etc/hosts: %q", r.stdout)
	}
}

// TestKilledDNSServerMustComeBack kills the DNS server; the shims of the
// running containers start a new one before a resolver would give up.
func TestKilledDNSServerMustComeBack(t *testing.T) {
	e := newEnv(t)
	e.writeProject(map[string]string{"compose.yaml": `
name: dnskill
services:
  a:
    image: busybox
    command: ["sleep", "3600"]
`})
	e.downAtEnd("dnskill")
	e.must("up", "-d")
	pid := e.dnsPid()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The very first lookup after the kill must succeed: while no server
	// runs, queries are dropped rather than refused, so the resolver
	// retries, and the shims start a new server at once.
	killed := time.Now()
	if r := e.berth("exec", "-T", "a", "nslookup", "a"); r.code != 0 || !strings.Contains(r.stdout, "Address") {
		t.Fatalf("lookup right after the kill: %+v", r)
	}
	t.Logf("first lookup after the kill answered in %v", time.Since(killed).Round(10*time.Millisecond))
	if again := e.dnsPid(); again == pid {
		t.Fatalf("the same pid %d still serves", pid)
	}
}

// TestNetworkPoolMustBeHonoured: BERTH_NETWORK_POOL decides where subnets
// come from.
func TestNetworkPoolMustBeHonoured(t *testing.T) {
	t.Setenv("BERTH_NETWORK_POOL", "10.234.0.0/16/28")
	e := newEnv(t)
	e.writeProject(map[string]string{"compose.yaml": `
name: pool
services:
  a:
    image: busybox
    command: ["sleep", "3600"]
`})
	e.downAtEnd("pool")
	e.must("up", "-d")
	r := e.must("exec", "-T", "a", "ip", "-4", "-o", "addr", "show", "eth0")
	if !strings.Contains(r.stdout, "inet 10.234.") || !strings.Contains(r.stdout, "/28") {
		t.Fatalf("address not from the pool: %q", r.stdout)
	}
}

// TestReplicasMustShareTheServiceName: two replicas get numbered names and
// the service name resolves to both of them.
func TestReplicasMustShareTheServiceName(t *testing.T) {
	e := newEnv(t)
	e.writeProject(map[string]string{"compose.yaml": `
name: reps
services:
  web:
    image: busybox
    command: ["sleep", "3600"]
    deploy:
      replicas: 2
  probe:
    image: busybox
    command: ["sleep", "3600"]
`})
	e.downAtEnd("reps")
	e.must("up", "-d")
	ps := e.must("ps", "--format", "json").stdout
	for _, name := range []string{"reps-web-1", "reps-web-2", "reps-probe-1"} {
		if !strings.Contains(ps, `"Name":"`+name+`"`) {
			t.Fatalf("%s missing:\n%s", name, ps)
		}
	}
	r := e.must("exec", "-T", "probe", "nslookup", "web")
	if n := strings.Count(r.stdout, "Address: 10.") + strings.Count(r.stdout, "Address 1: 10.") + strings.Count(r.stdout, "Address 2: 10."); n != 2 {
		t.Fatalf("web resolves to %d addresses, want 2:\n%s", n, r.stdout)
	}
}

// TestConcurrentUpsMustNotRace: two up -d of one project at once both
// succeed and leave exactly one container per service.
func TestConcurrentUpsMustNotRace(t *testing.T) {
	e := newEnv(t)
	e.writeProject(map[string]string{"compose.yaml": fiveServices})
	e.downAtEnd("crash")
	results := make(chan result, 2)
	for range 2 {
		go func() { results <- e.berth("up", "-d") }()
	}
	for range 2 {
		if r := <-results; r.code != 0 {
			t.Fatalf("concurrent up failed: %s", r.stderr)
		}
	}
	ids := strings.Fields(e.must("ps", "-q").stdout)
	if len(ids) != 5 {
		t.Fatalf("%d containers running, want 5", len(ids))
	}
}
