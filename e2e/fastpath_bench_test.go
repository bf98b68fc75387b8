package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// BenchmarkFastPath measures the commands that find nothing to do on a
// running 20-service project: `ps` with the compose file present and a
// no-op `up -d`, wall time per command as a user sees it (the goals are
// 15 ms and 10 ms). Each b.Loop iteration runs each command 5 times.
func BenchmarkFastPath(b *testing.B) {
	const n = 20
	e := newEnv(b)
	var sb strings.Builder
	sb.WriteString("name: fast\nservices:\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&sb, "  s%d:\n    image: busybox\n    command: [\"sleep\", \"3600\"]\n    environment:\n      N: \"%d\"\n", i, i)
	}
	e.writeProject(map[string]string{"compose.yaml": sb.String()})
	e.downAtEnd("fast")
	e.must("up", "-d")
	var ps, up []float64
	for b.Loop() {
		for range 5 {
			t0 := time.Now()
			r := e.must("ps")
			ps = append(ps, float64(time.Since(t0)))
			if got := strings.Count(r.stdout, "\n") - 1; got != n {
				b.Fatalf("ps shows %d containers, want %d:\n%s", got, n, r.stdout)
			}
			t0 = time.Now()
			r = e.must("up", "-d")
			up = append(up, float64(time.Since(t0)))
			if strings.Contains(r.stderr, "Recreate") || strings.Contains(r.stderr, "Created") {
				b.Fatalf("no-op up -d changed something:\n%s", r.stderr)
			}
		}
	}
	b.Logf("wall ms, median [min-max] of %d runs each, %d services running:", len(ps), n)
	b.Logf("  ps        %s", spread(ps, 1e6))
	b.Logf("  up -d     %s", spread(up, 1e6))
	b.ReportMetric(median(ps)/1e6, "ps-ms")
	b.ReportMetric(slices.Min(ps)/1e6, "ps-min-ms")
	b.ReportMetric(slices.Max(ps)/1e6, "ps-max-ms")
	b.ReportMetric(median(up)/1e6, "noop-up-ms")
	b.ReportMetric(slices.Min(up)/1e6, "noop-up-min-ms")
	b.ReportMetric(slices.Max(up)/1e6, "noop-up-max-ms")
	b.ReportMetric(0, "ns/op")
}
