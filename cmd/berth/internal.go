package main

import (
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/cmd/internal/daemon"
)

var (
	_ = register(newShimCommand)
	_ = register(newDNSCommand)
)

// newShimCommand is the per-container monitor the engine starts; users do
// not call it. make build's berth runs it from the lean helper instead
// (cmd/berth-helper), with the same code.
func newShimCommand(*projectFlags) *cobra.Command {
	return &cobra.Command{
		Use:    "shim CONFIG|- [RUNDIR]",
		Short:  "Supervise one container (internal)",
		Hidden: true,
		Args:   cobra.RangeArgs(1, 2), // RUNDIR only names the container in ps
		RunE: func(cmd *cobra.Command, args []string) error {
			return daemon.Shim(cmd.Context(), args[0])
		},
	}
}

// newDNSCommand is the shared DNS server the engine starts on demand
// (`dns [--dir DIR] [--ready-fd N]`).
func newDNSCommand(*projectFlags) *cobra.Command {
	return &cobra.Command{
		Use:                "dns",
		Short:              "Serve DNS for Berth networks (internal)",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return daemon.DNS(cmd.Context(), args)
		},
	}
}
