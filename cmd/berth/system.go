package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/compose"
)

var _ = register(newSystemCommand)

func newSystemCommand(*projectFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "system", Short: "Manage Berth"}
	cmd.AddCommand(newSystemPruneCommand(), newSystemBootCommand())
	return cmd
}

// newSystemBootCommand is what the berth-boot systemd unit runs: no daemon
// survives a reboot, so this brings back what Docker's daemon would.
func newSystemBootCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "boot",
		Short: "Start the containers of every project that restart at boot (restart: always, or unless-stopped and not stopped)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, err := openEngine(cmd.Context())
			if err != nil {
				return err
			}
			started, err := e.Boot(cmd.Context())
			for _, name := range started {
				fmt.Fprintln(cmd.OutOrStdout(), name)
			}
			return err
		},
	}
}

func newSystemPruneCommand() *cobra.Command {
	var o compose.SystemPruneOptions
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove stopped containers, unused networks, dangling images (and anonymous volumes with --volumes)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, err := openEngine(cmd.Context())
			if err != nil {
				return err
			}
			out, err := compose.SystemPrune(cmd.Context(), e, o)
			w := cmd.OutOrStdout()
			for _, sec := range []struct {
				title string
				names []string
			}{{"Deleted Containers:", out.Containers}, {"Deleted Networks:", out.Networks}, {"Deleted Volumes:", out.Volumes}} {
				if len(sec.names) == 0 {
					continue
				}
				fmt.Fprintln(w, sec.title)
				for _, n := range sec.names {
					fmt.Fprintln(w, n)
				}
				fmt.Fprintln(w)
			}
			printPrunedImages(w, out.Images, out.Layers)
			return err
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.All, "all", "a", false, "remove all images no container uses, not just dangling ones")
	f.BoolVar(&o.Volumes, "volumes", false, "also remove anonymous volumes no container mounts")
	f.BoolP("force", "f", false, "do not prompt for confirmation (Berth never prompts)")
	return cmd
}
