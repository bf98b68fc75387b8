package main

import (
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/cmd/internal/fastpath"
	"github.com/berth-dev/berth/engine"
)

var _ = register(newPsCommand)

// newPsCommand is berth ps; its body is fastpath.Ps, which the lean helper
// runs too when it serves ps from the load cache (front_linux.c).
func newPsCommand(pf *projectFlags) *cobra.Command {
	var f fastpath.PsFlags
	cmd := &cobra.Command{
		Use:         "ps [OPTIONS] [SERVICE...]",
		Annotations: serviceArgs,
		Short:       "List containers",
		RunE: withProjectOrName(pf, func(cmd *cobra.Command, p *types.Project, e *engine.Engine, args []string) error {
			return fastpath.Ps(cmd.Context(), e, p, f, args, cmd.OutOrStdout())
		}),
	}
	fl := cmd.Flags()
	fl.BoolVarP(&f.All, "all", "a", false, "show all stopped containers (including those created by the run command)")
	fl.BoolVarP(&f.Quiet, "quiet", "q", false, "only display IDs")
	fl.BoolVar(&f.Services, "services", false, "display services")
	fl.BoolVar(&f.NoTrunc, "no-trunc", false, "don't truncate output")
	fl.BoolVar(&f.Orphans, "orphans", true, "include orphaned services (not declared by project)")
	fl.StringArrayVar(&f.Status, "status", nil, "filter services by status: paused, restarting, removing, running, dead, created, exited")
	fl.StringVar(&f.Filter, "filter", "", "filter services by a property (supported filters: status)")
	fl.StringVar(&f.Format, "format", "table", "format output using a custom template: 'table', 'table TEMPLATE', 'json', 'TEMPLATE'")
	return cmd
}
