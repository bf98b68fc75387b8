package main

import (
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/compose"
	"github.com/berth-dev/berth/engine"
)

var _ = register(newUpCommand)

func newUpCommand(pf *projectFlags) *cobra.Command {
	var (
		r       compose.UpRequest
		t       timeoutFlag
		noColor bool
	)
	cmd := &cobra.Command{
		Use:   "up [SERVICE...]",
		Short: "Create and start containers",
		RunE: withProject(pf, func(cmd *cobra.Command, p *types.Project, e *engine.Engine, args []string) error {
			if len(args) > 0 {
				var err error
				if p, err = p.WithSelectedServices(args); err != nil {
					return err
				}
			}
			r.Out, r.Err = cmd.OutOrStdout(), cmd.ErrOrStderr()
			r.StopTimeout = t.value()
			r.Logs.Color = !noColor && isTerminal(r.Out)
			return compose.Up(cmd.Context(), e, p, r)
		}),
	}
	cmd.Flags().BoolVarP(&r.Detach, "detach", "d", false, "run containers in the background")
	cmd.Flags().BoolVar(&r.Options.RemoveOrphans, "remove-orphans", false, "remove containers for services not defined in the compose file")
	cmd.Flags().BoolVar(&noColor, "no-color", false, "produce monochrome output")
	cmd.Flags().BoolVarP(&r.Logs.Timestamps, "timestamps", "", false, "show timestamps")
	t.add(cmd)
	return cmd
}
