package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/compose"
	"github.com/berth-dev/berth/engine"
)

var (
	_ = register(newUpCommand)
	_ = register(newCreateCommand)
)

// recreateFlags are the flags up and create share to choose what is
// recreated.
type recreateFlags struct {
	force, never, alwaysDeps, noDeps, removeOrphans bool
	scale                                           []string
}

func (f *recreateFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.BoolVar(&f.force, "force-recreate", false, "recreate containers even if their configuration and image haven't changed")
	fl.BoolVar(&f.never, "no-recreate", false, "if containers already exist, don't recreate them")
	fl.BoolVar(&f.alwaysDeps, "always-recreate-deps", false, "recreate dependent containers")
	fl.BoolVar(&f.noDeps, "no-deps", false, "don't start linked services")
	fl.BoolVar(&f.removeOrphans, "remove-orphans", envBool("COMPOSE_REMOVE_ORPHANS"), "remove containers for services not defined in the compose file")
	fl.StringArrayVar(&f.scale, "scale", nil, "scale SERVICE to NUM instances; overrides the scale setting in the compose file")
}

// options turns the flags into up options for the services named.
func (f *recreateFlags) options(services []string) (compose.UpOptions, error) {
	o := compose.UpOptions{Services: services, NoDeps: f.noDeps, RemoveOrphans: f.removeOrphans,
		IgnoreOrphans: composeEnvBool("COMPOSE_IGNORE_ORPHANS")}
	switch {
	case f.force && f.never:
		return o, fmt.Errorf("--force-recreate and --no-recreate are incompatible: %w", errdefs.ErrInvalidArgument)
	case f.alwaysDeps && f.never:
		return o, fmt.Errorf("--always-recreate-deps and --no-recreate are incompatible: %w", errdefs.ErrInvalidArgument)
	case f.force:
		o.Recreate = compose.RecreateForce
	case f.never:
		o.Recreate = compose.RecreateNever
	}
	if f.alwaysDeps {
		o.RecreateDeps = compose.RecreateForce
	}
	for _, s := range f.scale {
		name, num, ok := strings.Cut(s, "=")
		n, err := strconv.Atoi(num)
		if !ok || err != nil {
			return o, fmt.Errorf("--scale %q: want SERVICE=NUM: %w", s, errdefs.ErrInvalidArgument)
		}
		if o.Scale == nil {
			o.Scale = map[string]int{}
		}
		o.Scale[name] = n
	}
	return o, nil
}

func newUpCommand(pf *projectFlags) *cobra.Command {
	var (
		r           compose.UpRequest
		rf          recreateFlags
		t           timeoutFlag
		noColor     bool
		noBuild     bool
		quietPull   bool
		waitTimeout int
	)
	cmd := &cobra.Command{
		Use:         "up [OPTIONS] [SERVICE...]",
		Annotations: serviceArgs,
		Short:       "Create and start containers",
		RunE: withProject(pf, true, func(cmd *cobra.Command, p *types.Project, e *engine.Engine, args []string) error {
			foreground := r.AbortOnExit || r.AbortOnFailure || r.ExitCodeFrom != "" || len(r.Attach) > 0 || len(r.NoAttach) > 0 || r.AttachDependencies
			if (r.Detach || r.Wait) && foreground {
				return fmt.Errorf("-d/--wait cannot be combined with --abort-on-container-exit, --abort-on-container-failure, --exit-code-from or --attach flags: %w", errdefs.ErrInvalidArgument)
			}
			r.WaitTimeout = time.Duration(waitTimeout) * time.Second
			o, err := rf.options(args)
			if err != nil {
				return err
			}
			o.NoStart, o.RenewAnonVolumes = r.Options.NoStart, r.Options.RenewAnonVolumes
			o.Timeout = t.value()
			r.Options = o
			if r.ApplyOptions, err = pf.applyOptions(cmd); err != nil {
				return err
			}
			r.Logs.Color = !noColor && pf.color(cmd.OutOrStdout())
			r.QuietPull = quietPull
			r.NoBuild = noBuild
			err = compose.Up(cmd.Context(), e, p, r)
			if code := compose.ExitStatus(0); errors.As(err, &code) {
				return exitError{code: int(code)}
			}
			return err
		}),
	}
	fl := cmd.Flags()
	fl.BoolVarP(&r.Detach, "detach", "d", false, "run containers in the background")
	fl.BoolVar(&r.Options.NoStart, "no-start", false, "don't start the services after creating them")
	fl.BoolVarP(&r.Options.RenewAnonVolumes, "renew-anon-volumes", "V", false, "recreate anonymous volumes instead of retrieving data from the previous containers")
	fl.BoolVar(&r.Explain, "explain", false, "print the plan, with why each step is needed, before carrying it out")
	fl.BoolVar(&noColor, "no-color", false, "produce monochrome output")
	fl.BoolVar(&r.Logs.NoPrefix, "no-log-prefix", false, "don't print prefix in logs")
	fl.BoolVar(&r.Logs.Timestamps, "timestamps", false, "show timestamps")
	fl.BoolVar(&noBuild, "no-build", false, "don't build an image, even if it's policy")
	fl.BoolVar(&r.Build, "build", false, "build images before starting containers")
	fl.BoolVarP(&r.Watch, "watch", "w", false, "watch source code and rebuild/refresh containers when files are updated")
	fl.StringVar(&r.Pull, "pull", "", `pull image before running ("always"|"missing"|"never"; default: each service's pull_policy)`)
	fl.BoolVar(&quietPull, "quiet-pull", false, "pull without printing progress information")
	fl.BoolVar(&r.Wait, "wait", false, "wait for services to be running|healthy; implies detached mode")
	fl.IntVar(&waitTimeout, "wait-timeout", 0, "maximum duration in seconds to wait for the project to be running|healthy")
	fl.BoolVar(&r.AbortOnExit, "abort-on-container-exit", false, "stops all containers if any container was stopped; incompatible with -d")
	fl.BoolVar(&r.AbortOnFailure, "abort-on-container-failure", false, "stops all containers if any container exited with failure; incompatible with -d")
	fl.StringVar(&r.ExitCodeFrom, "exit-code-from", "", "return the exit code of the selected service container; implies --abort-on-container-exit")
	fl.StringArrayVar(&r.Attach, "attach", nil, "restrict attaching to the specified services")
	fl.StringArrayVar(&r.NoAttach, "no-attach", nil, "do not attach (stream logs) to the specified services")
	fl.BoolVar(&r.AttachDependencies, "attach-dependencies", false, "automatically attach to log output of dependent services")
	rf.add(cmd)
	t.add(cmd)
	return cmd
}

func newCreateCommand(pf *projectFlags) *cobra.Command {
	var (
		rf        recreateFlags
		noBuild   bool
		build     bool
		pull      string
		quietPull bool
	)
	cmd := &cobra.Command{
		Use:         "create [OPTIONS] [SERVICE...]",
		Annotations: serviceArgs,
		Short:       "Creates containers for a service",
		RunE: withProject(pf, true, func(cmd *cobra.Command, p *types.Project, e *engine.Engine, args []string) error {
			o, err := rf.options(args)
			if err != nil {
				return err
			}
			o.NoStart = true
			ao, err := pf.applyOptions(cmd)
			if err != nil {
				return err
			}
			return compose.Up(cmd.Context(), e, p, compose.UpRequest{Options: o, Detach: true, ApplyOptions: ao, Pull: pull, QuietPull: quietPull, Build: build, NoBuild: noBuild})
		}),
	}
	cmd.Flags().BoolVar(&noBuild, "no-build", false, "don't build an image, even if it's policy")
	cmd.Flags().BoolVar(&build, "build", false, "build images before starting containers")
	cmd.Flags().StringVar(&pull, "pull", "", `pull image before running ("always"|"missing"|"never"; default: each service's pull_policy)`)
	cmd.Flags().BoolVar(&quietPull, "quiet-pull", false, "pull without printing progress information")
	rf.add(cmd)
	return cmd
}

// notYet fails when one of the named flags was given: Berth does not do
// what it asks yet, and saying so beats ignoring it.
func notYet(cmd *cobra.Command, flags ...string) error {
	for _, f := range flags {
		if cmd.Flags().Changed(f) {
			return fmt.Errorf("%s --%s is not supported yet: %w", cmd.Name(), f, errdefs.ErrNotImplemented)
		}
	}
	return nil
}
