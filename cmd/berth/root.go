package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/cmd/internal/fastpath"
	"github.com/berth-dev/berth/compose"
	"github.com/berth-dev/berth/compose/files"
	"github.com/berth-dev/berth/compose/progress"
)

// projectFlags are the flags every project verb shares, as docker compose
// spells them.
type projectFlags struct {
	files      []string
	name       string
	projectDir string
	envFiles   []string
	profiles   []string
	progress   string // --progress: see progress.go
	dryRun     bool
	parallel   int
	ansi       string
}

// applyOptions are the global flags that say how a verb carries out its
// plan (--dry-run, --parallel, --progress), with the command's streams.
func (f *projectFlags) applyOptions(cmd *cobra.Command) (compose.ApplyOptions, error) {
	mode, err := f.progressMode()
	if err != nil {
		return compose.ApplyOptions{}, err
	}
	out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
	return compose.ApplyOptions{
		DryRun: f.dryRun, Parallel: f.parallel, Out: out, Err: errOut,
		Progress: func() progress.Writer { return progress.New(errOut, mode) },
	}, nil
}

func (f *projectFlags) loadOptions() files.Options {
	return fastpath.LoadOptions(f.files, f.name, f.projectDir, f.envFiles, f.profiles)
}

func newRootCommand() *cobra.Command { return newRoot(&projectFlags{}) }

// newRoot is berth's command tree, its project flags read into pf.
func newRoot(pf *projectFlags) *cobra.Command {
	root := &cobra.Command{
		Use:           "berth",
		Short:         "Run Compose projects on Linux with no daemon",
		SilenceUsage:  true,
		SilenceErrors: true,
		// Project flags belong to berth itself and come before the verb, as
		// with docker compose; so "berth -f a.yaml logs -f" means file, then
		// follow, and the verbs keep their own short flags.
		TraverseChildren: true,
		PersistentPreRun: func(cmd *cobra.Command, _ []string) { applyDotEnv(cmd, pf) },
	}
	fl := root.Flags()
	fl.StringArrayVarP(&pf.files, "file", "f", nil, "compose configuration files")
	fl.StringVarP(&pf.name, "project-name", "p", "", "project name")
	fl.StringVar(&pf.projectDir, "project-directory", "", "alternate working directory (default: the directory of the first compose file)")
	fl.StringArrayVar(&pf.envFiles, "env-file", envList("COMPOSE_ENV_FILES"), "alternate environment files")
	fl.StringArrayVar(&pf.profiles, "profile", nil, "profiles to enable")
	fl.StringVar(&pf.progress, "progress", envOr("COMPOSE_PROGRESS", "auto"), "progress output: auto, tty, plain, json or quiet")
	fl.StringVar(&pf.ansi, "ansi", envOr("COMPOSE_ANSI", "auto"), `control when to print ANSI control characters ("never"|"always"|"auto")`)
	fl.BoolVar(&pf.dryRun, "dry-run", false, "print what the command would do and change nothing")
	fl.IntVar(&pf.parallel, "parallel", envInt("COMPOSE_PARALLEL_LIMIT", 0), "control max parallelism, -1 for unlimited (default: 32)")

	for _, add := range verbs {
		root.AddCommand(add(pf))
	}
	refuseUnknownVerbs(root)
	return root
}

// refuseUnknownVerbs makes every command that only groups others (berth
// itself, berth image) fail on a verb it does not know, as docker compose
// does: a script must not take "berth pull" printing help for success.
func refuseUnknownVerbs(c *cobra.Command) {
	if c.HasSubCommands() && c.RunE == nil && c.Run == nil {
		c.Args = cobra.ArbitraryArgs
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			return fmt.Errorf("unknown berth command: %q: %w", strings.TrimPrefix(cmd.CommandPath()+" "+args[0], "berth "), errdefs.ErrInvalidArgument)
		}
	}
	for _, sub := range c.Commands() {
		refuseUnknownVerbs(sub)
	}
}

// envOr reads an environment variable, or def when it is unset or empty.
func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// envInt reads an integer environment variable, or def.
var envInt = fastpath.EnvInt

// verbs registers one constructor per file (config.go, up.go, ...), so adding
// a verb adds a file and touches nothing else.
var verbs []func(*projectFlags) *cobra.Command

func register(f func(*projectFlags) *cobra.Command) bool {
	verbs = append(verbs, f)
	return true
}

// execute runs the root command and maps its error to an exit code.
func execute(ctx context.Context, root *cobra.Command, args []string) int {
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	return exitCode(ctx, root.ErrOrStderr(), err)
}

// envList reads a comma-separated list from the environment.
var envList = fastpath.EnvList
