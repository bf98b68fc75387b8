// Command berth-helper is the lean part of berth that runs for every
// container: its shim, and through the shim libcontainer's init, the
// container entry and the seccomp compiler; and the DNS server. It links
// no compose-go loader, Kubernetes or CLI code (nor compose: the front
// path is cmd/berth-front), so every start pays a fraction of berth's
// package initialisation and every shim keeps less memory.
//
// It is not a second program for users: make build embeds it in berth,
// which installs it under $BERTH_RUN/helper/ and runs it there
// (docs/architecture.md, "The lean helper").
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/berth-dev/berth/cmd/internal/daemon"
	"github.com/berth-dev/berth/engine/runtime"
)

// libcontainer re-executes this binary as "init" inside the new
// namespaces; that must happen before anything else runs.
func init() { runtime.MaybeInit() }

func main() {
	if os.Getenv("BERTH_DEBUG") != "" {
		slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() { <-ctx.Done(); stop() }()
	var err error
	switch {
	case (len(os.Args) == 3 || len(os.Args) == 4) && os.Args[1] == "shim":
		err = daemon.Shim(ctx, os.Args[2])
	case len(os.Args) >= 2 && os.Args[1] == "dns":
		err = daemon.DNS(ctx, os.Args[2:])
	default:
		fmt.Fprintln(os.Stderr, "berth-helper is internal to berth: run berth")
		os.Exit(2)
	}
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "berth:", err)
		os.Exit(1)
	}
}
