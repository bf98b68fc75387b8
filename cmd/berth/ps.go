package main

import (
	"fmt"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/compose"
	"github.com/berth-dev/berth/engine"
)

var _ = register(newPsCommand)

// psList is docker compose ps's output.
var psList = listing[compose.ContainerSummary]{
	table: "{{.Name}}\t{{.Image}}\t{{.Command}}\t{{.Service}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}",
	id:    func(r compose.ContainerSummary) string { return r.ID },
}

func newPsCommand(pf *projectFlags) *cobra.Command {
	var (
		o                        compose.PsOptions
		quiet, services, noTrunc bool
		format, filter           string
	)
	cmd := &cobra.Command{
		Use:         "ps [OPTIONS] [SERVICE...]",
		Annotations: serviceArgs,
		Short:       "List containers",
		RunE: withProjectOrName(pf, func(cmd *cobra.Command, p *types.Project, e *engine.Engine, args []string) error {
			if filter != "" {
				key, value, _ := strings.Cut(filter, "=")
				if key != "status" {
					return fmt.Errorf("ps --filter %q: only status=... is supported: %w", filter, errdefs.ErrInvalidArgument)
				}
				o.Status = append(o.Status, value)
			}
			o.Services = args
			rows, err := compose.Ps(cmd.Context(), e, p, o)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if services && !quiet {
				seen := map[string]bool{}
				for _, r := range rows {
					if !seen[r.Service] {
						seen[r.Service] = true
						fmt.Fprintln(out, r.Service)
					}
				}
				return nil
			}
			if !noTrunc && format != "json" {
				for i := range rows {
					rows[i].Command = fmt.Sprintf("%q", truncate(rows[i].Command, 20))
				}
			}
			return psList.write(out, quiet, format, rows)
		}),
	}
	fl := cmd.Flags()
	fl.BoolVarP(&o.All, "all", "a", false, "show all stopped containers (including those created by the run command)")
	fl.BoolVarP(&quiet, "quiet", "q", false, "only display IDs")
	fl.BoolVar(&services, "services", false, "display services")
	fl.BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	fl.BoolVar(&o.Orphans, "orphans", true, "include orphaned services (not declared by project)")
	fl.StringArrayVar(&o.Status, "status", nil, "filter services by status: paused, restarting, removing, running, dead, created, exited")
	fl.StringVar(&filter, "filter", "", "filter services by a property (supported filters: status)")
	fl.StringVar(&format, "format", "table", "format output using a custom template: 'table', 'table TEMPLATE', 'json', 'TEMPLATE'")
	return cmd
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
