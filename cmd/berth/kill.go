package main

import (
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/compose"
	"github.com/berth-dev/berth/engine"
)

var _ = register(newKillCommand)

func newKillCommand(pf *projectFlags) *cobra.Command {
	var r compose.KillRequest
	cmd := &cobra.Command{
		Use:         "kill [OPTIONS] [SERVICE...]",
		Annotations: serviceArgs,
		Short:       "Force stop service containers",
		RunE: withProjectOrName(pf, func(cmd *cobra.Command, p *types.Project, e *engine.Engine, args []string) error {
			ao, err := pf.applyOptions(cmd)
			if err != nil {
				return err
			}
			r.Services, r.ApplyOptions = args, ao
			return compose.Kill(cmd.Context(), e, p, r)
		}),
	}
	cmd.Flags().StringVarP(&r.Signal, "signal", "s", "SIGKILL", "SIGNAL to send to the container")
	cmd.Flags().BoolVar(&r.RemoveOrphans, "remove-orphans", false, "remove containers for services not defined in the compose file")
	return cmd
}
