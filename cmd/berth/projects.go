package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/cmd/internal/table"
	"github.com/berth-dev/berth/compose"
	"github.com/berth-dev/berth/engine"
)

var (
	_ = register(newLsCommand)
	_ = register(newImagesCommand)
	_ = register(newVersionCommand)
	_ = register(newScaleCommand)
)

func newLsCommand(*projectFlags) *cobra.Command {
	var (
		o      compose.ListOptions
		quiet  bool
		format string
		filter string
	)
	cmd := &cobra.Command{
		Use:   "ls [OPTIONS]",
		Short: "List running compose projects",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if filter != "" {
				key, value, _ := strings.Cut(filter, "=")
				if key != "name" {
					return fmt.Errorf("ls --filter %q: only name=... is supported: %w", filter, errdefs.ErrInvalidArgument)
				}
				o.Names = value
			}
			e, err := openEngine(cmd.Context())
			if err != nil {
				return err
			}
			rows, err := compose.List(cmd.Context(), e, o)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			switch {
			case quiet:
				for _, r := range rows {
					fmt.Fprintln(out, r.Name)
				}
				return nil
			case format == "json":
				// docker compose ls prints one JSON array.
				if rows == nil {
					rows = []compose.ProjectSummary{}
				}
				b, err := json.Marshal(rows)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintln(out, string(b))
				return err
			}
			return table.Rows(out, format, "{{.Name}}\t{{.Status}}\t{{.ConfigFiles}}", rows)
		},
	}
	cmd.Flags().BoolVarP(&o.All, "all", "a", false, "show all stopped compose projects")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only display project names")
	cmd.Flags().StringVar(&format, "format", "table", "format the output: table, json or a Go template")
	cmd.Flags().StringVar(&filter, "filter", "", "filter output based on conditions provided (name=...)")
	return cmd
}

func newImagesCommand(pf *projectFlags) *cobra.Command {
	var (
		quiet  bool
		format string
	)
	cmd := &cobra.Command{
		Use:         "images [OPTIONS] [SERVICE...]",
		Annotations: serviceArgs,
		Short:       "List images used by the created containers",
		RunE: withProjectOrName(pf, func(cmd *cobra.Command, p *types.Project, e *engine.Engine, args []string) error {
			rows, err := compose.Images(cmd.Context(), e, p, args)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if quiet {
				// As docker compose images -q: each image once, its ID
				// without the algorithm.
				var ids []string
				for _, r := range rows {
					_, id, ok := strings.Cut(r.ID, ":")
					if !ok {
						id = r.ID
					}
					if !slices.Contains(ids, id) {
						ids = append(ids, id)
						fmt.Fprintln(out, id)
					}
				}
				return nil
			}
			type row struct {
				compose.ImageSummary
				ShortID, HumanSize string `json:"-"`
			}
			var images []row
			for _, r := range rows {
				images = append(images, row{r, shortImageID(r.ID), units.HumanSize(float64(r.Size))})
			}
			return table.Rows(out, format, "{{.ContainerName}}\t{{.Repository}}\t{{.Tag}}\t{{.ShortID}}\t{{.HumanSize}}", images)
		}),
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only display IDs")
	cmd.Flags().StringVar(&format, "format", "table", "format the output: table, json or a Go template")
	return cmd
}

func newVersionCommand(*projectFlags) *cobra.Command {
	var (
		short  bool
		format string
	)
	cmd := &cobra.Command{
		Use:   "version [OPTIONS]",
		Short: "Show the Berth version information",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := strings.TrimPrefix(compose.Version, "berth-")
			switch {
			case short:
				fmt.Fprintln(cmd.OutOrStdout(), v)
			case format == "json":
				fmt.Fprintf(cmd.OutOrStdout(), "{\"version\":\"v%s\"}\n", v)
			case format == "" || format == "pretty":
				fmt.Fprintf(cmd.OutOrStdout(), "Berth version v%s\n", v)
			default:
				return fmt.Errorf("version --format %q: use pretty or json: %w", format, errdefs.ErrInvalidArgument)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&short, "short", false, "show only the version number")
	cmd.Flags().StringVarP(&format, "format", "f", "", "format the output: pretty or json")
	return cmd
}

func newScaleCommand(pf *projectFlags) *cobra.Command {
	var noDeps bool
	cmd := &cobra.Command{
		Use:         "scale [SERVICE=REPLICAS...]",
		Annotations: serviceArgs,
		Short:       "Scale services",
		Args:        cobra.MinimumNArgs(1),
		RunE: withProject(pf, true, func(cmd *cobra.Command, p *types.Project, e *engine.Engine, args []string) error {
			rf := recreateFlags{never: true, noDeps: noDeps, scale: args}
			o, err := rf.options(nil)
			if err != nil {
				return err
			}
			o.RecreateDeps = compose.RecreateNever
			for name := range o.Scale {
				o.Services = append(o.Services, name)
			}
			ao, err := pf.applyOptions(cmd)
			if err != nil {
				return err
			}
			return compose.Up(cmd.Context(), e, p, compose.UpRequest{Options: o, Detach: true, ApplyOptions: ao})
		}),
	}
	cmd.Flags().BoolVar(&noDeps, "no-deps", false, "don't start linked services")
	return cmd
}
