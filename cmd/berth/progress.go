package main

import (
	"context"
	"fmt"

	"github.com/containerd/errdefs"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/compose/progress"
)

// withProgress starts the display chosen by --progress (quiet when the verb
// was asked to be), on stderr as docker compose does, and returns a context
// carrying it and the function that closes it.
func withProgress(cmd *cobra.Command, pf *projectFlags, quiet bool) (context.Context, func(), error) {
	mode, err := pf.progressMode()
	if err != nil {
		return nil, nil, err
	}
	if quiet {
		mode = progress.Quiet
	}
	w := progress.New(cmd.ErrOrStderr(), mode)
	return progress.WithWriter(cmd.Context(), w), func() { w.Close() }, nil
}

// progressMode is --progress (or COMPOSE_PROGRESS) as docker compose reads
// it with --ansi: auto is plain when ANSI is off, "none" is quiet, and a
// terminal display without ANSI or plain lines with ANSI forced are errors.
func (f *projectFlags) progressMode() (progress.Mode, error) {
	if f.progress == "none" {
		return progress.Quiet, nil
	}
	mode, err := progress.ParseMode(f.progress)
	if err != nil {
		return "", err
	}
	switch {
	case mode == progress.Auto && f.ansi == "never":
		return progress.Plain, nil
	case mode == progress.TTY && f.ansi == "never":
		return "", fmt.Errorf("can't use --progress tty while ANSI support is disabled: %w", errdefs.ErrInvalidArgument)
	case mode == progress.Plain && f.ansi == "always":
		return "", fmt.Errorf("can't use --progress plain while ANSI support is forced: %w", errdefs.ErrInvalidArgument)
	}
	return mode, nil
}
