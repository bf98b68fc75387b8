package main

import (
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/compose"
	"github.com/berth-dev/berth/engine"
)

var (
	_ = register(newStartCommand)
	_ = register(newStopCommand)
	_ = register(newRmCommand)
)

func newStartCommand(pf *projectFlags) *cobra.Command {
	return &cobra.Command{
		Use:         "start [SERVICE...]",
		Annotations: serviceArgs,
		Short:       "Start services",
		RunE: withProjectOrName(pf, func(cmd *cobra.Command, p *types.Project, e *engine.Engine, args []string) error {
			ao, err := pf.applyOptions(cmd)
			if err != nil {
				return err
			}
			return compose.Start(cmd.Context(), e, p, args, ao)
		}),
	}
}

func newStopCommand(pf *projectFlags) *cobra.Command {
	var t timeoutFlag
	cmd := &cobra.Command{
		Use:         "stop [OPTIONS] [SERVICE...]",
		Annotations: serviceArgs,
		Short:       "Stop services",
		RunE: withProjectOrName(pf, func(cmd *cobra.Command, p *types.Project, e *engine.Engine, args []string) error {
			ao, err := pf.applyOptions(cmd)
			if err != nil {
				return err
			}
			return compose.Stop(cmd.Context(), e, p, compose.StopRequest{Services: args, Timeout: t.value(), ApplyOptions: ao})
		}),
	}
	t.add(cmd)
	return cmd
}

func newRmCommand(pf *projectFlags) *cobra.Command {
	var (
		r     compose.RemoveRequest
		force bool
	)
	cmd := &cobra.Command{
		Use:         "rm [OPTIONS] [SERVICE...]",
		Annotations: serviceArgs,
		Short:       "Removes stopped service containers",
		RunE: withProjectOrName(pf, func(cmd *cobra.Command, p *types.Project, e *engine.Engine, args []string) error {
			// Berth never asks: -f only exists for docker compose's muscle
			// memory.
			_ = force
			ao, err := pf.applyOptions(cmd)
			if err != nil {
				return err
			}
			r.Services, r.ApplyOptions = args, ao
			return compose.Remove(cmd.Context(), e, p, r)
		}),
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "don't ask to confirm removal")
	cmd.Flags().BoolVarP(&r.Stop, "stop", "s", false, "stop the containers, if required, before removing")
	cmd.Flags().BoolVarP(&r.Volumes, "volumes", "v", false, "remove any anonymous volumes attached to containers")
	return cmd
}
