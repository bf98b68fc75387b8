package main

import (
	"fmt"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/compose"
	"github.com/berth-dev/berth/engine"
)

var _ = register(newPortCommand)

func newPortCommand(pf *projectFlags) *cobra.Command {
	var o compose.PortOptions
	cmd := &cobra.Command{
		Use:         "port [OPTIONS] SERVICE PRIVATE_PORT",
		Annotations: serviceArg,
		Short:       "Print the public port for a port binding",
		Args:        cobra.ExactArgs(2),
		RunE: withProjectOrName(pf, func(cmd *cobra.Command, p *types.Project, e *engine.Engine, args []string) error {
			o.Service, o.Port = args[0], args[1]
			addr, err := compose.Port(cmd.Context(), e, p.Name, o)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), addr)
			return nil
		}),
	}
	cmd.Flags().StringVar(&o.Protocol, "protocol", "tcp", "tcp or udp")
	cmd.Flags().IntVar(&o.Index, "index", 1, "index of the container if the service has several replicas")
	return cmd
}
