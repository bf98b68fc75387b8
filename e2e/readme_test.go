package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadmeTourMustRun runs every command of the README's tour, in order,
// in a copy of examples/hello, with "berth" being the binary under test.
func TestReadmeTourMustRun(t *testing.T) {
	e := newEnv(t)
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	tour := tourCommands(string(readme))
	if len(tour) < 8 {
		t.Fatalf("found only %d tour commands in README.md", len(tour))
	}
	// A copy of the example, with berth on PATH.
	src, _ := filepath.Abs("../examples/hello")
	if out, err := exec.Command("cp", "-r", src+"/.", e.dir).CombinedOutput(); err != nil {
		t.Fatalf("copy example: %v %s", err, out)
	}
	bin := filepath.Join(filepath.Dir(e.root), "bin")
	os.MkdirAll(bin, 0o755)
	os.Symlink(berthBin, filepath.Join(bin, "berth"))
	e.downAtEnd("hello")
	port := freePort(t)
	for _, line := range tour {
		c := exec.Command("sh", "-c", line)
		c.Dir = e.dir
		c.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "BERTH_ROOT="+e.root, "BERTH_RUN="+e.run,
			"BERTH_DNS_UPSTREAMS=none", fmt.Sprintf("HELLO_PORT=%d", port))
		if strings.HasPrefix(line, "go run") {
			// The module root holds go.mod; the example's package is below it.
			c.Dir, _ = filepath.Abs("../examples/hello")
			c.Args[2] = strings.Replace(line, "busybox.tar", filepath.Join(e.dir, "busybox.tar"), 1)
		}
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("README command %q: %v\n%s", line, err, out)
		}
		if strings.Contains(line, "cat /www/index.html") && !strings.Contains(string(out), "hello from berth") {
			t.Errorf("%q printed %q", line, out)
		}
	}
}

// tourCommands returns the command lines of the README's "A short tour"
// block, without their comments.
func tourCommands(readme string) []string {
	_, after, ok := strings.Cut(readme, "## A short tour")
	if !ok {
		return nil
	}
	_, block, _ := strings.Cut(after, "```sh\n")
	block, _, _ = strings.Cut(block, "```")
	var out []string
	sc := bufio.NewScanner(strings.NewReader(block))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), " #")
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out
}
