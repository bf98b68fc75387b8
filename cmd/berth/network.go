package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/cmd/internal/table"
	"github.com/berth-dev/berth/compose"
)

var _ = register(newNetworkCommand)

// newNetworkCommand is docker network's create, ls, inspect, rm and prune,
// for networks outside any project (external: true) and for looking at a
// project's.
func newNetworkCommand(*projectFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "network", Short: "Manage networks"}
	cmd.AddCommand(newNetworkCreateCommand(), newNetworkLsCommand(), newNetworkInspectCommand(), newNetworkRmCommand(), newNetworkPruneCommand())
	return cmd
}

func newNetworkCreateCommand() *cobra.Command {
	var o compose.NetworkCreateOptions
	var labels, opts []string
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] NETWORK",
		Short: "Create a network",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine(cmd.Context())
			if err != nil {
				return err
			}
			o.Name = args[0]
			o.Labels, o.Options = keyValues(labels), keyValues(opts)
			n, err := compose.NetworkCreate(cmd.Context(), e, o)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), n.ID)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&o.Driver, "driver", "d", "bridge", "driver (only bridge)")
	fl.StringArrayVar(&o.Subnets, "subnet", nil, "subnet in CIDR form (one IPv4, one IPv6)")
	fl.StringArrayVar(&o.Gateways, "gateway", nil, "gateway of the subnet of the same position")
	fl.StringArrayVar(&o.IPRanges, "ip-range", nil, "allocate container addresses from this range of the subnet of the same position")
	fl.StringArrayVar(&o.AuxAddress, "aux-address", nil, "reserved address, name=address")
	fl.StringVar(&o.IPAMDriver, "ipam-driver", "default", "IP address management driver (only default)")
	fl.BoolVar(&o.Internal, "internal", false, "no access to or from outside the network")
	fl.BoolVar(&o.IPv6, "ipv6", false, "enable IPv6")
	fl.BoolVar(&o.Attachable, "attachable", false, "accepted; any Berth network can be joined")
	fl.StringArrayVar(&labels, "label", nil, "metadata, key=value")
	fl.StringArrayVarP(&opts, "opt", "o", nil, "driver options, key=value")
	return cmd
}

// networkList is docker network ls's output.
var networkList = table.List[compose.NetworkSummary]{
	Table:   "{{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}",
	Headers: map[string]string{"ID": "NETWORK ID"},
	ID:      func(r compose.NetworkSummary) string { return r.ID },
}

func newNetworkLsCommand() *cobra.Command {
	var quiet bool
	var format string
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List networks",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine(cmd.Context())
			if err != nil {
				return err
			}
			rows, err := compose.NetworkList(cmd.Context(), e)
			if err != nil {
				return err
			}
			return networkList.Write(cmd.OutOrStdout(), quiet, format, rows)
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only display network IDs")
	cmd.Flags().StringVar(&format, "format", "table", "format output: 'table', 'json' or a Go template")
	return cmd
}

func newNetworkInspectCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "inspect NETWORK...",
		Short: "Display detailed information on networks",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine(cmd.Context())
			if err != nil {
				return err
			}
			res, err := compose.NetworkInspect(cmd.Context(), e, args)
			if err != nil {
				return err
			}
			b, err := json.MarshalIndent(res, "", "    ")
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), string(b))
			return nil
		},
	}
}

func newNetworkRmCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "rm NETWORK...",
		Aliases: []string{"remove"},
		Short:   "Remove networks",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine(cmd.Context())
			if err != nil {
				return err
			}
			if err := compose.NetworkRemove(cmd.Context(), e, args); err != nil {
				return err
			}
			for _, n := range args {
				fmt.Fprintln(cmd.OutOrStdout(), n)
			}
			return nil
		},
	}
}

func newNetworkPruneCommand() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all networks no container uses",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine(cmd.Context())
			if err != nil {
				return err
			}
			removed, err := compose.NetworkPrune(cmd.Context(), e)
			if len(removed) > 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "Deleted Networks:")
				for _, n := range removed {
					fmt.Fprintln(cmd.OutOrStdout(), n)
				}
			}
			return err
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "accepted; Berth never prompts")
	return cmd
}
