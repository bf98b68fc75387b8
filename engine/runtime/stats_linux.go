package runtime

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/runc/libcontainer"
)

// Stats is one sample of a container's resource usage. CPU figures are
// cumulative: a percentage needs two samples (see CPUPercent).
type Stats struct {
	Read       time.Time `json:"read"`
	CPUUsage   uint64    `json:"cpu_usage_ns"`  // the container's CPU time, all CPUs
	SystemCPU  uint64    `json:"system_cpu_ns"` // the host's CPU time, all CPUs
	OnlineCPUs int       `json:"online_cpus"`
	MemUsage   uint64    `json:"mem_usage"` // without the page cache, as Docker counts it
	MemLimit   uint64    `json:"mem_limit"` // the host's memory when unlimited
	Pids       uint64    `json:"pids"`
	NetRx      uint64    `json:"net_rx"`
	NetTx      uint64    `json:"net_tx"`
	BlockRead  uint64    `json:"block_read"`
	BlockWrite uint64    `json:"block_write"`
}

// CPUPercent is Docker's CPU %: the container's share of the host's CPU
// time between two samples, times the number of CPUs (so one busy core of
// four reads 100%).
func CPUPercent(prev, cur Stats) float64 {
	dc := float64(cur.CPUUsage) - float64(prev.CPUUsage)
	ds := float64(cur.SystemCPU) - float64(prev.SystemCPU)
	if dc <= 0 || ds <= 0 {
		return 0
	}
	return dc / ds * float64(max(cur.OnlineCPUs, 1)) * 100
}

// MemPercent is usage over limit, in percent.
func (s Stats) MemPercent() float64 {
	if s.MemLimit == 0 {
		return 0
	}
	return float64(s.MemUsage) / float64(s.MemLimit) * 100
}

func containerStats(c *libcontainer.Container, pid int) (Stats, error) {
	st := Stats{Read: time.Now().UTC(), OnlineCPUs: runtime.NumCPU()}
	ls, err := c.Stats()
	if err != nil {
		return st, fmt.Errorf("stats: %w", err)
	}
	if cg := ls.CgroupStats; cg != nil {
		st.CPUUsage = cg.CpuStats.CpuUsage.TotalUsage
		st.MemUsage = cg.MemoryStats.Usage.Usage
		// Docker leaves the inactive page cache out: it can be reclaimed.
		for _, k := range []string{"total_inactive_file", "inactive_file"} {
			if v, ok := cg.MemoryStats.Stats[k]; ok && v < st.MemUsage {
				st.MemUsage -= v
				break
			}
		}
		st.MemLimit = cg.MemoryStats.Usage.Limit
		st.Pids = cg.PidsStats.Current
		for _, e := range cg.BlkioStats.IoServiceBytesRecursive {
			switch strings.ToLower(e.Op) {
			case "read":
				st.BlockRead += e.Value
			case "write":
				st.BlockWrite += e.Value
			}
		}
	}
	if total := hostMemory(); total > 0 && (st.MemLimit == 0 || st.MemLimit > total) {
		st.MemLimit = total
	}
	st.SystemCPU = hostCPUTime()
	st.NetRx, st.NetTx = netIO(pid)
	return st, nil
}

// hostCPUTime sums the first line of /proc/stat, in nanoseconds.
func hostCPUTime() uint64 {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0
	}
	fields := strings.Fields(sc.Text())
	if len(fields) < 2 || fields[0] != "cpu" {
		return 0
	}
	var ticks uint64
	for _, v := range fields[1:] {
		n, _ := strconv.ParseUint(v, 10, 64)
		ticks += n
	}
	// USER_HZ is 100 on every Linux architecture Go supports.
	return ticks * uint64(time.Second/100)
}

func hostMemory() uint64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kb, _ := strconv.ParseUint(f[0], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}

// netIO sums the received and sent bytes of every interface but loopback in
// the network namespace of pid.
func netIO(pid int) (rx, tx uint64) {
	if pid <= 0 {
		return 0, 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/dev", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) == "lo" {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 9 {
			continue
		}
		r, _ := strconv.ParseUint(f[0], 10, 64)
		t, _ := strconv.ParseUint(f[8], 10, 64)
		rx += r
		tx += t
	}
	return rx, tx
}
