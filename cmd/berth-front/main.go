// Command berth-front is berth's front path: berth's C constructor
// (cmd/berth/front_linux.c) hands it ps and up -d before berth's Go
// runtime starts, and it answers them from the load cache
// (cmd/internal/fastpath) or execs berth back to run them.
//
// It is apart from the lean helper (cmd/berth-helper) because it links
// compose and the whole engine, which every shim and container init would
// otherwise pay for in package initialisers and memory. Like the helper,
// it is not a program for users: make build embeds it in berth, which
// installs it next to the helper (docs/architecture.md, "The front path").
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/berth-dev/berth/cmd/internal/fastpath"
)

// main serves the command line argv of berth at berthExe, handed over as
// "front <berth exe> <argv...>", or execs berth back to run it
// (fastpath.Serve says which); it does not return.
func main() {
	if len(os.Args) < 3 || os.Args[1] != "front" {
		fmt.Fprintln(os.Stderr, "berth-front is internal to berth: run berth")
		os.Exit(2)
	}
	berthExe, argv := os.Args[2], os.Args[3:]
	if os.Getenv("BERTH_DEBUG") != "" {
		slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// A short-lived process that allocates a few MB: a collection would
	// only cost time.
	debug.SetGCPercent(-1)
	served := fastpath.Serve(ctx, argv[1:], berthExe, os.Stdout, os.Stderr)
	stop()
	if served {
		os.Exit(0)
	}
	err := syscall.Exec(berthExe, argv, append(os.Environ(), fastpath.NoFront+"=1"))
	fmt.Fprintf(os.Stderr, "berth: run %s: %v\n", berthExe, err)
	os.Exit(127)
}
