package main

import (
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/compose"
	"github.com/berth-dev/berth/engine"
)

var _ = register(newWatchCommand)

func newWatchCommand(pf *projectFlags) *cobra.Command {
	var o compose.WatchOptions
	var quiet bool
	cmd := &cobra.Command{
		Use:   "watch [SERVICE...]",
		Short: "Watch the build context of services and rebuild or refresh containers when files change",
		RunE: withProject(pf, true, func(cmd *cobra.Command, p *types.Project, e *engine.Engine, args []string) error {
			if err := notYet(cmd, "prune"); err != nil {
				return err
			}
			ao, err := pf.applyOptions(cmd)
			if err != nil {
				return err
			}
			o.ApplyOptions = ao
			o.Services = args
			o.Out = cmd.OutOrStdout()
			if quiet {
				o.Progress = nil
			}
			return compose.Watch(cmd.Context(), e, p, o)
		}),
	}
	f := cmd.Flags()
	f.BoolVar(&o.NoUp, "no-up", false, "do not build and start services before watching")
	f.BoolVar(&quiet, "quiet", false, "hide build output")
	f.Bool("prune", false, "prune dangling images on rebuild (not yet)")
	return cmd
}
