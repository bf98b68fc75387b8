package main

import (
	"encoding/json"
	"fmt"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/compose"
	"github.com/berth-dev/berth/engine"
)

var _ = register(newEventsCommand)

func newEventsCommand(pf *projectFlags) *cobra.Command {
	var (
		asJSON       bool
		since, until string
	)
	cmd := &cobra.Command{
		Use:         "events [OPTIONS] [SERVICE...]",
		Annotations: serviceArgs,
		Short:       "Receive real time events from containers",
		RunE: withProjectOrName(pf, func(cmd *cobra.Command, p *types.Project, e *engine.Engine, args []string) error {
			var o compose.EventOptions
			var err error
			if o.Since, err = parseTimeFlag("since", since); err != nil {
				return err
			}
			if o.Until, err = parseTimeFlag("until", until); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			return compose.Events(cmd.Context(), e, p, args, o, func(ev compose.Event) error {
				if !asJSON {
					_, err := fmt.Fprintln(out, ev)
					return err
				}
				b, err := json.Marshal(ev)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(out, "%s\n", b)
				return err
			})
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "output events as a stream of json objects")
	cmd.Flags().StringVar(&since, "since", "", "show all events created since timestamp")
	cmd.Flags().StringVar(&until, "until", "", "stream events until this timestamp")
	return cmd
}
