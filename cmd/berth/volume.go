package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/cmd/internal/table"
	"github.com/berth-dev/berth/compose"
)

var _ = register(newVolumeCommand)

func newVolumeCommand(*projectFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "volume", Short: "Manage volumes"}
	cmd.AddCommand(newVolumeLsCommand(), newVolumeInspectCommand(), newVolumeCreateCommand(), newVolumeRmCommand(), newVolumePruneCommand())
	return cmd
}

// volumeList is docker volume ls's output.
var volumeList = table.List[compose.VolumeSummary]{
	Table:   "{{.Driver}}\t{{.Name}}",
	Headers: map[string]string{"Name": "VOLUME NAME"},
	ID:      func(v compose.VolumeSummary) string { return v.Name },
}

func newVolumeLsCommand() *cobra.Command {
	var (
		quiet   bool
		format  string
		filters []string
	)
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List volumes",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var f compose.VolumeFilter
			for _, kv := range filters {
				k, v, _ := strings.Cut(kv, "=")
				switch k {
				case "name":
					f.Name = v
				case "label":
					f.Label = v
				case "dangling":
					b, err := strconv.ParseBool(v)
					if err != nil {
						return fmt.Errorf("--filter %q: want dangling=true or false: %w", kv, errdefs.ErrInvalidArgument)
					}
					f.Dangling = &b
				default:
					return fmt.Errorf("--filter %q: supported filters are name, label and dangling: %w", kv, errdefs.ErrInvalidArgument)
				}
			}
			e, err := openEngine(cmd.Context())
			if err != nil {
				return err
			}
			vols, err := compose.Volumes(cmd.Context(), e, f)
			if err != nil {
				return err
			}
			return volumeList.Write(cmd.OutOrStdout(), quiet, format, vols)
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only display volume names")
	cmd.Flags().StringVar(&format, "format", "table", "format the output: table, json or a Go template")
	cmd.Flags().StringArrayVarP(&filters, "filter", "f", nil, "filter output (name=, label=, dangling=)")
	return cmd
}

func newVolumeInspectCommand() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] VOLUME [VOLUME...]",
		Short: "Display detailed information on one or more volumes",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine(cmd.Context())
			if err != nil {
				return err
			}
			vols, err := compose.InspectVolumes(cmd.Context(), e, args)
			if err != nil {
				return err
			}
			if format != "" {
				return table.Rows(cmd.OutOrStdout(), format, "", vols)
			}
			b, err := json.MarshalIndent(vols, "", "    ")
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), string(b))
			return err
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "format the output using a Go template")
	return cmd
}

func newVolumeCreateCommand() *cobra.Command {
	var labels, opts []string
	var driver string
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] [VOLUME]",
		Short: "Create a volume",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if driver != "local" {
				return fmt.Errorf("volume driver %q is not supported; only local: %w", driver, errdefs.ErrNotImplemented)
			}
			e, err := openEngine(cmd.Context())
			if err != nil {
				return err
			}
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			name, err = compose.CreateVolume(cmd.Context(), e, name, keyValues(labels), keyValues(opts))
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), name)
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&labels, "label", nil, "set metadata for a volume")
	cmd.Flags().StringArrayVarP(&opts, "opt", "o", nil, "set driver specific options (type=none, o=bind, device=/path)")
	cmd.Flags().StringVarP(&driver, "driver", "d", "local", "specify volume driver name")
	return cmd
}

func newVolumeRmCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "rm VOLUME [VOLUME...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more volumes; a volume in use is refused",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine(cmd.Context())
			if err != nil {
				return err
			}
			if err := compose.RemoveVolumes(cmd.Context(), e, args); err != nil {
				return err
			}
			for _, a := range args {
				fmt.Fprintln(cmd.OutOrStdout(), a)
			}
			return nil
		},
	}
	// Docker's -f forces removal of a volume in use; Berth never removes
	// one, so the flag only keeps scripts working.
	cmd.Flags().BoolP("force", "f", false, "accepted; a volume in use is still refused")
	return cmd
}

func newVolumePruneCommand() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused anonymous volumes (all unused ones with -a)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, err := openEngine(cmd.Context())
			if err != nil {
				return err
			}
			removed, err := compose.PruneVolumes(cmd.Context(), e, all)
			if len(removed) > 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "Deleted Volumes:")
				for _, v := range removed {
					fmt.Fprintln(cmd.OutOrStdout(), v)
				}
			}
			return err
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "remove all unused volumes, not just anonymous ones")
	cmd.Flags().BoolP("force", "f", false, "do not prompt for confirmation (Berth never prompts)")
	return cmd
}

// keyValues reads KEY=VALUE flags into a map.
func keyValues(kvs []string) map[string]string {
	if len(kvs) == 0 {
		return nil
	}
	out := map[string]string{}
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		out[k] = v
	}
	return out
}
