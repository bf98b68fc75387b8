package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/compose"
	"github.com/berth-dev/berth/engine"
)

var (
	_ = register(newBuildCommand)
	_ = register(newBuilderCommand)
)

func newBuildCommand(pf *projectFlags) *cobra.Command {
	var (
		o         compose.BuildOptions
		buildArgs []string
	)
	cmd := &cobra.Command{
		Use:   "build [OPTIONS] [SERVICE...]",
		Short: "Build or rebuild services",
		RunE: withProject(pf, true, func(cmd *cobra.Command, p *types.Project, e *engine.Engine, args []string) error {
			o.Services = args
			o.Args = map[string]*string{}
			for _, a := range buildArgs {
				k, v, ok := strings.Cut(a, "=")
				if k == "" {
					return fmt.Errorf("--build-arg %q: want KEY=VALUE or KEY: %w", a, errdefs.ErrInvalidArgument)
				}
				if ok {
					o.Args[k] = &v
				} else {
					o.Args[k] = nil
				}
			}
			ctx, done, err := withProgress(cmd, pf, o.Quiet)
			if err != nil {
				return err
			}
			defer done()
			return compose.Build(ctx, e, p, o)
		}),
	}
	f := cmd.Flags()
	f.BoolVar(&o.NoCache, "no-cache", false, "do not use cache when building the image")
	f.BoolVar(&o.Pull, "pull", false, "always attempt to pull a newer version of the image")
	f.StringArrayVar(&buildArgs, "build-arg", nil, "set build-time variables for services")
	f.BoolVarP(&o.Quiet, "quiet", "q", false, "don't print anything to stdout")
	f.BoolVar(&o.WithDependencies, "with-dependencies", false, "also build dependencies (transitively)")
	return cmd
}

func newBuilderCommand(*projectFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "builder", Short: "Manage builds"}
	cmd.AddCommand(newBuilderPruneCommand())
	return cmd
}

func newBuilderPruneCommand() *cobra.Command {
	var (
		all, force bool
		filters    []string
	)
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Remove build cache",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_ = force // Berth never asks: -f is there for docker's muscle memory
			_ = all   // Berth's cache has no internal entries: -a prunes the same
			var keep time.Duration
			for _, f := range filters {
				k, v, _ := strings.Cut(f, "=")
				if k != "until" {
					return fmt.Errorf("--filter %q: only until=<duration> is supported: %w", f, errdefs.ErrInvalidArgument)
				}
				d, err := time.ParseDuration(v)
				if err != nil {
					return fmt.Errorf("--filter %q: %v: %w", f, err, errdefs.ErrInvalidArgument)
				}
				keep = d
			}
			e, err := openEngine(cmd.Context())
			if err != nil {
				return err
			}
			n, removed, err := e.PruneBuildCache(cmd.Context(), keep)
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted build cache objects: %d\nTotal reclaimed space: %s\n", n, units.HumanSize(float64(removed.Bytes)))
			return err
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "remove all unused build cache")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	cmd.Flags().StringArrayVar(&filters, "filter", nil, "provide filter values (until=24h)")
	return cmd
}
