package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/engine"
)

// BenchmarkStartCost measures what starting a container costs the host, in
// CPU summed over every process (the CLI, the shims and what they fork, the
// container's init before it execs the command, the DNS server), and what a
// shim keeps in private memory. The machine is shared, so CPU is read from
// cgroup accounting (cpuacct, nanoseconds per process tree), not from wall
// time: other work on the machine does not count.
// It also counts each container's minor page faults from libcontainer's
// init to the command (minorFaults), a count the machine's load hardly moves.
//
// `berth up -d` runs in a cgroup of its own; the shims and the DNS server it
// spawns inherit it, and the containers move to the engine's cgroups, whose
// parent accounts for all of them.
func BenchmarkStartCost(b *testing.B) {
	acct := "/sys/fs/cgroup/cpuacct"
	if _, err := os.Stat(filepath.Join(acct, "cpuacct.usage")); err != nil {
		b.Skip("needs the cgroup v1 cpuacct controller at " + acct)
	}
	const n = 20
	e := newEnv(b)
	var sb strings.Builder
	sb.WriteString("name: cost\nservices:\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&sb, "  s%d:\n    image: busybox\n    command: [\"sleep\", \"3600\"]\n", i)
	}
	e.writeProject(map[string]string{"compose.yaml": sb.String()})
	var total, cli, shims, dns, containers, wall, shimMem, faults []float64
	for i := 0; b.Loop(); i++ {
		cg := filepath.Join(acct, fmt.Sprintf("berth-bench-%d-%d", os.Getpid(), i))
		if err := os.Mkdir(cg, 0o755); err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		c := e.cmd(ctx, "sh", "-c", `echo $$ > "$0"/cgroup.procs && exec "$@"`, cg, berthBin, "up", "-d")
		c.Path, c.Args = "/bin/sh", c.Args[1:]
		var out bytes.Buffer
		c.Stdout, c.Stderr = &out, &out
		t0 := time.Now()
		err := c.Run()
		wall = append(wall, time.Since(t0).Seconds())
		cancel()
		if err != nil {
			b.Fatalf("up -d: %v\n%s", err, out.String())
		}
		tree := readNs(b, filepath.Join(cg, "cpuacct.usage"))
		inst := readNs(b, filepath.Join(acct, engine.Instance(e.root), "cpuacct.usage"))
		cliNs := float64(c.ProcessState.UserTime() + c.ProcessState.SystemTime())
		dnsNs := taskCPU(e.dnsPid())
		total = append(total, (tree+inst)/n)
		cli = append(cli, cliNs/n)
		dns = append(dns, dnsNs/n)
		shims = append(shims, (tree-cliNs-dnsNs)/n)
		containers = append(containers, inst/n)
		pids, _ := filepath.Glob(filepath.Join(e.run, "containers", "*", "shim.pid"))
		for _, p := range pids {
			if kb := privateDirtyKB(pidIn(p)); kb > 0 {
				shimMem = append(shimMem, kb/1024)
			}
		}
		procs, _ := filepath.Glob(filepath.Join(acct, engine.Instance(e.root), "*", "cgroup.procs"))
		for _, p := range procs {
			if n := minorFaults(pidIn(p)); n > 0 {
				faults = append(faults, n)
			}
		}
		e.must("down", "-t", "0")
		removeCgroup(b, cg)
	}
	ms := func(v []float64) string { return spread(v, 1e6) }
	b.Logf("CPU per container start, ms (median [min-max] of %d runs of %d services):", len(total), n)
	b.Logf("  all processes       %s", ms(total))
	b.Logf("  CLI (berth up -d)   %s", ms(cli))
	b.Logf("  shims and children  %s", ms(shims))
	b.Logf("  containers (init)   %s", ms(containers))
	b.Logf("  DNS server          %s", ms(dns))
	b.Logf("up -d wall, s: %s", spread(wall, 1))
	b.Logf("shim Private_Dirty, MiB (median [min-max] over %d shims): %s", len(shimMem), spread(shimMem, 1))
	b.Logf("page faults of a container's process, init to command (median [min-max] over %d): %s", len(faults), spread(faults, 1))
	b.ReportMetric(median(total)/1e6, "cpu-ms/start")
	b.ReportMetric(median(shimMem), "shim-MiB")
	b.ReportMetric(median(wall), "up-s")
	b.ReportMetric(median(faults), "ctr-faults")
	b.ReportMetric(0, "ns/op")
}

func readNs(b *testing.B, path string) float64 {
	raw, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(string(raw)), 64)
	if err != nil {
		b.Fatal(err)
	}
	return v
}

func pidIn(path string) int {
	raw, _ := os.ReadFile(path)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
	return pid
}

// taskCPU is the CPU time, in ns, every thread of pid has used so far.
func taskCPU(pid int) float64 {
	if pid <= 0 {
		return 0
	}
	stats, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	var sum float64
	for _, s := range stats {
		raw, err := os.ReadFile(s)
		if err != nil {
			continue
		}
		if f := strings.Fields(string(raw)); len(f) > 0 {
			v, _ := strconv.ParseFloat(f[0], 64)
			sum += v
		}
	}
	return sum
}

// minorFaults is the minor page faults pid has taken since it was forked:
// for a container's process, libcontainer's init, the container entry and
// the command together (exec keeps the count). Unlike CPU time it does not
// depend on what else the machine runs, so it shows a change to the init's
// Go start or allocations that the CPU figures' spread hides.
func minorFaults(pid int) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses and may
	// hold anything: state is the first, minflt the eighth.
	i := bytes.LastIndexByte(raw, ')')
	if f := strings.Fields(string(raw[i+1:])); i >= 0 && len(f) > 7 {
		v, _ := strconv.ParseFloat(f[7], 64)
		return v
	}
	return 0
}

// privateDirtyKB is a process's Private_Dirty from smaps_rollup.
func privateDirtyKB(pid int) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Private_Dirty:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb
		}
	}
	return 0
}

// removeCgroup waits for the processes of a benchmark cgroup to go (the
// DNS server exits a moment after the last network) and removes it.
func removeCgroup(b *testing.B, cg string) {
	for range 100 {
		if os.Remove(cg) == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	procs, _ := os.ReadFile(filepath.Join(cg, "cgroup.procs"))
	b.Fatalf("benchmark cgroup %s still has processes: %s", cg, procs)
}

// spread renders median [min-max] of v divided by unit.
func spread(v []float64, unit float64) string {
	if len(v) == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f [%.2f-%.2f]", median(v)/unit, slices.Min(v)/unit, slices.Max(v)/unit)
}
