package compose

import (
	"os"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/dotenv"
)

// DotEnvCompose returns the COMPOSE_* variables that the project's .env
// (or the --env-file files) sets and the process environment does not,
// read as docker compose reads them before its flags take their defaults
// from the environment: from the project directory, else the first -f
// file's directory, else the working directory. A file that does not
// parse is left to the load to report.
func DotEnvCompose(o LoadOptions) map[string]string {
	po, err := cli.NewProjectOptions(o.ConfigPaths,
		cli.WithWorkingDirectory(o.ProjectDir),
		cli.WithOsEnv,
		cli.WithEnvFiles(o.EnvFiles...),
	)
	if err != nil || len(po.EnvFiles) == 0 {
		return nil
	}
	env, err := dotenv.GetEnvFromFile(po.Environment, po.EnvFiles)
	if err != nil {
		return nil
	}
	out := map[string]string{}
	for k, v := range env {
		if _, set := os.LookupEnv(k); !set && strings.HasPrefix(k, "COMPOSE_") {
			out[k] = v
		}
	}
	return out
}
