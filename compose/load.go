package compose

// LoadOptions says where a project comes from, as docker compose's global
// flags and environment variables do.
type LoadOptions struct {
	ConfigPaths []string // -f, several allowed; empty means discovery / COMPOSE_FILE
	ProjectName string   // -p; empty means COMPOSE_PROJECT_NAME or the directory name
	ProjectDir  string   // --project-directory
	EnvFiles    []string // --env-file; empty means <project dir>/.env
	Profiles    []string // --profile; empty means COMPOSE_PROFILES
}
