package main

import (
	"fmt"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/compose"
	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/engine/runtime"
)

var _ = register(newRunCommand)

func newRunCommand(pf *projectFlags) *cobra.Command {
	var (
		r          compose.RunRequest
		entrypoint string
		noTTY, tty bool
	)
	cmd := &cobra.Command{
		Use:         "run [OPTIONS] SERVICE [COMMAND] [ARGS...]",
		Annotations: serviceArg,
		Short:       "Run a one-off command on a service",
		Args:        cobra.MinimumNArgs(1),
		RunE: withProject(pf, true, func(cmd *cobra.Command, p *types.Project, e *engine.Engine, args []string) error {
			fl := cmd.Flags()
			// As docker compose run: a terminal when stdout is one (and
			// stdin too, for an interactive run), unless -T; -t asks for
			// one whatever they are.
			switch {
			case fl.Changed("tty") && fl.Changed("no-TTY"):
				return fmt.Errorf("run: --tty and --no-TTY can't be used together: %w", errdefs.ErrInvalidArgument)
			case fl.Changed("tty"):
				noTTY = !tty
			case !fl.Changed("no-TTY") && r.Interactive && !isTerminal(cmd.InOrStdin()):
				noTTY = true
			}
			r.TTY = !noTTY
			if r.Pull == "policy" {
				r.Pull = "" // each service's pull_policy
			}
			r.Service, r.Command = args[0], args[1:]
			if fl.Changed("entrypoint") {
				r.Entrypoint = &entrypoint
			}
			ao, err := pf.applyOptions(cmd)
			if err != nil {
				return err
			}
			r.ApplyOptions = ao
			r.Session = func(tty, openStdin bool) (compose.AttachSession, error) {
				s, err := openSession(cmd, tty, openStdin, runtime.DefaultDetachKeys)
				if err != nil {
					return compose.AttachSession{}, err
				}
				return s.attachSession(cmd), nil
			}
			return sessionExit(compose.Run(cmd.Context(), e, p, r))
		}),
	}
	fl := cmd.Flags()
	fl.SetInterspersed(false)
	fl.BoolVarP(&r.Detach, "detach", "d", false, "run container in background and print container name")
	fl.BoolVar(&r.Remove, "rm", false, "automatically remove the container when it exits")
	fl.StringArrayVarP(&r.Env, "env", "e", nil, "set environment variables")
	fl.StringArrayVarP(&r.Volumes, "volume", "v", nil, "bind mount a volume")
	fl.StringArrayVarP(&r.Ports, "publish", "p", nil, "publish a container's port(s) to the host")
	fl.StringArrayVarP(&r.Labels, "label", "l", nil, "add or override a label")
	fl.StringVar(&r.Name, "name", "", "assign a name to the container")
	fl.StringVar(&entrypoint, "entrypoint", "", "override the entrypoint of the image")
	fl.StringVarP(&r.WorkingDir, "workdir", "w", "", "working directory inside the container")
	fl.StringVarP(&r.User, "user", "u", "", "run as specified username or uid")
	fl.BoolVar(&r.ServicePorts, "service-ports", false, "run command with all the service's ports enabled and mapped to the host")
	fl.BoolVar(&r.UseAliases, "use-aliases", false, "use the service's network aliases in the network(s) the container connects to")
	fl.BoolVar(&r.NoDeps, "no-deps", false, "don't start linked services")
	fl.BoolVarP(&noTTY, "no-TTY", "T", !isTerminal(cmd.OutOrStdout()), "disable pseudo-TTY allocation (default: auto-detected)")
	fl.BoolVarP(&r.Interactive, "interactive", "i", true, "keep STDIN open even if not attached")
	fl.BoolVarP(&tty, "tty", "t", true, "allocate a pseudo-TTY")
	fl.BoolVar(&r.Build, "build", false, "build image before starting container")
	fl.StringVar(&r.Pull, "pull", "policy", `pull image before running ("always"|"missing"|"never"|"policy")`)
	fl.BoolVar(&r.QuietPull, "quiet-pull", false, "pull without printing progress information")
	return cmd
}
