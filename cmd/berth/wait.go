package main

import (
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/compose"
	"github.com/berth-dev/berth/engine"
)

var _ = register(newWaitCommand)

func newWaitCommand(pf *projectFlags) *cobra.Command {
	var r compose.WaitRequest
	cmd := &cobra.Command{
		Use:         "wait SERVICE [SERVICE...] [OPTIONS]",
		Annotations: serviceArgs,
		Short:       "Block until containers of all (or specified) services stop.",
		Args:        cobra.MinimumNArgs(1),
		RunE: withProjectOrName(pf, func(cmd *cobra.Command, p *types.Project, e *engine.Engine, args []string) error {
			ao, err := pf.applyOptions(cmd)
			if err != nil {
				return err
			}
			r.Services, r.ApplyOptions = args, ao
			code, err := compose.Wait(cmd.Context(), e, p, r)
			if err != nil {
				return err
			}
			if code != 0 {
				return exitError{code: code}
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&r.DownProject, "down-project", false, "drops project when the first container stops")
	return cmd
}
