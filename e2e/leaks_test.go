package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/nftables"

	"github.com/vishvananda/netlink"

	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/engine/network"
)

// envLeaks is findLeaks limited to one env: its mounts, processes, and the
// nftables table and cgroups named after its instance. Links carry no owner,
// so only the suite-wide check at the end looks at them.
func envLeaks(e *env) []string {
	inst := engine.Instance(e.root)
	var out []string
	for _, l := range findLeaks(filepath.Dir(e.root)) {
		switch {
		case strings.HasPrefix(l, "mount "), strings.HasPrefix(l, "process "):
			out = append(out, l)
		case l == "nftables table "+inst, strings.HasSuffix(l, "/"+inst):
			out = append(out, l)
		}
	}
	return out
}

// findLeaks lists every Berth object left on the host: mounts under the
// test state roots, bridges and veths, nftables tables, cgroups, and shim
// or DNS processes of the binary under test.
func findLeaks(stateBase string) []string {
	var leaks []string
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) > 4 && strings.HasPrefix(f[4], stateBase) {
				leaks = append(leaks, "mount "+f[4])
			}
		}
	}
	if links, err := netlink.LinkList(); err == nil {
		for _, l := range links {
			n := l.Attrs().Name
			if strings.HasPrefix(n, "berth-") || strings.HasPrefix(n, "vberth") {
				leaks = append(leaks, "link "+n)
			}
		}
	}
	if c, err := nftables.New(); err == nil {
		if tables, err := c.ListTables(); err == nil {
			for _, t := range tables {
				if strings.HasPrefix(t.Name, "berth") {
					leaks = append(leaks, "nftables table "+t.Name)
				}
			}
		}
	}
	cg, _ := filepath.Glob("/sys/fs/cgroup/*/berth*")
	cg2, _ := filepath.Glob("/sys/fs/cgroup/berth*")
	for _, d := range append(cg, cg2...) {
		leaks = append(leaks, "cgroup "+d)
	}
	// The socket forwarding of published ports: programs on the cgroup v2
	// root and their maps.
	if objs, err := network.SockLBObjects(); err != nil {
		leaks = append(leaks, "bpf objects unreadable: "+err.Error())
	} else {
		leaks = append(leaks, objs...)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || len(b) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(args) > 1 && filepath.Base(args[0]) == "berth" && (args[1] == "shim" || args[1] == "dns" || args[1] == "init") &&
			strings.Contains(strings.Join(args, " "), stateBase) || strings.HasPrefix(args[0], stateBase) {
			leaks = append(leaks, fmt.Sprintf("process %s: %s", filepath.Base(filepath.Dir(p)), strings.Join(args, " ")))
		}
	}
	return leaks
}

// newLeaks returns what is in after and was not in before.
func newLeaks(before, after []string) []string {
	var out []string
	for _, l := range after {
		if !slices.Contains(before, l) {
			out = append(out, l)
		}
	}
	return out
}
