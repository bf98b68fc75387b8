package main

import (
	"os"
	"strconv"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/berth-dev/berth/compose/loadcache"
)

// composeEnvFlags are the flags whose default comes from a COMPOSE_*
// variable (COMPOSE_IGNORE_ORPHANS is read when up plans).
var composeEnvFlags = map[string]string{
	"progress": "COMPOSE_PROGRESS", "ansi": "COMPOSE_ANSI", "parallel": "COMPOSE_PARALLEL_LIMIT",
	"remove-orphans": "COMPOSE_REMOVE_ORPHANS",
}

// dotEnv holds the COMPOSE_* variables the project's .env sets and the
// environment does not (applyDotEnv).
var dotEnv map[string]string

// applyDotEnv does what docker compose does before a verb runs: the
// COMPOSE_* variables the project's .env (or --env-file) sets, and the
// environment does not, count as if set there, so the flags the command
// line left alone take their defaults from them. (They are not put in
// the process environment: the load cache is keyed by it, and the front
// path, which reads the same files, would never find an entry.)
func applyDotEnv(cmd *cobra.Command, pf *projectFlags) {
	dotEnv = loadcache.DotEnvCompose(pf.loadOptions())
	for _, fs := range []*pflag.FlagSet{cmd.Root().Flags(), cmd.Flags()} {
		for name, env := range composeEnvFlags {
			f := fs.Lookup(name)
			if v, ok := dotEnv[env]; ok && f != nil && !f.Changed {
				_ = f.Value.Set(v) // a bad value is ignored, as the environment's would be
			}
		}
	}
}

// composeEnv reads a COMPOSE_* variable from the environment, else from
// the project's .env.
func composeEnv(name string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return dotEnv[name]
}

// composeEnvBool reads a boolean COMPOSE_* variable as composeEnv does.
func composeEnvBool(name string) bool {
	b, _ := strconv.ParseBool(composeEnv(name))
	return b
}
