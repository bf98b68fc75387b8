package e2e

import (
	"strings"
	"testing"
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
