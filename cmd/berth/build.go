package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/compose"
	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/engine/build"
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
		Use:         "build [OPTIONS] [SERVICE...]",
		Annotations: serviceArgs,
		Short:       "Build or rebuild services",
		RunE: withProject(pf, true, func(cmd *cobra.Command, p *types.Project, e *engine.Engine, args []string) error {
			o.Services = args
			var err error
			if o.Args, err = parseBuildArgs(buildArgs); err != nil {
				return err
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

// newImageBuildCommand is Docker's docker build: one image from a context,
// no project.
func newImageBuildCommand(pf *projectFlags) *cobra.Command {
	var (
		o         build.Options
		buildArgs []string
		quiet     bool
	)
	cmd := &cobra.Command{
		Use:   "build [OPTIONS] CONTEXT",
		Short: "Build an image from a Dockerfile",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Context = args[0]
			parsed, err := parseBuildArgs(buildArgs)
			if err != nil {
				return err
			}
			o.Args = map[string]string{}
			for k, v := range parsed {
				if v == nil {
					val, ok := os.LookupEnv(k)
					if !ok {
						continue
					}
					v = &val
				}
				o.Args[k] = *v
			}
			e, err := openEngine(cmd.Context())
			if err != nil {
				return err
			}
			ctx, done, err := withProgress(cmd, pf, quiet)
			if err != nil {
				return err
			}
			id, err := compose.BuildImage(ctx, e, o)
			done()
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), id)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&o.Tags, "tag", "t", nil, "name and optionally a tag in the name:tag format")
	f.StringVarP(&o.Dockerfile, "file", "f", "", "name of the Dockerfile (default: CONTEXT/Dockerfile)")
	f.StringArrayVar(&buildArgs, "build-arg", nil, "set build-time variables")
	f.StringVar(&o.Target, "target", "", "set the target build stage to build")
	f.BoolVar(&o.NoCache, "no-cache", false, "do not use cache when building the image")
	f.BoolVar(&o.Pull, "pull", false, "always attempt to pull a newer version of the image")
	f.StringVar(&o.Network, "network", "", "networking mode for the RUN instructions: default, host or none")
	f.BoolVarP(&quiet, "quiet", "q", false, "suppress the build output and print the image ID on success")
	return cmd
}

// parseBuildArgs reads --build-arg values: KEY=VALUE, or KEY alone for the
// variable of the environment (nil here).
func parseBuildArgs(in []string) (map[string]*string, error) {
	out := map[string]*string{}
	for _, a := range in {
		k, v, ok := strings.Cut(a, "=")
		if k == "" {
			return nil, fmt.Errorf("--build-arg %q: want KEY=VALUE or KEY: %w", a, errdefs.ErrInvalidArgument)
		}
		if ok {
			out[k] = &v
		} else {
			out[k] = nil
		}
	}
	return out, nil
}
