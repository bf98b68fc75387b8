package main

import (
	"errors"
	"os"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/compose"
	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/engine/runtime"
)

var _ = register(newExecCommand)

// execFlags are docker compose exec's flags.
type execFlags struct {
	noTTY, tty  bool
	interactive bool
	detachKeys  string
}

func newExecCommand(pf *projectFlags) *cobra.Command {
	var (
		r  compose.ExecRequest
		fl execFlags
	)
	cmd := &cobra.Command{
		Use:         "exec [OPTIONS] SERVICE COMMAND [ARGS...]",
		Annotations: serviceArg,
		Short:       "Execute a command in a running container",
		Args:        cobra.MinimumNArgs(2),
		RunE: withProject(pf, false, func(cmd *cobra.Command, p *types.Project, e *engine.Engine, args []string) error {
			r.Service, r.Args = args[0], args[1:]
			// -t (as in docker exec -it) asks for a terminal even when
			// stdout is not one; -T, given too, wins, as in Compose.
			if f := cmd.Flags(); f.Changed("tty") && !f.Changed("no-TTY") {
				fl.noTTY = !fl.tty
			}
			session, err := openSession(cmd, !fl.noTTY, fl.interactive && !r.Detach, fl.detachKeys)
			if err != nil {
				return err
			}
			defer session.close()
			r.ExecOptions.TTY = session.tty
			r.Stdout, r.Stderr = cmd.OutOrStdout(), cmd.ErrOrStderr()
			if session.stdin != nil {
				r.Stdin = session.stdin
			}
			r.ConsoleSize, r.Resize, r.DetachKeys = session.size, session.resizes, session.keys
			return sessionExit(compose.Exec(cmd.Context(), e, p, r))
		}),
	}
	f := cmd.Flags()
	f.SetInterspersed(false)
	// As docker compose does, a terminal is allocated when stdout is one.
	f.BoolVarP(&fl.noTTY, "no-TTY", "T", !isTerminal(cmd.OutOrStdout()), "disable pseudo-TTY allocation (default: allocate when stdout is a terminal)")
	f.BoolVarP(&fl.interactive, "interactive", "i", true, "keep STDIN open")
	_ = f.MarkHidden("interactive")
	f.BoolVarP(&fl.tty, "tty", "t", true, "allocate a pseudo-TTY (the default when stdout is a terminal)")
	_ = f.MarkHidden("tty")
	f.BoolVarP(&r.Detach, "detach", "d", false, "run the command in the background")
	f.BoolVar(&r.Privileged, "privileged", false, "give extended privileges to the process")
	f.StringArrayVarP(&r.Env, "env", "e", nil, "set environment variables")
	f.StringVarP(&r.User, "user", "u", "", "run the command as this user")
	f.StringVarP(&r.WorkingDir, "workdir", "w", "", "working directory for the command")
	f.IntVar(&r.Index, "index", 1, "index of the container if the service has several replicas")
	f.StringVar(&fl.detachKeys, "detach-keys", runtime.DefaultDetachKeys, "key sequence for detaching")
	return cmd
}

// session is the CLI's side of an interactive process: its input, and the
// terminal when there is one.
type session struct {
	tty     bool
	stdin   *os.File
	size    *runtime.WindowSize
	resizes chan runtime.WindowSize
	keys    []byte
	term    *terminal
}

// openSession decides what stdio a session gets. A terminal is used only
// when asked for and stdin is one; detach keys apply only then.
func openSession(cmd *cobra.Command, wantTTY, stdin bool, detachKeys string) (*session, error) {
	keys, err := runtime.ParseDetachKeys(detachKeys)
	if err != nil {
		return nil, err
	}
	s := &session{}
	if !stdin {
		return s, nil
	}
	in, ok := cmd.InOrStdin().(*os.File)
	if !ok {
		return s, nil
	}
	s.stdin = in
	if !wantTTY || !isTerminal(in) {
		return s, nil
	}
	t, err := openTerminal(in, os.Stdout)
	if err != nil {
		return nil, err
	}
	s.tty, s.term, s.keys, s.resizes = true, t, keys, t.Resizes
	if ws, ok := windowSize(os.Stdout); ok {
		s.size = &ws
	}
	return s, nil
}

// attachSession is the session as compose's attach and run take it,
// with cmd's output.
func (s *session) attachSession(cmd *cobra.Command) compose.AttachSession {
	as := compose.AttachSession{Close: s.close, AttachOptions: engine.AttachOptions{
		Stdout: cmd.OutOrStdout(), Stderr: cmd.ErrOrStderr(),
		ConsoleSize: s.size, Resize: s.resizes, DetachKeys: s.keys}}
	if s.stdin != nil {
		as.Stdin = s.stdin
	}
	return as
}

func (s *session) close() {
	if s.term != nil {
		s.term.Restore()
	}
}

// sessionExit turns how a session (exec, attach) ended into berth's exit:
// the process's code, nothing when the user detached.
func sessionExit(code int, err error) error {
	switch {
	case errors.Is(err, runtime.ErrDetached):
		return nil
	case err != nil && code > 0:
		return exitError{code: code, err: err}
	case err != nil:
		return err
	case code != 0:
		return exitError{code: code}
	}
	return nil
}
