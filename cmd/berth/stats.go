package main

import (
	"fmt"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/cmd/internal/table"
	"github.com/berth-dev/berth/compose"
	"github.com/berth-dev/berth/engine"
)

var _ = register(newStatsCommand)

// statsTable is docker stats' default table.
const statsTable = "{{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"

func newStatsCommand(pf *projectFlags) *cobra.Command {
	var (
		o       compose.StatsOptions
		format  string
		noTrunc bool
	)
	cmd := &cobra.Command{
		Use:         "stats [OPTIONS] [SERVICE]",
		Annotations: serviceArg,
		Short:       "Display a live stream of container(s) resource usage statistics",
		RunE: withProjectOrName(pf, func(cmd *cobra.Command, p *types.Project, e *engine.Engine, args []string) error {
			o.Services = args
			out := cmd.OutOrStdout()
			// A terminal gets one table in place, refreshed; anything else
			// gets the tables one after the other.
			clear := !o.NoStream && isTerminal(out) && format == "table"
			return compose.Stats(cmd.Context(), e, p, o, func(rows []compose.StatsRow) error {
				if !noTrunc {
					for i := range rows {
						rows[i].ID = rows[i].ID[:min(12, len(rows[i].ID))]
					}
				}
				if clear {
					fmt.Fprint(out, "\033[2J\033[H")
				}
				return table.Rows(out, format, statsTable, rows)
			})
		}),
	}
	f := cmd.Flags()
	f.BoolVarP(&o.All, "all", "a", false, "show all containers (default shows just running)")
	f.BoolVar(&o.NoStream, "no-stream", false, "disable streaming stats and only pull the first result")
	f.BoolVar(&noTrunc, "no-trunc", false, "do not truncate output")
	f.StringVar(&format, "format", "table", "format output using a custom template: 'table', 'table TEMPLATE', 'json', 'TEMPLATE'")
	return cmd
}
