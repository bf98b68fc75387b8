package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"
	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/compose"
	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/internal/names"
)

// openEngine opens the engine at $BERTH_ROOT / $BERTH_RUN.
func openEngine(ctx context.Context) (*engine.Engine, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("berth needs root (namespaces, cgroups, bridges): %w", errdefs.ErrFailedPrecondition)
	}
	return engine.Open(ctx, engine.OptionsFromEnv())
}

// loadProject loads the project and prints unsupported-key warnings.
func loadProject(cmd *cobra.Command, pf *projectFlags) (*types.Project, error) {
	p, err := compose.Load(cmd.Context(), pf.loadOptions())
	if err != nil {
		return nil, err
	}
	for _, w := range compose.Unsupported(p) {
		fmt.Fprintln(cmd.ErrOrStderr(), "WARN", w)
	}
	return p, nil
}

// loadProjectOrName is for verbs that work from state alone (down, ps,
// logs): with no compose file but a project name, they act on what the
// labels say belongs to that project.
func loadProjectOrName(cmd *cobra.Command, pf *projectFlags) (p *types.Project, fileless bool, err error) {
	p, err = loadProject(cmd, pf)
	if err == nil {
		return p, false, nil
	}
	name := pf.name
	if name == "" {
		name = os.Getenv("COMPOSE_PROJECT_NAME")
	}
	if name == "" || len(pf.files) > 0 || !errors.Is(err, errdefs.ErrNotFound) {
		return nil, false, err
	}
	if nerr := names.Project(name); nerr != nil {
		return nil, false, nerr
	}
	return &types.Project{Name: name, Services: types.Services{}}, true, nil
}

// projectRun is a verb's body once its project is loaded and the engine open.
type projectRun func(cmd *cobra.Command, p *types.Project, e *engine.Engine, args []string) error

// withProject loads the project (needs a compose file) and opens the engine,
// the two steps every project verb starts with, then runs fn.
func withProject(pf *projectFlags, fn projectRun) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		p, err := loadProject(cmd, pf)
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

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isatty.IsTerminal(f.Fd())
}
