package main

import (
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/compose"
	"github.com/berth-dev/berth/engine"
)

var _ = register(newDownCommand)

func newDownCommand(pf *projectFlags) *cobra.Command {
	var (
		o   compose.DownOptions
		t   timeoutFlag
		rmi string
	)
	cmd := &cobra.Command{
		Use:         "down [OPTIONS] [SERVICES]",
		Annotations: serviceArgs,
		Short:       "Stop and remove containers, networks",
		RunE: withProjectOrName(pf, func(cmd *cobra.Command, p *types.Project, e *engine.Engine, args []string) error {
			if err := compose.CheckRemoveImages(rmi); err != nil {
				return err
			}
			ao, err := pf.applyOptions(cmd)
			if err != nil {
				return err
			}
			o.Services = args
			o.Timeout = t.value()
			if err := compose.Down(cmd.Context(), e, p, o, ao); err != nil || rmi == "" || ao.DryRun {
				return err
			}
			w := ao.Progress()
			defer w.Close()
			return compose.RemoveServiceImages(cmd.Context(), e, p, rmi, o.Services, w)
		}),
	}
	cmd.Flags().BoolVarP(&o.Volumes, "volumes", "v", false, "remove named volumes declared in the volumes section, and orphans that could hold them")
	cmd.Flags().BoolVar(&o.RemoveOrphans, "remove-orphans", envBool("COMPOSE_REMOVE_ORPHANS"), "remove containers for services not defined in the compose file")
	cmd.Flags().StringVar(&rmi, "rmi", "", `remove images used by services: "local" or "all"`)
	t.add(cmd)
	return cmd
}
