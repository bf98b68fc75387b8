package runtime

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/opencontainers/runc/libcontainer"
)

// oomKilled reports whether the kernel's OOM killer killed a process of
// the container during this run. Read it before the container is
// destroyed: the counter lives in the container's memory cgroup
// (memory.oom_control on cgroup v1, memory.events on v2).
func oomKilled(c *libcontainer.Container) bool {
	st, err := c.State()
	if err != nil {
		return false
	}
	if dir, ok := st.CgroupPaths["memory"]; ok {
		return counter(filepath.Join(dir, "memory.oom_control"), "oom_kill") > 0
	}
	if dir, ok := st.CgroupPaths[""]; ok {
		return counter(filepath.Join(dir, "memory.events"), "oom_kill") > 0
	}
	return false
}

// counter reads "name N" from a cgroup file of such lines.
func counter(path, name string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}
