package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/compose"
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
}

func (f *projectFlags) loadOptions() compose.LoadOptions {
	return compose.LoadOptions{
		ConfigPaths: f.files,
		ProjectName: f.name,
		ProjectDir:  f.projectDir,
		EnvFiles:    f.envFiles,
		Profiles:    f.profiles,
	}
}

func newRootCommand() *cobra.Command {
	pf := &projectFlags{}
	root := &cobra.Command{
		Use:           "berth",
		Short:         "Run Compose projects on Linux with no daemon",
		SilenceUsage:  true,
		SilenceErrors: true,
		// Project flags belong to berth itself and come before the verb, as
		// with docker compose; so "berth -f a.yaml logs -f" means file, then
		// follow, and the verbs keep their own short flags.
		TraverseChildren: true,
	}
	fl := root.Flags()
	fl.StringArrayVarP(&pf.files, "file", "f", nil, "compose configuration files")
	fl.StringVarP(&pf.name, "project-name", "p", "", "project name")
	fl.StringVar(&pf.projectDir, "project-directory", "", "alternate working directory (default: the directory of the first compose file)")
	fl.StringArrayVar(&pf.envFiles, "env-file", nil, "alternate environment files")
	fl.StringArrayVar(&pf.profiles, "profile", nil, "profiles to enable")
	fl.StringVar(&pf.progress, "progress", "auto", "progress output: auto, tty, plain, json or quiet")

	for _, add := range verbs {
		root.AddCommand(add(pf))
	}
	return root
}

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
