package main

import (
	"fmt"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/compose"
	"github.com/berth-dev/berth/engine"
)

var _ = register(newExecCommand)

func newExecCommand(pf *projectFlags) *cobra.Command {
	var (
		r        compose.ExecRequest
		noTTY    bool
		detachIn bool
	)
	cmd := &cobra.Command{
		Use:   "exec [OPTIONS] SERVICE COMMAND [ARGS...]",
		Short: "Execute a command in a running container",
		Args:  cobra.MinimumNArgs(2),
		RunE: withProject(pf, false, func(cmd *cobra.Command, p *types.Project, e *engine.Engine, args []string) error {
			if detachIn {
				return fmt.Errorf("exec --detach is not supported yet: %w", errdefs.ErrNotImplemented)
			}
			r.Service, r.Args = args[0], args[1:]
			r.Stdin, r.Stdout, r.Stderr = cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()
			// No terminal support yet: -T is the only mode, and accepted.
			_ = noTTY
			code, err := compose.Exec(cmd.Context(), e, p, r)
			if err != nil {
				return err
			}
			if code != 0 {
				return exitError{code: code}
			}
			return nil
		}),
	}
	cmd.Flags().SetInterspersed(false)
	cmd.Flags().BoolVarP(&noTTY, "no-TTY", "T", false, "disable pseudo-TTY allocation (the only mode for now)")
	cmd.Flags().BoolVarP(&detachIn, "detach", "d", false, "not supported yet")
	cmd.Flags().StringArrayVarP(&r.Env, "env", "e", nil, "set environment variables")
	cmd.Flags().StringVarP(&r.User, "user", "u", "", "run the command as this user")
	cmd.Flags().StringVarP(&r.WorkingDir, "workdir", "w", "", "working directory for the command")
	cmd.Flags().IntVar(&r.Index, "index", 1, "index of the container if the service has several replicas")
	return cmd
}
