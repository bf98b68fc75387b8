package loadcache

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/dotenv"
)

// DotEnvCompose returns the COMPOSE_* variables that the project's .env
// (or the --env-file files) sets and the process environment does not,
// read as docker compose reads them before its flags take their defaults
// from the environment: .env in the project directory, else in the first
// -f file's directory, else in the working directory; none with
// COMPOSE_DISABLE_ENV_FILE. A file that does not parse is left to the
// load to report. (It reads the files the way compose-go's options do,
// without linking compose-go's loader: the lean helper calls it.)
func DotEnvCompose(o Options) map[string]string {
	files := o.EnvFiles
	if len(files) == 0 {
		if off, _ := strconv.ParseBool(os.Getenv("COMPOSE_DISABLE_ENV_FILE")); off {
			return nil
		}
		dir := o.ProjectDir
		if dir == "" && len(o.ConfigPaths) > 0 && o.ConfigPaths[0] != "-" {
			dir = filepath.Dir(o.ConfigPaths[0])
		}
		if !filepath.IsAbs(dir) && o.WorkingDir != "" {
			dir = filepath.Join(o.WorkingDir, dir)
		}
		p := filepath.Join(dir, ".env")
		if fi, err := os.Stat(p); err != nil || fi.IsDir() {
			return nil
		}
		files = []string{p}
	}
	env := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	vars, err := dotenv.GetEnvFromFile(env, files)
	if err != nil {
		return nil
	}
	out := map[string]string{}
	for k, v := range vars {
		if _, set := os.LookupEnv(k); !set && strings.HasPrefix(k, "COMPOSE_") {
			out[k] = v
		}
	}
	return out
}
