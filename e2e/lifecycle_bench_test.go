package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// BenchmarkChangeOneAndHealthChain measures issue 9 item 10's two other
// figures, wall time per command as a user sees it:
//
//   - "change": up -d on a running 20-service project after one service's
//     environment changed, which must recreate that service only (init:
//     true, so that the old container stops on SIGTERM: a bare sleep as
//     pid 1 ignores it, and the figure would be the 10 s stop timeout);
//   - "chain": up -d of 20 services in a depends_on chain of depth 5 (4
//     services per level, each gated on every service of the level below
//     with condition service_healthy), from nothing to all running; the
//     health probes run every 50 ms while starting (start_interval), so
//     the figure is Berth's gating, not a probe interval.
func BenchmarkChangeOneAndHealthChain(b *testing.B) {
	const n = 20
	e := newEnv(b)
	flat := func(changed int) string {
		var sb strings.Builder
		sb.WriteString("name: change\nservices:\n")
		for i := 1; i <= n; i++ {
			v := i
			if i == 7 {
				v = changed
			}
			fmt.Fprintf(&sb, "  s%d:\n    image: busybox\n    command: [\"sleep\", \"3600\"]\n    init: true\n    environment:\n      N: \"%d\"\n", i, v)
		}
		return sb.String()
	}
	var chain strings.Builder
	chain.WriteString("name: chain\nservices:\n")
	for level := 0; level < 5; level++ {
		for j := 0; j < 4; j++ {
			fmt.Fprintf(&chain, "  l%ds%d:\n    image: busybox\n    command: [\"sleep\", \"3600\"]\n", level, j)
			chain.WriteString("    healthcheck:\n      test: [\"CMD\", \"true\"]\n      interval: 30s\n      start_period: 60s\n      start_interval: 50ms\n")
			if level > 0 {
				chain.WriteString("    depends_on:\n")
				for k := 0; k < 4; k++ {
					fmt.Fprintf(&chain, "      l%ds%d:\n        condition: service_healthy\n", level-1, k)
				}
			}
		}
	}
	e.writeProject(map[string]string{"compose.yaml": flat(7)})
	e.downAtEnd("change")
	e.downAtEnd("chain")
	e.must("up", "-d")
	var change, gated []float64
	round := 0
	for b.Loop() {
		round++
		e.writeProject(map[string]string{"compose.yaml": flat(100 + round)})
		t0 := time.Now()
		r := e.must("up", "-d")
		change = append(change, float64(time.Since(t0)))
		if strings.Count(r.stderr, "Recreated") != 1 || !strings.Contains(r.stderr, "change-s7-1 Recreated") {
			b.Fatalf("up -d after changing s7's environment:\n%s", r.stderr)
		}

		e.writeProject(map[string]string{"compose.yaml": chain.String()})
		t0 = time.Now()
		e.must("-p", "chain", "up", "-d")
		gated = append(gated, float64(time.Since(t0)))
		if r := e.must("-p", "chain", "ps", "--services", "--status", "running"); strings.Count(r.stdout, "\n") != n {
			b.Fatalf("chain: running after up -d:\n%s", r.stdout)
		}
		e.must("-p", "chain", "down", "-t", "0")
		e.writeProject(map[string]string{"compose.yaml": flat(100 + round)})
	}
	b.Logf("wall ms, median [min-max] of %d runs each, %d services:", len(change), n)
	b.Logf("  up -d, one service's environment changed  %s", spread(change, 1e6))
	b.Logf("  up -d, depth-5 chain gated on health      %s", spread(gated, 1e6))
	b.ReportMetric(median(change)/1e6, "change-ms")
	b.ReportMetric(slices.Max(change)/1e6, "change-max-ms")
	b.ReportMetric(median(gated)/1e6, "chain-ms")
	b.ReportMetric(slices.Max(gated)/1e6, "chain-max-ms")
	b.ReportMetric(0, "ns/op")
}
