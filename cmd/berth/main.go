// Command berth runs Compose projects on Linux with no daemon and no Docker.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"
)

// gcPercent is the CLI's garbage collection goal unless GOGC says another:
// a command lives for a fraction of a second and its live heap is a few
// MB, so Go's default (collect when the heap doubles, from 4 MB) spent
// about 1 ms of CPU per container started by up -d on collections
// (docs/performance.md); at 400 the first collection comes at 16 MB and
// an up -d of 20 services runs none or one. A long-lived command (logs -f,
// up attached, watch) keeps at most five times its live heap. Shims and
// the DNS server are other binaries and keep Go's default.
const gcPercent = 400

func main() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(gcPercent)
	}
	// BERTH_DEBUG=1 logs phase timings (and more) to stderr; shims and the
	// DNS server inherit it and log into their own log files.
	if os.Getenv("BERTH_DEBUG") != "" {
		slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})))
	}
	if err := absStateDirs(); err != nil {
		fmt.Fprintln(os.Stderr, "berth:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first Ctrl-C cancels gracefully; restoring the default handler
	// then lets a second one end berth at once, as with docker compose.
	// State stays consistent either way: every step is crash-safe.
	go func() { <-ctx.Done(); stop() }()
	code := execute(ctx, newRootCommand(), os.Args[1:])
	stop()
	os.Exit(code)
}

// absStateDirs makes a relative BERTH_ROOT or BERTH_RUN absolute, from the
// directory berth runs in, in berth's environment: shims and the DNS
// server inherit it and run from /, where a relative root would name
// another engine's state (and instance).
func absStateDirs() error {
	for _, name := range []string{"BERTH_ROOT", "BERTH_RUN"} {
		v := os.Getenv(name)
		if v == "" || filepath.IsAbs(v) {
			continue
		}
		abs, err := filepath.Abs(v)
		if err != nil {
			return fmt.Errorf("%s=%s: %w", name, v, err)
		}
		if err := os.Setenv(name, abs); err != nil {
			return fmt.Errorf("%s=%s: %w", name, v, err)
		}
	}
	return nil
}
