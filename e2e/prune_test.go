package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestSystemPruneMustRemoveOnlyWhatNothingUses: system prune removes
// stopped containers (of every project), the networks left without
// containers, anonymous volumes (--volumes) and, with -a, every image no
// container uses once those containers are gone; a running project keeps
// its containers, network and image. ps shows exposed ports (the
// service's and the image's EXPOSE) as Docker does.
func TestSystemPruneMustRemoveOnlyWhatNothingUses(t *testing.T) {
	e := newEnv(t)
	e.must("image", "import", "--change", "EXPOSE 9000/udp", busyboxTar, "exposing:1")
	e.must("image", "import", "--change", "LABEL spare=1", busyboxTar, "spare:1")
	e.writeProject(map[string]string{
		"live.yaml": `name: pruned-live
services:
  up:
    image: exposing:1
    command: ["sleep", "600"]
    expose: ["8080"]
  done:
    image: busybox
    command: ["true"]
`,
		"stopped.yaml": `name: pruned-stopped
services:
  s:
    image: busybox
    command: ["sleep", "600"]
    volumes: ["/anon"]
`})
	e.downAtEnd("pruned-live")
	e.downAtEnd("pruned-stopped")
	e.must("-f", "live.yaml", "up", "-d")
	e.must("-f", "stopped.yaml", "up", "-d")
	e.must("-f", "stopped.yaml", "stop", "-t", "1")
	eventually(t, 20*time.Second, func() error {
		if r := e.must("-p", "pruned-live", "ps", "-a", "--format", "{{.Service}} {{.State}}").stdout; !strings.Contains(r, "done exited") {
			return fmt.Errorf("ps: %q", r)
		}
		return nil
	})
	if got := strings.TrimSpace(e.must("-p", "pruned-live", "ps", "--format", "{{.Ports}}", "up").stdout); got != "8080/tcp, 9000/udp" {
		t.Errorf("ps ports %q, want the service's and the image's exposed ports", got)
	}

	r := e.must("system", "prune", "-a", "--volumes", "-f")
	for _, want := range []string{"Deleted Containers:", "Deleted Networks:\npruned-stopped_default\n", "Deleted Volumes:", "Deleted Images:", "untagged: spare:1", "untagged: busybox"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("system prune output lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "pruned-live_default") {
		t.Errorf("the running project's network was removed:\n%s", r.stdout)
	}
	if got := strings.TrimSpace(e.must("-p", "pruned-live", "ps", "-a", "--format", "{{.Service}} {{.State}}").stdout); got != "up running" {
		t.Errorf("pruned-live after prune: %q, want only the running container", got)
	}
	if got := strings.TrimSpace(e.must("-p", "pruned-stopped", "ps", "-a", "-q").stdout); got != "" {
		t.Errorf("stopped containers left: %q", got)
	}
	if got := strings.TrimSpace(e.must("volume", "ls", "-q").stdout); got != "" {
		t.Errorf("volumes left: %q", got)
	}
	if got := strings.TrimSpace(e.must("image", "ls", "--format", "{{.Repository}}:{{.Tag}}").stdout); got != "exposing:1" {
		t.Errorf("images left: %q, want only the one a running container uses", got)
	}
	e.must("-f", "live.yaml", "exec", "-T", "up", "true")
}
