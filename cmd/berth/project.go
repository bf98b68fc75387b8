package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"
	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/cmd/internal/fastpath"
	"github.com/berth-dev/berth/compose"
	"github.com/berth-dev/berth/compose/files"
	"github.com/berth-dev/berth/engine"
)

// openEngine opens the engine at $BERTH_ROOT / $BERTH_RUN.
func openEngine(ctx context.Context) (*engine.Engine, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("berth needs root (namespaces, cgroups, bridges): %w", errdefs.ErrFailedPrecondition)
	}
	o := engine.OptionsFromEnv()
	o.Helper = helperPath(o.Run)
	return engine.Open(ctx, o)
}

// loadProject loads the project; warn prints its unsupported-key warnings
// (only the verbs that change the host for it do: up, create, run);
// services are enabled whatever their profiles (see files.Options).
func loadProject(cmd *cobra.Command, pf *projectFlags, warn bool, services ...string) (*types.Project, error) {
	o := pf.loadOptions()
	o.Services = services
	p, warnings, err := files.Load(cmd.Context(), o, compose.Unsupported)
	if err != nil {
		return nil, err
	}
	if warn {
		fastpath.PrintWarnings(cmd.ErrOrStderr(), warnings)
	}
	return p, nil
}

// projectOrName is for verbs that work from state alone (down, ps, logs,
// start, stop, rm), as docker compose's: with -p and no -f the files are not
// read at all and the project is what its containers' labels say; else the
// files are loaded, and when they do not load, COMPOSE_PROJECT_NAME (from
// the environment, else the project directory's .env, as docker compose
// reads it) still names the project.
func projectOrName(cmd *cobra.Command, pf *projectFlags, e *engine.Engine, args []string) (*types.Project, error) {
	if pf.name != "" && len(pf.files) == 0 {
		return compose.ProjectFromState(cmd.Context(), e, pf.name)
	}
	p, err := loadProject(cmd, pf, false, targets(cmd, args)...)
	if err != nil {
		if name := composeEnv("COMPOSE_PROJECT_NAME"); name != "" && len(pf.files) == 0 {
			return compose.ProjectFromState(cmd.Context(), e, name)
		}
		return nil, err
	}
	return p, nil
}

// projectRun is a verb's body once its project is loaded and the engine open.
type projectRun func(cmd *cobra.Command, p *types.Project, e *engine.Engine, args []string) error

// withProject loads the project from its files and opens the engine, the
// two steps every project verb starts with, then runs fn. warn: see
// loadProject.
func withProject(pf *projectFlags, warn bool, fn projectRun) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		p, err := loadProject(cmd, pf, warn, targets(cmd, args)...)
		if err != nil {
			return err
		}
		e, err := openEngine(cmd.Context())
		if err != nil {
			return err
		}
		return fn(cmd, p, e, args)
	}
}

// targetsAnnotation marks the verbs whose arguments name services to
// enable whatever their profiles, as Compose does: "first" (run, exec,
// attach, port: SERVICE then something else) or "all" (up, logs, stop and
// every verb taking [SERVICE...]; scale's SERVICE=N too).
const targetsAnnotation = "berth.targets"

// serviceArgs annotates a verb whose arguments are all services.
var serviceArgs = map[string]string{targetsAnnotation: "all"}

// serviceArg annotates a verb whose first argument is a service.
var serviceArg = map[string]string{targetsAnnotation: "first"}

// targets are the services cmd's arguments name (see targetsAnnotation).
func targets(cmd *cobra.Command, args []string) []string {
	switch cmd.Annotations[targetsAnnotation] {
	case "first":
		if len(args) > 0 {
			return args[:1]
		}
	case "all":
		out := make([]string, len(args))
		for i, a := range args {
			out[i], _, _ = strings.Cut(a, "=") // scale SERVICE=N
		}
		return out
	}
	return nil
}

// withProjectOrName is withProject for the verbs that can work from the
// project's name alone (see projectOrName).
func withProjectOrName(pf *projectFlags, fn projectRun) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		e, err := openEngine(cmd.Context())
		if err != nil {
			return err
		}
		p, err := projectOrName(cmd, pf, e, args)
		if err != nil {
			return err
		}
		return fn(cmd, p, e, args)
	}
}

// timeoutFlag is a -t/--timeout in seconds that is unset unless given.
type timeoutFlag struct{ secs int }

func (t *timeoutFlag) add(cmd *cobra.Command) {
	cmd.Flags().IntVarP(&t.secs, "timeout", "t", -1, "seconds to wait for containers to stop before killing them")
}

func (t *timeoutFlag) value() *time.Duration {
	if t.secs < 0 {
		return nil
	}
	d := time.Duration(t.secs) * time.Second
	return &d
}

// isTerminal says whether v (a reader or writer) is a terminal.
func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	return ok && isatty.IsTerminal(f.Fd())
}

// color says whether output to w is coloured: never when NO_COLOR is set
// (whatever --ansi says, as docker compose does), else --ansi (or
// COMPOSE_ANSI) always or never, and otherwise on a terminal.
func (f *projectFlags) color(w io.Writer) bool {
	if os.Getenv("NO_COLOR") != "" {
		return false
	}
	switch f.ansi {
	case "always":
		return true
	case "never":
		return false
	}
	return isTerminal(w)
}

// envBool reads a boolean environment variable (COMPOSE_REMOVE_ORPHANS=1).
var envBool = fastpath.EnvBool
