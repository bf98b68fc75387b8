// Command berth runs Compose projects on Linux with no daemon and no Docker.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := execute(ctx, newRootCommand(), os.Args[1:])
	stop()
	os.Exit(code)
}
