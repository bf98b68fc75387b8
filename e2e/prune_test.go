package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
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

// TestDownRmiMustRemoveTheServicesImages: down --rmi all removes the
// images of the project's services once their containers are gone, and
// keeps one another project still runs from, with Compose's warning;
// --rmi local keeps images that image: names; a bad value changes nothing.
func TestDownRmiMustRemoveTheServicesImages(t *testing.T) {
	e := newEnv(t)
	e.must("image", "import", "--change", "LABEL rmi=1", busyboxTar, "rmitest:1")
	e.writeProject(map[string]string{
		"a.yaml": `name: rmi-a
services:
  own:
    image: rmitest:1
    command: ["sleep", "600"]
  shared:
    image: busybox
    command: ["sleep", "600"]
`,
		"b.yaml": `name: rmi-b
services:
  s:
    image: busybox
    command: ["sleep", "600"]
`})
	e.downAtEnd("rmi-a")
	e.downAtEnd("rmi-b")
	e.must("-f", "a.yaml", "up", "-d")
	e.must("-f", "b.yaml", "up", "-d")
	images := func() string {
		return strings.Join(slices.Sorted(slices.Values(strings.Fields(e.must("image", "ls", "--format", "{{.Repository}}:{{.Tag}}").stdout))), " ")
	}

	if r := e.berth("-f", "a.yaml", "down", "--rmi", "some"); r.code == 0 || !strings.Contains(r.stderr, `--rmi "some": want local or all`) {
		t.Errorf("down --rmi some: exit %d\n%s", r.code, r.stderr)
	}
	if n := len(strings.Fields(e.must("-p", "rmi-a", "ps", "-q").stdout)); n != 2 {
		t.Fatalf("a refused down changed the project: %d containers run", n)
	}
	e.must("-f", "a.yaml", "down", "-t", "1", "--rmi", "local")
	if got := images(); got != "busybox:latest rmitest:1" {
		t.Errorf("images after down --rmi local: %q", got)
	}

	e.must("-f", "a.yaml", "up", "-d")
	r := e.must("--progress", "plain", "-f", "a.yaml", "down", "-t", "1", "--rmi", "all")
	for _, want := range []string{"Image rmitest:1 Removed", "Image busybox Resource is still in use"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("down --rmi all lacks %q:\n%s", want, r.stderr)
		}
	}
	if got := images(); got != "busybox:latest" {
		t.Errorf("images after down --rmi all: %q, want the one rmi-b runs from", got)
	}
}

// TestImageRmMustKeepWhatAContainerUses: image rm of an image a container
// uses is refused naming the container; -f only untags it, and neither
// image prune -a nor system prune -a takes the image or its layers while
// the container exists: it still starts. Once it is gone, prune removes it.
func TestImageRmMustKeepWhatAContainerUses(t *testing.T) {
	e := newEnv(t)
	e.must("image", "import", "--change", "LABEL inuse=1", busyboxTar, "inuse:1")
	id := strings.TrimSpace(e.must("image", "ls", "-q", "inuse:1").stdout)
	e.writeProject(map[string]string{"compose.yaml": `name: inuse
services:
  s:
    image: inuse:1
    command: ["sleep", "600"]
`})
	e.downAtEnd("inuse")
	e.must("up", "-d")

	if r := e.berth("image", "rm", "inuse:1"); r.code != 1 || !strings.Contains(r.stderr, "inuse-s-1") {
		t.Fatalf("image rm of an image in use: %+v", r)
	}
	e.must("image", "rm", "-f", "inuse:1")
	if got := strings.TrimSpace(e.must("image", "ls", "-q", "inuse:1").stdout); got != "" {
		t.Errorf("inuse:1 still listed after rm -f: %q", got)
	}
	e.must("image", "prune", "-a")
	e.must("system", "prune", "-a", "-f")
	if r := e.must("image", "ls", "-q", "--no-trunc"); !strings.Contains(r.stdout, id) && !strings.Contains(r.stdout, strings.TrimPrefix(id, "sha256:")) {
		t.Errorf("the untagged image of a container was pruned (%s): %q", id, r.stdout)
	}
	// The container starts again from its image's layers.
	e.must("stop", "-t", "0")
	e.must("start")
	if r := e.must("exec", "-T", "s", "echo", "still-here"); r.stdout != "still-here\n" {
		t.Errorf("exec after the image was removed: %+v", r)
	}

	e.must("down", "-t", "0")
	e.must("image", "prune", "-a")
	if r := e.must("image", "ls", "-q", "--no-trunc"); strings.Contains(r.stdout, strings.TrimPrefix(id, "sha256:")) {
		t.Errorf("the image outlived its last container: %q", r.stdout)
	}
	if layers, _ := os.ReadDir(filepath.Join(e.root, "snapshot", "layers")); len(layers) != 0 {
		t.Errorf("unpacked layers left: %d", len(layers))
	}
}

// TestSystemPruneRacingAStartMustKeepOrRemoveTheWholeContainer races
// system prune -a against the start of a created container whose image
// nothing else uses: either the start wins (the container runs, with its
// image and layers kept) or the prune does (the container is gone and the
// start finds nothing to start); never a running container whose image or layers went,
// nor a failed prune.
func TestSystemPruneRacingAStartMustKeepOrRemoveTheWholeContainer(t *testing.T) {
	e := newEnv(t)
	e.writeProject(map[string]string{"compose.yaml": "name: prunerace\nservices:\n  s: {image: busybox, command: [sleep, '3600']}\n"})
	e.downAtEnd("prunerace")
	outcomes := map[string]int{}
	for i := range 4 {
		if i > 0 {
			e.must("image", "import", busyboxTar, "busybox")
		}
		e.must("create")
		var start, prune result
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); start = e.berth("start") }()
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 15 * time.Millisecond)
			prune = e.berth("system", "prune", "-a", "-f")
		}()
		wg.Wait()
		if prune.code != 0 {
			t.Fatalf("round %d: prune failed beside a start: %+v", i, prune)
		}
		names := psNames(e)
		switch {
		case start.code == 0 && names == "prunerace-s-1":
			outcomes["start first"]++
			if got := execOut(e, "s", "sh", "-c", "ls /bin/busybox && echo ok"); !strings.HasSuffix(got, "ok") {
				t.Fatalf("round %d: the started container's root: %q", i, got)
			}
			if imgs := e.must("image", "ls", "--format", "{{.Repository}}").stdout; strings.TrimSpace(imgs) != "busybox" {
				t.Fatalf("round %d: the running container's image was pruned: %q", i, imgs)
			}
			e.must("down", "-t", "0")
		case names == "":
			outcomes["prune first"]++
		default:
			t.Fatalf("round %d: start %+v, prune %+v, containers left %q", i, start, prune, names)
		}
	}
	t.Logf("outcomes: %v", outcomes)
}
