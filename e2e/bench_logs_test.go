package e2e

import (
	"bufio"
	"fmt"
	"strings"
	"testing"
	"time"
)

// BenchmarkLogMux measures how fast logs shows the output of 20 chatty
// services (50,000 lines each): following them while they write (logs -f
// from before their first line to their exit: lines/s from the first
// line shown to the last) and reading it all afterwards (logs). Every
// line must come out whole, under its own prefix.
func BenchmarkLogMux(b *testing.B) {
	const services, lines = 20, 50000
	e := newEnv(b)
	var sb strings.Builder
	sb.WriteString("name: chatty\nservices:\n")
	for i := 1; i <= services; i++ {
		fmt.Fprintf(&sb, "  s%02d:\n    image: busybox\n    command: [sh, -c, 'sleep 1; yes chatter-chatter-chatter-chatter-chatter-%02d | head -n %d']\n", i, i, lines)
	}
	e.writeProject(map[string]string{"compose.yaml": sb.String()})
	e.downAtEnd("chatty")
	// count checks that every line is whole and returns how many came.
	count := func(out string) int {
		n := 0
		for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			prefix, text, ok := strings.Cut(l, " | ")
			if !ok || !strings.HasPrefix(prefix, "s") || text != "chatter-chatter-chatter-chatter-chatter-"+prefix[1:3] {
				b.Fatalf("a line not whole or under another prefix: %q", l)
			}
			n++
		}
		return n
	}
	var follow, read []float64
	for b.Loop() {
		e.must("up", "-d", "--force-recreate")
		c := e.cmd(b.Context(), "logs", "-f", "--no-color")
		stdout, err := c.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Start(); err != nil {
			b.Fatal(err)
		}
		var out strings.Builder
		var first, last time.Time
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if first.IsZero() {
				first = time.Now()
			}
			last = time.Now()
			out.WriteString(sc.Text() + "\n")
		}
		if err := c.Wait(); err != nil {
			b.Fatalf("logs -f: %v", err)
		}
		if n := count(out.String()); n != services*lines {
			b.Fatalf("logs -f showed %d lines, want %d", n, services*lines)
		}
		follow = append(follow, float64(services*lines)/last.Sub(first).Seconds())

		t0 := time.Now()
		r := e.must("logs", "--no-color")
		read = append(read, float64(services*lines)/time.Since(t0).Seconds())
		if n := count(r.stdout); n != services*lines {
			b.Fatalf("logs showed %d lines, want %d", n, services*lines)
		}
	}
	reportRange(b, follow, "follow-lines/s")
	reportRange(b, read, "read-lines/s")
	b.ReportMetric(0, "ns/op")
}
