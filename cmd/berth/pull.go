package main

import (
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/compose"
	"github.com/berth-dev/berth/engine"
)

var (
	_ = register(newPullCommand)
	_ = register(newPushCommand)
)

func newPullCommand(pf *projectFlags) *cobra.Command {
	var o compose.PullOptions
	var quiet bool
	cmd := &cobra.Command{
		Use:         "pull [SERVICE...]",
		Annotations: serviceArgs,
		Short:       "Pull service images",
		RunE: withProject(pf, true, func(cmd *cobra.Command, p *types.Project, e *engine.Engine, args []string) error {
			o.Services = args
			ctx, done, err := withProgress(cmd, pf, quiet)
			if err != nil {
				return err
			}
			defer done()
			return compose.Pull(ctx, e, p, o)
		}),
	}
	f := cmd.Flags()
	f.BoolVar(&o.IgnoreFailures, "ignore-pull-failures", false, "pull what it can and ignore images that fail")
	f.BoolVar(&o.IncludeDeps, "include-deps", false, "also pull services declared as dependencies")
	f.StringVar(&o.Policy, "policy", "", "apply a pull policy: missing or always")
	f.BoolVarP(&quiet, "quiet", "q", false, "pull without printing progress information")
	return cmd
}

func newPushCommand(pf *projectFlags) *cobra.Command {
	var o compose.PushOptions
	var quiet bool
	cmd := &cobra.Command{
		Use:         "push [SERVICE...]",
		Annotations: serviceArgs,
		Short:       "Push service images",
		RunE: withProject(pf, true, func(cmd *cobra.Command, p *types.Project, e *engine.Engine, args []string) error {
			o.Services = args
			ctx, done, err := withProgress(cmd, pf, quiet)
			if err != nil {
				return err
			}
			defer done()
			return compose.Push(ctx, e, p, o)
		}),
	}
	f := cmd.Flags()
	f.BoolVar(&o.IgnoreFailures, "ignore-push-failures", false, "push what it can and ignore images that fail")
	f.BoolVar(&o.IncludeDeps, "include-deps", false, "also push images of services declared as dependencies")
	f.BoolVarP(&quiet, "quiet", "q", false, "push without printing progress information")
	return cmd
}
