// Command berth runs Compose projects on Linux with no daemon and no Docker.
package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// BERTH_DEBUG=1 logs phase timings (and more) to stderr; shims and the
	// DNS server inherit it and log into their own log files.
	if os.Getenv("BERTH_DEBUG") != "" {
		slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})))
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
