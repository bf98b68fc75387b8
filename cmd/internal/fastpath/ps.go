// Package fastpath holds what berth ps needs once its project is loaded
// (the flags' meaning and the output), shared by berth and by its lean
// helper, which serves ps from the load cache before berth's Go runtime
// starts (front.go, cmd/berth/front_linux.c, docs/performance.md). It
// links no compose-go loader: the helper must not pay its initialisers.
package fastpath

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/cmd/internal/table"
	"github.com/berth-dev/berth/compose"
	"github.com/berth-dev/berth/compose/loadcache"
	"github.com/berth-dev/berth/engine"
)

// LoadOptions are the load options of berth's project flags (-f, -p,
// --project-directory, --env-file, --profile). Loaded models are cached
// under $BERTH_RUN (tmpfs: a reboot empties it); a user who cannot write
// there loads every time.
func LoadOptions(files []string, name, projectDir string, envFiles, profiles []string) loadcache.Options {
	return loadcache.Options{
		ConfigPaths: files,
		ProjectName: name,
		ProjectDir:  projectDir,
		EnvFiles:    envFiles,
		Profiles:    profiles,
		CacheDir:    filepath.Join(engine.OptionsFromEnv().Run, "cache", "load"),
	}
}

// EnvList reads a comma-separated list from the environment
// (COMPOSE_ENV_FILES).
func EnvList(name string) []string {
	return strings.FieldsFunc(os.Getenv(name), func(r rune) bool { return r == ',' })
}

// PsFlags are berth ps's flags but the services.
type PsFlags struct {
	compose.PsOptions
	Quiet, Services, NoTrunc bool
	Format, Filter           string
}

// psList is docker compose ps's output.
var psList = table.List[compose.ContainerSummary]{
	Table: "{{.Name}}\t{{.Image}}\t{{.Command}}\t{{.Service}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}",
	ID:    func(r compose.ContainerSummary) string { return r.ID },
}

// Ps prints berth ps of the services (all when none) of p to out.
func Ps(ctx context.Context, e *engine.Engine, p *types.Project, f PsFlags, services []string, out io.Writer) error {
	o := f.PsOptions
	o.Status = append([]string(nil), o.Status...)
	if f.Filter != "" {
		key, value, _ := strings.Cut(f.Filter, "=")
		if key != "status" {
			return fmt.Errorf("ps --filter %q: only status=... is supported: %w", f.Filter, errdefs.ErrInvalidArgument)
		}
		o.Status = append(o.Status, value)
	}
	o.Services = services
	rows, err := compose.Ps(ctx, e, p, o)
	if err != nil {
		return err
	}
	if f.Services && !f.Quiet {
		var b strings.Builder
		seen := map[string]bool{}
		for _, r := range rows {
			if !seen[r.Service] {
				seen[r.Service] = true
				b.WriteString(r.Service + "\n")
			}
		}
		_, err := io.WriteString(out, b.String())
		return err
	}
	if !f.NoTrunc && f.Format != "json" {
		for i := range rows {
			rows[i].Command = fmt.Sprintf("%q", truncate(rows[i].Command, 20))
		}
	}
	return psList.Write(out, f.Quiet, f.Format, rows)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
