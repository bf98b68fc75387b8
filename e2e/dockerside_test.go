package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// dockerSide is a Docker daemon that the network benchmarks measure beside
// Berth, in the same run and alternately, when one answers `docker info`
// (bench/docker-side.sh starts one for a run and restores the host after
// it). CI installs no Docker, so there the benchmarks measure Berth alone.
type dockerSide struct {
	b     *testing.B
	image string
}

// newDockerSide imports the suite's busybox image into the Docker daemon
// that answers, or returns nil (and says so) when none does.
func newDockerSide(b *testing.B) *dockerSide {
	b.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		b.Log("Docker side skipped: no docker client")
		return nil
	}
	if out, err := exec.Command("docker", "info").CombinedOutput(); err != nil {
		b.Logf("Docker side skipped: no daemon answers docker info (%v: %s)", err, lastLine(string(out)))
		return nil
	}
	d := &dockerSide{b: b, image: "berth-bench/busybox"}
	d.must("import", busyboxTar, d.image)
	b.Cleanup(func() { d.docker("rmi", d.image) })
	return d
}

// docker runs the Docker client, returning its output and error.
func (d *dockerSide) docker(args ...string) (string, error) {
	out, err := exec.Command("docker", args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// must runs the Docker client and fails the benchmark if it fails.
func (d *dockerSide) must(args ...string) string {
	d.b.Helper()
	out, err := d.docker(args...)
	if err != nil {
		d.b.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// network creates a user-defined bridge network (removed at the end).
func (d *dockerSide) network(name string, args ...string) {
	d.b.Helper()
	d.must(append([]string{"network", "create"}, append(args, name)...)...)
	d.b.Cleanup(func() { d.docker("network", "rm", name) })
}

// sleeper starts a container of the busybox image that sleeps, with the
// flags given (removed at the end), and returns its network namespace.
func (d *dockerSide) sleeper(name string, flags ...string) string {
	d.b.Helper()
	args := append([]string{"run", "-d", "--name", name}, flags...)
	d.must(append(args, d.image, "sleep", "3600")...)
	d.b.Cleanup(func() { d.docker("rm", "-f", "-v", name) })
	return "/proc/" + d.must("inspect", "-f", "{{.State.Pid}}", name) + "/ns/net"
}

// daemonPid is the pid of the one dockerd running (whose embedded DNS
// server answers the containers), or 0 if there is not exactly one.
func (d *dockerSide) daemonPid() int {
	comms, _ := filepath.Glob("/proc/[0-9]*/comm")
	pid := 0
	for _, c := range comms {
		if b, err := os.ReadFile(c); err == nil && strings.TrimSpace(string(b)) == "dockerd" {
			if pid != 0 {
				return 0
			}
			pid, _ = strconv.Atoi(filepath.Base(filepath.Dir(c)))
		}
	}
	return pid
}

// lastLine is the last line of s (where docker info says why it failed,
// after the client's own part).
func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndex(s, "\n")+1:]
}
