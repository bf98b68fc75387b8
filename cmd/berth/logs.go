package main

import (
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/compose"
	"github.com/berth-dev/berth/engine"
)

var _ = register(newLogsCommand)

func newLogsCommand(pf *projectFlags) *cobra.Command {
	var (
		o       compose.LogOptions
		tail    string
		noColor bool

		since, until string
	)
	cmd := &cobra.Command{
		Use:         "logs [OPTIONS] [SERVICE...]",
		Annotations: serviceArgs,
		Short:       "View output from containers",
		RunE: withProjectOrName(pf, func(cmd *cobra.Command, p *types.Project, e *engine.Engine, args []string) error {
			n, err := parseTail(tail)
			if err != nil {
				return err
			}
			o.Tail = n
			if o.Since, err = parseTimeFlag("since", since); err != nil {
				return err
			}
			if o.Until, err = parseTimeFlag("until", until); err != nil {
				return err
			}
			o.Color = !noColor && pf.color(cmd.OutOrStdout())
			return compose.Logs(cmd.Context(), e, p, args, cmd.OutOrStdout(), o)
		}),
	}
	cmd.Flags().BoolVarP(&o.Follow, "follow", "f", false, "follow log output")
	cmd.Flags().StringVarP(&tail, "tail", "n", "all", "number of lines to show from the end of the logs for each container")
	cmd.Flags().BoolVarP(&o.Timestamps, "timestamps", "t", false, "show timestamps")
	cmd.Flags().BoolVar(&noColor, "no-color", false, "produce monochrome output")
	cmd.Flags().BoolVar(&o.NoPrefix, "no-log-prefix", false, "don't print prefix in logs")
	cmd.Flags().StringVar(&since, "since", "", "show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)")
	cmd.Flags().StringVar(&until, "until", "", "show logs before a timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)")
	cmd.Flags().IntVar(&o.Index, "index", 0, "index of the container if service has multiple replicas")
	return cmd
}
