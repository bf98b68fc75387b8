package main

import (
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/compose"
	"github.com/berth-dev/berth/engine"
)

var _ = register(newRunCommand)

func newRunCommand(pf *projectFlags) *cobra.Command {
	var (
		r          compose.RunRequest
		entrypoint string
		noTTY      bool
	)
	cmd := &cobra.Command{
		Use:         "run [OPTIONS] SERVICE [COMMAND] [ARGS...]",
		Annotations: map[string]string{targetsAnnotation: "first"},
		Short:       "Run a one-off command on a service",
		Args:        cobra.MinimumNArgs(1),
		RunE: withProject(pf, true, func(cmd *cobra.Command, p *types.Project, e *engine.Engine, args []string) error {
			if err := notYet(cmd, "build", "pull", "quiet-pull", "tty", "interactive"); err != nil {
				return err
			}
			_ = noTTY // no terminal yet: -T is the only mode
			r.Service, r.Command = args[0], args[1:]
			if cmd.Flags().Changed("entrypoint") {
				r.Entrypoint = &entrypoint
			}
			ao, err := pf.applyOptions(cmd)
			if err != nil {
				return err
			}
			r.ApplyOptions = ao
			code, err := compose.Run(cmd.Context(), e, p, r)
			if err != nil {
				return err
			}
			if code != 0 {
				return exitError{code: code}
			}
			return nil
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
	fl.BoolVarP(&noTTY, "no-TTY", "T", false, "disable pseudo-TTY allocation (the only mode for now)")
	fl.BoolP("interactive", "i", false, "keep STDIN open even if not attached (not yet)")
	fl.BoolP("tty", "t", false, "allocate a pseudo-TTY (not yet)")
	fl.Bool("build", false, "build image before starting container (not yet)")
	fl.String("pull", "policy", `pull image before running ("always"|"missing"|"never") (not yet)`)
	fl.Bool("quiet-pull", false, "pull without printing progress information (not yet)")
	return cmd
}
