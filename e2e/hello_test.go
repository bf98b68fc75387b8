package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHelloExampleMustServeAndResolveByName brings up examples/hello: the
// page through the published port, the client reaching web by its service
// name through Berth's DNS, prefixed logs, and a down that leaves nothing.
func TestHelloExampleMustServeAndResolveByName(t *testing.T) {
	e := newEnv(t)
	port := freePort(t)
	example, _ := filepath.Abs("../examples/hello/compose.yaml")
	t.Setenv("HELLO_PORT", fmt.Sprint(port))
	e.downAtEnd("hello")

	e.must("-f", example, "up", "-d")

	ps := e.must("-f", example, "ps", "--format", "json")
	var running []string
	for _, line := range strings.Split(strings.TrimSpace(ps.stdout), "\n") {
		var row struct{ Name, State string }
		if err := json.Unmarshal([]byte(line), &row); err != nil {
			t.Fatalf("ps json %q: %v", line, err)
		}
		if row.State == "running" {
			running = append(running, row.Name)
		}
	}
	if strings.Join(running, ",") != "hello-client-1,hello-web-1" {
		t.Fatalf("running containers %v", running)
	}

	eventually(t, 10*time.Second, func() error {
		body, err := e.httpGet(fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			return err
		}
		if !strings.Contains(body, "hello from berth") {
			return fmt.Errorf("page %q", body)
		}
		return nil
	})

	// The client fetches http://web/ by name: only DNS makes that work.
	eventually(t, 15*time.Second, func() error {
		r := e.must("-f", example, "logs", "--no-color", "client")
		if !strings.Contains(r.stdout, "client-1  | hello from berth") {
			return fmt.Errorf("client log:\n%s", r.stdout)
		}
		return nil
	})

	e.must("-f", example, "down", "-t", "1")
	e.mustBeGone("hello")
}

// TestUpTwiceMustLeaveRunningContainersAlone checks that up is idempotent
// and that a changed service is recreated while others stay.
func TestUpTwiceMustLeaveRunningContainersAlone(t *testing.T) {
	e := newEnv(t)
	e.writeProject(map[string]string{"compose.yaml": `
name: twice
services:
  a:
    image: busybox
    command: ["sleep", "3600"]
  b:
    image: busybox
    command: ["sleep", "3600"]
`})
	e.downAtEnd("twice")
	e.must("up", "-d")
	first := e.must("ps", "-q").stdout
	second := e.must("up", "-d")
	if strings.Contains(second.stderr, "Created") || strings.Contains(second.stderr, "Started") {
		t.Fatalf("second up changed something:\n%s", second.stderr)
	}
	if again := e.must("ps", "-q").stdout; again != first {
		t.Fatalf("container IDs changed: %q -> %q", first, again)
	}

	// Change b only: b is recreated, a keeps its container.
	e.writeProject(map[string]string{"compose.yaml": `
name: twice
services:
  a:
    image: busybox
    command: ["sleep", "3600"]
  b:
    image: busybox
    command: ["sleep", "3601"]
`})
	r := e.must("up", "-d")
	if !strings.Contains(r.stderr, "twice-b-1 Recreated") || strings.Contains(r.stderr, "twice-a-1 Recreated") {
		t.Fatalf("recreate output:\n%s", r.stderr)
	}
}

// TestVolumesMustSurviveDownWithoutV checks that data in a named volume
// outlives down and that down -v removes it.
func TestVolumesMustSurviveDownWithoutV(t *testing.T) {
	e := newEnv(t)
	e.writeProject(map[string]string{"compose.yaml": `
name: vols
services:
  w:
    image: busybox
    command: ["sh", "-c", "cat /data/x 2>/dev/null || echo none; echo kept > /data/x; sleep 3600"]
    volumes: ["data:/data", "./bind:/bind:ro"]
volumes:
  data: {}
`})
	e.downAtEnd("vols")
	os.MkdirAll(filepath.Join(e.dir, "bind"), 0o755)
	os.WriteFile(filepath.Join(e.dir, "bind", "f"), []byte("from host"), 0o644)
	e.must("up", "-d")
	if code := e.berth("exec", "-T", "w", "cat", "/bind/f"); code.code != 0 || code.stdout != "from host" {
		t.Fatalf("bind mount: %+v", code)
	}
	if r := e.berth("exec", "-T", "w", "sh", "-c", "echo x > /bind/g"); r.code == 0 {
		t.Fatalf("write to a :ro bind mount succeeded")
	}
	eventually(t, 10*time.Second, func() error {
		if r := e.must("logs", "w"); !strings.Contains(r.stdout, "none") {
			return fmt.Errorf("log %q", r.stdout)
		}
		return nil
	})
	e.must("down", "-t", "1")
	e.must("up", "-d")
	eventually(t, 10*time.Second, func() error {
		if r := e.must("logs", "w"); !strings.Contains(r.stdout, "kept") {
			return fmt.Errorf("volume lost its data: %q", r.stdout)
		}
		return nil
	})
	e.must("down", "-v", "-t", "1")
	if _, err := os.Stat(filepath.Join(e.root, "volumes", "vols_data")); !os.IsNotExist(err) {
		t.Fatalf("down -v left the volume: %v", err)
	}
}

// TestExecMustPassTheExitCode checks exec -T and its exit code.
func TestExecMustPassTheExitCode(t *testing.T) {
	e := newEnv(t)
	e.writeProject(map[string]string{"compose.yaml": `
name: ex
services:
  s:
    image: busybox
    command: ["sleep", "3600"]
    environment:
      GREETING: hi
`})
	e.downAtEnd("ex")
	e.must("up", "-d")
	r := e.berth("exec", "-T", "s", "sh", "-c", "echo $GREETING; exit 7")
	if r.code != 7 || strings.TrimSpace(r.stdout) != "hi" {
		t.Fatalf("exec: %+v", r)
	}
	e.must("stop", "-t", "1")
	if r := e.must("ps", "-a", "--format", "json"); !strings.Contains(r.stdout, `"State":"exited"`) {
		t.Fatalf("after stop: %s", r.stdout)
	}
	e.must("start")
	if r := e.must("ps", "--format", "json"); !strings.Contains(r.stdout, `"State":"running"`) {
		t.Fatalf("after start: %s", r.stdout)
	}
	e.must("rm", "-s", "-f")
	if r := e.must("ps", "-a", "-q"); strings.TrimSpace(r.stdout) != "" {
		t.Fatalf("after rm: %q", r.stdout)
	}
}

// TestRestartPolicyMustRestartUntilStopped: on-failure:N gives up after N
// restarts; always keeps going until berth stop.
func TestRestartPolicyMustRestartUntilStopped(t *testing.T) {
	e := newEnv(t)
	e.writeProject(map[string]string{"compose.yaml": `
name: restarts
services:
  flaky:
    image: busybox
    command: ["sh", "-c", "echo attempt; exit 2"]
    restart: on-failure:2
  forever:
    image: busybox
    command: ["sh", "-c", "echo round; sleep 0.1"]
    restart: always
`})
	e.downAtEnd("restarts")
	e.must("up", "-d")
	eventually(t, 20*time.Second, func() error {
		r := e.must("ps", "-a", "--format", "json", "flaky")
		if !strings.Contains(r.stdout, `"State":"exited"`) || !strings.Contains(r.stdout, `"ExitCode":2`) {
			return fmt.Errorf("flaky: %s", r.stdout)
		}
		if n := strings.Count(e.must("logs", "flaky").stdout, "attempt"); n != 3 {
			return fmt.Errorf("flaky ran %d times, want 3", n)
		}
		return nil
	})
	eventually(t, 20*time.Second, func() error {
		if n := strings.Count(e.must("logs", "forever").stdout, "round"); n < 3 {
			return fmt.Errorf("forever ran %d times", n)
		}
		return nil
	})
	e.must("stop", "-t", "1", "forever")
	if r := e.must("ps", "-a", "--format", "json", "forever"); !strings.Contains(r.stdout, `"State":"exited"`) {
		t.Fatalf("forever after stop: %s", r.stdout)
	}
	n := strings.Count(e.must("logs", "forever").stdout, "round")
	time.Sleep(500 * time.Millisecond)
	if m := strings.Count(e.must("logs", "forever").stdout, "round"); m != n {
		t.Fatalf("restarted after stop: %d -> %d", n, m)
	}
}

// TestCompletedDependencyMustGateTheStart: a service that depends on a job
// with service_completed_successfully starts after the job exits 0, and up
// fails, naming the job, when it does not.
func TestCompletedDependencyMustGateTheStart(t *testing.T) {
	e := newEnv(t)
	project := func(code int) string {
		return fmt.Sprintf(`
name: jobs
services:
  migrate:
    image: busybox
    command: ["sh", "-c", "sleep 0.3; echo migrated > /data/done; exit %d"]
    volumes: ["data:/data"]
  app:
    image: busybox
    command: ["sh", "-c", "cat /data/done; sleep 3600"]
    volumes: ["data:/data"]
    depends_on:
      migrate:
        condition: service_completed_successfully
volumes:
  data: {}
`, code)
	}
	e.writeProject(map[string]string{"compose.yaml": project(0)})
	e.downAtEnd("jobs")
	e.must("up", "-d")
	eventually(t, 10*time.Second, func() error {
		if r := e.must("logs", "app"); !strings.Contains(r.stdout, "migrated") {
			return fmt.Errorf("app started before the job finished: %q", r.stdout)
		}
		return nil
	})
	e.must("down", "-v", "-t", "1")

	e.writeProject(map[string]string{"compose.yaml": project(3)})
	r := e.berth("up", "-d")
	if r.code == 0 || !strings.Contains(r.stderr, "jobs-migrate-1 did not complete successfully: exit 3") {
		t.Fatalf("up with a failing job: %+v", r)
	}
	// The failed job stays, as with docker compose, so its logs can be read.
	if r := e.must("logs", "migrate"); r.code != 0 {
		t.Fatalf("logs of the failed job: %+v", r)
	}
	if r := e.must("ps", "-a", "--format", "json", "migrate"); !strings.Contains(r.stdout, `"ExitCode":3`) {
		t.Fatalf("failed job not kept: %s", r.stdout)
	}
}

// TestDownWithAnOrphanMustKeepItsNetworkAndSucceed: down without
// --remove-orphans leaves the orphan, warns that the network is in use,
// and exits 0; --remove-orphans then removes everything.
func TestDownWithAnOrphanMustKeepItsNetworkAndSucceed(t *testing.T) {
	e := newEnv(t)
	e.writeProject(map[string]string{"compose.yaml": fiveServices})
	e.downAtEnd("crash")
	e.must("up", "-d")
	e.writeProject(map[string]string{"compose.yaml": `
name: crash
services:
  s1: {image: busybox, command: ["sleep", "3600"]}
`})
	r := e.must("down", "-t", "1")
	if !strings.Contains(r.stderr, "Resource is still in use") {
		t.Fatalf("down output:\n%s", r.stderr)
	}
	if n := len(strings.Fields(e.must("-p", "crash", "ps", "-q").stdout)); n != 4 {
		t.Fatalf("%d orphans running, want 4", n)
	}
	e.must("down", "-t", "1", "--remove-orphans")
	e.mustBeGone("crash")
}

// TestUpMustRecreateWhenTheImageChanged: importing a new image under the
// same name makes the next up recreate the service's container, and only it.
func TestUpMustRecreateWhenTheImageChanged(t *testing.T) {
	e := newEnv(t)
	e.writeProject(map[string]string{"compose.yaml": `
name: img
services:
  a:
    image: busybox
    command: ["sleep", "3600"]
`})
	e.downAtEnd("img")
	e.must("up", "-d")
	before := e.must("ps", "-q").stdout
	time.Sleep(1100 * time.Millisecond) // a new import gets a new creation time, so a new ID
	e.must("image", "import", busyboxTar, "busybox")
	r := e.must("up", "-d", "-t", "1")
	if !strings.Contains(r.stderr, "img-a-1 Recreated") {
		t.Fatalf("not recreated:\n%s", r.stderr)
	}
	if after := e.must("ps", "-q").stdout; after == before {
		t.Fatalf("same container after the image changed: %s", after)
	}
	if r := e.must("up", "-d"); strings.Contains(r.stderr, "Created") {
		t.Fatalf("third up recreated again:\n%s", r.stderr)
	}
}
