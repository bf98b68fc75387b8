package main

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/compose"
	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/engine/runtime"
)

var _ = register(newAttachCommand)

func newAttachCommand(pf *projectFlags) *cobra.Command {
	var (
		r                 compose.AttachRequest
		noStdin, sigProxy bool
		detachKeys        string
	)
	cmd := &cobra.Command{
		Use:         "attach [OPTIONS] SERVICE",
		Annotations: serviceArg,
		Short:       "Attach local standard input, output, and error streams to a service's running container",
		Args:        cobra.ExactArgs(1),
		RunE: withProjectOrName(pf, func(cmd *cobra.Command, p *types.Project, e *engine.Engine, args []string) error {
			r.Service = args[0]
			r.Session = func(tty, openStdin bool) (compose.AttachSession, error) {
				s, err := openSession(cmd, tty, openStdin && !noStdin, detachKeys)
				if err != nil {
					return compose.AttachSession{}, err
				}
				as := s.attachSession(cmd)
				if sigProxy && !s.tty {
					sigs := make(chan os.Signal, 8)
					signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
					as.Signals = sigs
					as.Close = func() { signal.Stop(sigs); s.close() }
				}
				return as, nil
			}
			return sessionExit(compose.Attach(cmd.Context(), e, p, r))
		}),
	}
	f := cmd.Flags()
	f.StringVar(&detachKeys, "detach-keys", runtime.DefaultDetachKeys, "override the key sequence for detaching from a container")
	f.IntVar(&r.Index, "index", 1, "index of the container if service has multiple replicas")
	f.BoolVar(&noStdin, "no-stdin", false, "do not attach STDIN")
	f.BoolVar(&sigProxy, "sig-proxy", true, "proxy all received signals to the process")
	return cmd
}
