package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/compose/progress"
)

// withProgress starts the display chosen by --progress (quiet when the verb
// was asked to be), on stderr as docker compose does, and returns a context
// carrying it and the function that closes it.
func withProgress(cmd *cobra.Command, pf *projectFlags, quiet bool) (context.Context, func(), error) {
	mode, err := progress.ParseMode(pf.progress)
	if err != nil {
		return nil, nil, err
	}
	if quiet {
		mode = progress.Quiet
	}
	w := progress.New(cmd.ErrOrStderr(), mode)
	return progress.WithWriter(cmd.Context(), w), func() { w.Close() }, nil
}
