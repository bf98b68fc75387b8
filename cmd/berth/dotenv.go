package main

import (
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/berth-dev/berth/compose"
)

// composeEnvFlags are the flags whose default comes from a COMPOSE_*
// variable (COMPOSE_IGNORE_ORPHANS is read when up plans).
var composeEnvFlags = map[string]string{
	"progress": "COMPOSE_PROGRESS", "ansi": "COMPOSE_ANSI", "parallel": "COMPOSE_PARALLEL_LIMIT",
	"remove-orphans": "COMPOSE_REMOVE_ORPHANS",
}

// applyDotEnv does what docker compose does before a verb runs: the
// COMPOSE_* variables the project's .env (or --env-file) sets, and the
// environment does not, are put in the environment, and the flags the
// command line left alone take their defaults from them.
func applyDotEnv(cmd *cobra.Command, pf *projectFlags) {
	vars := compose.DotEnvCompose(pf.loadOptions())
	if len(vars) == 0 {
		return
	}
	for k, v := range vars {
		os.Setenv(k, v)
	}
	for _, fs := range []*pflag.FlagSet{cmd.Root().Flags(), cmd.Flags()} {
		for name, env := range composeEnvFlags {
			f := fs.Lookup(name)
			if v, ok := vars[env]; ok && f != nil && !f.Changed {
				_ = f.Value.Set(v) // a bad value is reported as the environment's would be
			}
		}
	}
}
