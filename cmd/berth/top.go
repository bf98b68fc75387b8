package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/compose"
	"github.com/berth-dev/berth/engine"
)

var _ = register(newTopCommand)

func newTopCommand(pf *projectFlags) *cobra.Command {
	return &cobra.Command{
		Use:         "top [SERVICES...]",
		Annotations: serviceArgs,
		Short:       "Display the running processes",
		RunE: withProjectOrName(pf, func(cmd *cobra.Command, p *types.Project, e *engine.Engine, args []string) error {
			tops, err := compose.Top(cmd.Context(), e, p, args)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			for _, t := range tops {
				fmt.Fprintln(out, t.Name)
				tw := tabwriter.NewWriter(out, 0, 4, 3, ' ', 0)
				fmt.Fprintln(tw, "UID\tPID\tPPID\tC\tSTIME\tTTY\tTIME\tCMD")
				for _, p := range t.Processes {
					fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n", p.User, p.PID, p.PPID, p.CPU,
						psStartTime(p.Started), p.TTY, psCPUTime(p.CPUTime), p.Command)
				}
				tw.Flush()
				fmt.Fprintln(out)
			}
			return nil
		}),
	}
}

// psStartTime is ps's STIME: the time of day for a process of today, the
// date for an older one.
func psStartTime(t time.Time) string {
	now := time.Now()
	if y, m, d := t.Date(); y == now.Year() && m == now.Month() && d == now.Day() {
		return t.Format("15:04")
	}
	return t.Format("Jan02")
}

// psCPUTime is ps's TIME: [DD-]HH:MM:SS.
func psCPUTime(d time.Duration) string {
	s := int(d.Seconds())
	out := fmt.Sprintf("%02d:%02d:%02d", s/3600%24, s/60%60, s%60)
	if days := s / 86400; days > 0 {
		out = fmt.Sprintf("%d-%s", days, out)
	}
	return out
}
