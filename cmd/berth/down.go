package main

import (
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/compose"
)

var _ = register(newDownCommand)

func newDownCommand(pf *projectFlags) *cobra.Command {
	var (
		o compose.DownOptions
		t timeoutFlag
	)
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop and remove containers, networks",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, fileless, err := loadProjectOrName(cmd, pf)
			if err != nil {
				return err
			}
			e, err := openEngine(cmd.Context())
			if err != nil {
				return err
			}
			if fileless {
				o.RemoveOrphans = true // every container is an orphan of an empty project
			}
			return compose.Down(cmd.Context(), e, p, o, t.value(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().BoolVarP(&o.Volumes, "volumes", "v", false, "remove named volumes declared in the volumes section")
	cmd.Flags().BoolVar(&o.RemoveOrphans, "remove-orphans", false, "remove containers for services not defined in the compose file")
	t.add(cmd)
	return cmd
}
