package main

import (
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/compose"
	"github.com/berth-dev/berth/engine"
)

var (
	_ = register(newPauseCommand)
	_ = register(newUnpauseCommand)
)

func newPauseCommand(pf *projectFlags) *cobra.Command {
	return &cobra.Command{
		Use:         "pause [SERVICE...]",
		Annotations: serviceArgs,
		Short:       "Pause services",
		RunE: withProjectOrName(pf, func(cmd *cobra.Command, p *types.Project, e *engine.Engine, args []string) error {
			ao, err := pf.applyOptions(cmd)
			if err != nil {
				return err
			}
			return compose.Pause(cmd.Context(), e, p, args, ao)
		}),
	}
}

func newUnpauseCommand(pf *projectFlags) *cobra.Command {
	return &cobra.Command{
		Use:         "unpause [SERVICE...]",
		Annotations: serviceArgs,
		Short:       "Unpause services",
		RunE: withProjectOrName(pf, func(cmd *cobra.Command, p *types.Project, e *engine.Engine, args []string) error {
			ao, err := pf.applyOptions(cmd)
			if err != nil {
				return err
			}
			return compose.Unpause(cmd.Context(), e, p, args, ao)
		}),
	}
}
