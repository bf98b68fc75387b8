package main

import (
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/compose"
	"github.com/berth-dev/berth/engine"
)

var _ = register(newCpCommand)

func newCpCommand(pf *projectFlags) *cobra.Command {
	var r compose.CopyRequest
	cmd := &cobra.Command{
		Use:   "cp [OPTIONS] SERVICE:SRC_PATH DEST_PATH|-\n  berth cp [OPTIONS] SRC_PATH|- SERVICE:DEST_PATH",
		Short: "Copy files/folders between a service container and the local filesystem",
		Args:  cobra.ExactArgs(2),
		RunE: withProjectOrName(pf, func(cmd *cobra.Command, p *types.Project, e *engine.Engine, args []string) error {
			r.Source, r.Dest = args[0], args[1]
			r.Stdin, r.Stdout = cmd.InOrStdin(), cmd.OutOrStdout()
			return compose.Copy(cmd.Context(), e, p, r)
		}),
	}
	f := cmd.Flags()
	f.BoolVarP(&r.Archive, "archive", "a", false, "archive mode (copy all uid/gid information)")
	f.BoolVarP(&r.FollowLink, "follow-link", "L", false, "always follow symbol link in SRC_PATH")
	f.IntVar(&r.Index, "index", 0, "index of the container if service has multiple replicas (default: every one for a copy in, the first for a copy out)")
	f.BoolVar(&r.All, "all", false, "include containers created by the run command")
	return cmd
}
