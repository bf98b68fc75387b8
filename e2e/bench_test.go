package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// BenchmarkUpDown measures up -d and down -t 1 of N busybox sleep services,
// as the issue asks (make bench runs it 5 times and prints medians).
func BenchmarkUpDown(b *testing.B) {
	for _, n := range []int{3, 20} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			e := newEnv(b)
			var sb strings.Builder
			sb.WriteString("name: bench\nservices:\n")
			for i := 1; i <= n; i++ {
				fmt.Fprintf(&sb, "  s%d:\n    image: busybox\n    command: [\"sleep\", \"3600\"]\n", i)
			}
			e.writeProject(map[string]string{"compose.yaml": sb.String()})
			var ups, downs []time.Duration
			for b.Loop() {
				t0 := time.Now()
				e.must("up", "-d")
				t1 := time.Now()
				e.must("down", "-t", "1")
				ups = append(ups, t1.Sub(t0))
				downs = append(downs, time.Since(t1))
			}
			b.ReportMetric(median(ups).Seconds(), "up-s")
			b.ReportMetric(median(downs).Seconds(), "down-s")
			b.ReportMetric(0, "ns/op")
		})
	}
}
