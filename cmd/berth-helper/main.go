// Command berth-helper is the lean part of berth that runs for every
// container: its shim, and through the shim libcontainer's init, the
// container entry and the seccomp compiler; the DNS server; and berth's
// front path, which serves ps from the load cache (package fastpath). It
// links no compose-go loader, Kubernetes or CLI code, so every start pays a fraction of
// berth's package initialisation and every shim keeps less memory.
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
	"runtime/debug"
	"syscall"

	"github.com/berth-dev/berth/cmd/internal/daemon"
	"github.com/berth-dev/berth/cmd/internal/fastpath"
	"github.com/berth-dev/berth/engine/runtime"
)

// front serves the command line argv of berth at berthExe, handed over by
// berth's constructor (cmd/berth/front_linux.c), or execs berth back to
// run it (fastpath.Serve says which); it does not return.
func front(ctx context.Context, berthExe string, argv []string) {
	// A short-lived process that allocates a few MB: a collection would
	// only cost time.
	debug.SetGCPercent(-1)
	if fastpath.Serve(ctx, argv[1:], berthExe, os.Stdout, os.Stderr) {
		os.Exit(0)
	}
	err := syscall.Exec(berthExe, argv, append(os.Environ(), fastpath.NoFront+"=1"))
	fmt.Fprintf(os.Stderr, "berth: run %s: %v\n", berthExe, err)
	os.Exit(127)
}

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
	case len(os.Args) == 3 && os.Args[1] == "shim":
		err = daemon.Shim(ctx, os.Args[2])
	case len(os.Args) >= 2 && os.Args[1] == "dns":
		err = daemon.DNS(ctx, os.Args[2:])
	case len(os.Args) >= 4 && os.Args[1] == "front":
		front(ctx, os.Args[2], os.Args[3:])
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
