package main

import (
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/compose"
	"github.com/berth-dev/berth/engine"
)

var _ = register(newRestartCommand)

func newRestartCommand(pf *projectFlags) *cobra.Command {
	var (
		r compose.RestartRequest
		t timeoutFlag
	)
	cmd := &cobra.Command{
		Use:         "restart [OPTIONS] [SERVICE...]",
		Annotations: serviceArgs,
		Short:       "Restart service containers",
		RunE: withProjectOrName(pf, func(cmd *cobra.Command, p *types.Project, e *engine.Engine, args []string) error {
			ao, err := pf.applyOptions(cmd)
			if err != nil {
				return err
			}
			r.Services, r.Timeout, r.ApplyOptions = args, t.value(), ao
			return compose.Restart(cmd.Context(), e, p, r)
		}),
	}
	cmd.Flags().BoolVar(&r.NoDeps, "no-deps", false, "don't restart dependent services")
	t.add(cmd)
	return cmd
}
