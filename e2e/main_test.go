package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/busybox"
	"github.com/berth-dev/berth/netdns"
)

var (
	berthBin   string // the binary under test
	busyboxTar string // a busybox root filesystem tarball
	workDir    string // holds every test's state roots
)

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Println("e2e: skipped: needs root (real namespaces, bridges and nftables)")
		os.Exit(0)
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		fmt.Println("e2e: skipped: needs /bin/busybox (apt-get install busybox-static)")
		os.Exit(0)
	}
	var err error
	workDir, err = os.MkdirTemp("", "berth-e2e-")
	if err != nil {
		panic(err)
	}
	code := func() int {
		if berthBin = os.Getenv("BERTH"); berthBin == "" {
			berthBin = filepath.Join(workDir, "berth")
			// make build: a static binary (init: true runs it inside
			// containers) carrying the lean helper.
			build := exec.Command("make", "-C", "..", "build", "BIN="+berthBin)
			build.Stdout, build.Stderr = os.Stdout, os.Stderr
			if err := build.Run(); err != nil {
				fmt.Println("e2e: build:", err)
				return 1
			}
		}
		// The prober runs inside containers for the security tests;
		// compose files find it through ${BERTH_PROBER}.
		prober, err := buildProbe(workDir, "./prober")
		if err != nil {
			fmt.Println("e2e:", err)
			return 1
		}
		os.Setenv("BERTH_PROBER", prober)
		if netprobeBin, err = buildProbe(workDir, "./testdata/netprobe"); err != nil {
			fmt.Println("e2e:", err)
			return 1
		}
		busyboxTar = filepath.Join(workDir, "busybox.tar")
		if err := busybox.WriteTar(busyboxTar); err != nil {
			fmt.Println("e2e: busybox image:", err)
			return 1
		}
		// Objects a run killed earlier on this host left behind are not
		// this suite's: they are named, and not counted against it.
		before := findLeaks(workDir)
		for _, l := range before {
			fmt.Println("e2e: present before the suite (not counted):", l)
		}
		code := m.Run()
		// The DNS server exits a moment after its last network goes.
		leaks := newLeaks(before, findLeaks(workDir))
		for i := 0; i < 50 && len(leaks) > 0; i++ {
			time.Sleep(200 * time.Millisecond)
			leaks = newLeaks(before, findLeaks(workDir))
		}
		if len(leaks) > 0 {
			fmt.Println("e2e: LEAK CHECK FAILED: Berth left these behind:")
			for _, l := range leaks {
				fmt.Println("  -", l)
			}
			return 1
		}
		fmt.Println("e2e: leak check: nothing of Berth is left")
		return code
	}()
	os.RemoveAll(workDir)
	os.Exit(code)
}

// env is one test's Berth: its own state roots, so tests never share state.
type env struct {
	t    testing.TB
	root string
	run  string
	dir  string // project directory
	// netns, when set, is the network namespace berth runs in (a dirty
	// host, see dirtyHost), and outside the one beyond its uplink.
	netns, outside string
	// environ is added to every berth command's environment.
	environ []string
}

// newEnv makes state roots and imports the busybox image as "busybox".
func newEnv(t testing.TB) *env {
	t.Helper()
	base, err := os.MkdirTemp(workDir, strings.ReplaceAll(t.Name(), "/", "_")+"-")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, root: filepath.Join(base, "root"), run: filepath.Join(base, "run"), dir: filepath.Join(base, "project")}
	os.MkdirAll(e.dir, 0o755)
	if dirtyMode {
		e.netns, e.outside = dirtyHost(t)
	}
	e.must("image", "import", busyboxTar, "busybox")
	return e
}

// result of one berth invocation.
type result struct {
	stdout, stderr string
	code           int
}

func (e *env) cmd(ctx context.Context, args ...string) *exec.Cmd {
	c := exec.CommandContext(ctx, berthBin, args...)
	if e.netns != "" {
		c = exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + e.netns, "--", berthBin}, args...)...)
	}
	c.Dir = e.dir
	// BERTH_DNS_UPSTREAMS=none: no query ever leaves the machine. A pull
	// from a registry off this machine goes to a proxy that is not there
	// (Go never proxies loopback), so it fails without resolving a name.
	c.Env = append(os.Environ(), "BERTH_ROOT="+e.root, "BERTH_RUN="+e.run, "BERTH_DNS_UPSTREAMS=none",
		"HTTPS_PROXY=http://127.0.0.1:9", "HTTP_PROXY=http://127.0.0.1:9", "NO_PROXY=")
	c.Env = append(c.Env, e.environ...)
	return c
}

// berth runs the binary and returns what it printed and its exit code.
func (e *env) berth(args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := e.cmd(ctx, args...)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			e.t.Fatalf("berth %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return result{out.String(), errb.String(), code}
}

// must runs berth and fails the test unless it exits 0.
func (e *env) must(args ...string) result {
	e.t.Helper()
	r := e.berth(args...)
	if r.code != 0 {
		dnsLog, _ := os.ReadFile(filepath.Join(e.run, "dns", "dns.log"))
		e.t.Fatalf("berth %s: exit %d\nstdout:\n%s\nstderr:\n%s\ndns.log:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr, dnsLog)
	}
	return r
}

// dnsPid asks the env's DNS server for its pid (tests kill it).
func (e *env) dnsPid() int {
	e.t.Helper()
	st, err := netdns.ServerStatus(context.Background(), filepath.Join(e.run, "dns"))
	if err != nil {
		e.t.Fatalf("dns server status: %v", err)
	}
	return st.Pid
}

// writeProject writes compose.yaml (and extra files) into the project dir.
func (e *env) writeProject(files map[string]string) {
	e.t.Helper()
	for name, body := range files {
		p := filepath.Join(e.dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			e.t.Fatal(err)
		}
	}
}

// mustBeGone fails the test if the project still has containers or the env
// left a mount, process, table or cgroup behind.
func (e *env) mustBeGone(project string) {
	e.t.Helper()
	if r := e.must("-p", project, "ps", "-a", "-q"); strings.TrimSpace(r.stdout) != "" {
		e.t.Fatalf("containers of %s left: %q", project, r.stdout)
	}
	if leaks := envLeaks(e); len(leaks) > 0 {
		e.t.Fatalf("left behind: %v", leaks)
	}
	if e.netns != "" {
		if leaks := nsLeaks(e.t, e.netns); len(leaks) > 0 {
			e.t.Fatalf("left behind in the dirty host: %v", leaks)
		}
	}
}

// httpGet fetches http://addr/ from where berth runs (the dirty host when
// there is one).
func (e *env) httpGet(addr string) (string, error) { return httpGetIn(e.netns, addr, "/") }

// httpGet fetches http://addr/ from the test's own namespace.
func httpGet(addr string) (string, error) { return httpGetIn("", addr, "/") }

// downAtEnd registers a down -v so a failing test still cleans up.
func (e *env) downAtEnd(project string) {
	e.t.Cleanup(func() {
		r := e.berth("-p", project, "down", "-v", "-t", "1")
		if r.code != 0 {
			e.t.Errorf("cleanup down: %s", r.stderr)
		}
	})
}

// median is the middle value of v, or the mean of the two middle ones.
func median[T time.Duration | float64](v []T) T {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// freePort returns a TCP port nobody listens on right now.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// eventually polls f until it returns nil or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out: %v", err)
}

func itoa(n int) string { return strconv.Itoa(n) }
