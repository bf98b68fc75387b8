package main

import (
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/engine"

	"github.com/berth-dev/berth/compose"
)

var (
	_ = register(newStartCommand)
	_ = register(newStopCommand)
	_ = register(newRmCommand)
)

func newStartCommand(pf *projectFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "start [SERVICE...]",
		Short: "Start services",
		RunE: withProject(pf, func(cmd *cobra.Command, p *types.Project, e *engine.Engine, args []string) error {
			return compose.Start(cmd.Context(), e, p, args, cmd.ErrOrStderr())
		}),
	}
}

func newStopCommand(pf *projectFlags) *cobra.Command {
	var t timeoutFlag
	cmd := &cobra.Command{
		Use:   "stop [SERVICE...]",
		Short: "Stop services",
		RunE: withProject(pf, func(cmd *cobra.Command, p *types.Project, e *engine.Engine, args []string) error {
			return compose.Stop(cmd.Context(), e, p, args, t.value(), cmd.ErrOrStderr())
		}),
	}
	t.add(cmd)
	return cmd
}

func newRmCommand(pf *projectFlags) *cobra.Command {
	var force, stop bool
	cmd := &cobra.Command{
		Use:   "rm [SERVICE...]",
		Short: "Remove stopped service containers",
		RunE: withProject(pf, func(cmd *cobra.Command, p *types.Project, e *engine.Engine, args []string) error {
			// Berth never asks: -f only exists for docker compose's muscle memory.
			_ = force
			return compose.Remove(cmd.Context(), e, p, args, stop, nil, cmd.ErrOrStderr())
		}),
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "don't ask to confirm removal")
	cmd.Flags().BoolVarP(&stop, "stop", "s", false, "stop the containers, if required, before removing")
	return cmd
}
