package fastpath

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mattn/go-isatty"

	"github.com/berth-dev/berth/compose"
	"github.com/berth-dev/berth/compose/loadcache"
	"github.com/berth-dev/berth/engine"
)

// The front path. berth's C constructor (cmd/berth/front_linux.c) hands
// an argv it may serve to the front (cmd/berth-front) before berth's Go
// runtime starts, as
//
//	front front BERTH_EXE ARGV0 ARGS...
//
// and the front calls Serve. Serve answers only a command line it reads
// exactly as berth's flags would (anything else, -h included, is berth's)
// whose project the load cache holds, and prints only once the whole
// answer is made: on any miss or error it prints nothing, and the front
// execs berth back with NoFront set, which turns the constructor off, so
// berth runs the command (and prints its errors) itself.

// NoFront is the environment variable that tells berth's constructor not
// to hand the command over again; berth removes it before Go reads the
// environment, so the load cache sees the same environment either way.
const NoFront = "BERTH_NO_FRONT"

// globals are berth's project flags, as the front reads them.
type globals struct {
	Files, EnvFiles, Profiles []string
	Name, ProjectDir          string
	envFilesSet               bool
}

// Serve runs args (berth's arguments, argv[1:]) when it is a shape the
// front answers and the project is in the load cache: berth ps, and an up
// -d that has nothing to do, with the project's compose file(s). berthExe
// is the berth binary. It reports whether it answered; when not, it has
// written nothing.
func Serve(ctx context.Context, args []string, berthExe string, stdout, stderr io.Writer) bool {
	if os.Geteuid() != 0 {
		return false
	}
	start := time.Now()
	c, ok := Parse(args)
	if !ok {
		return miss("not a command line the front serves")
	}
	p, unsupported, warnings := loadcache.Open(c.Load, loadcache.BinaryID(berthExe)).Get()
	if p == nil {
		return miss("load cache miss")
	}
	loaded := time.Now()
	eo := engine.OptionsFromEnv()
	eo.Exe = berthExe
	if c.Verb == "up" {
		if isTerminal(os.Stderr) {
			return miss("a terminal: up's progress display is berth's")
		}
		// As berth's openEngine: shims run the lean helper, installed
		// next to this binary (cmd/berth/helper.go).
		if exe, err := os.Executable(); err == nil {
			eo.Helper = filepath.Join(filepath.Dir(exe), "berth")
		}
	}
	e, err := engine.Open(ctx, eo)
	if err != nil {
		return miss(err.Error())
	}
	opened := time.Now()
	var out, errOut bytes.Buffer
	errOut.Write(warnings)
	switch c.Verb {
	case "ps":
		err = Ps(ctx, e, p, c.Ps, c.Load.Services, &out)
	case "up":
		PrintWarnings(&errOut, unsupported)
		c.Up.Out, c.Up.Err = &out, &errOut
		err = compose.Up(ctx, e, p, c.Up)
	}
	if err != nil {
		return miss(err.Error())
	}
	stderr.Write(errOut.Bytes())
	stdout.Write(out.Bytes())
	slog.Debug("front: served from the load cache", "verb", c.Verb,
		"load", loaded.Sub(start), "engine", opened.Sub(loaded), c.Verb, time.Since(opened))
	return true
}

// PrintWarnings prints the unsupported-key warnings of a project, as the
// verbs that change the host for it do (up, create, run).
func PrintWarnings(w io.Writer, warnings []string) {
	for _, s := range warnings {
		fmt.Fprintln(w, "WARN", s)
	}
}

// EnvBool reads a boolean environment variable (COMPOSE_REMOVE_ORPHANS=1).
func EnvBool(name string) bool {
	b, _ := strconv.ParseBool(os.Getenv(name))
	return b
}

// isTerminal says whether f is a terminal, as the progress display asks.
func isTerminal(f *os.File) bool {
	return isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
}

// miss logs why the front hands the command back (with BERTH_DEBUG).
func miss(why string) bool {
	slog.Debug("front: back to berth", "why", why)
	return false
}

// valueFlag reads a flag that takes a value, as pflag does: "--name
// VALUE", "--name=VALUE", and for a one-letter short form "-x VALUE" and
// "-xVALUE". It returns the value and how many arguments it used; 0 when
// args[0] is not this flag.
func valueFlag(args []string, long string, short byte) (string, int) {
	a := args[0]
	switch {
	case a == "--"+long || (short != 0 && a == "-"+string(short)):
		if len(args) < 2 {
			return "", 0
		}
		return args[1], 2
	case strings.HasPrefix(a, "--"+long+"="):
		return a[len(long)+3:], 1
	case short != 0 && len(a) > 2 && a[0] == '-' && a[1] == short:
		return a[2:], 1
	}
	return "", 0
}

// Command is a command line the front serves, as berth reads it.
type Command struct {
	Verb string            // ps or up
	Load loadcache.Options // the project flags, and the services named
	Ps   PsFlags           // ps's flags
	Up   compose.UpRequest // up -d's request, but its output
}

// Parse reads a command line the front serves into what berth would read
// from it; ok is false for anything else. The front serves
//
//	berth [PROJECT FLAGS] ps [-a] [-q] [--services] [--no-trunc] [--format F] [--status S] [--filter F] [SERVICE...]
//	berth [PROJECT FLAGS] up -d|--detach [SERVICE...]
//
// with the project's files (not -p alone: berth reads that project from
// the state, not the files), where PROJECT FLAGS are -f, -p,
// --project-directory, --env-file and --profile; up only without the
// variables that steer its progress display (COMPOSE_PROGRESS,
// COMPOSE_ANSI), which berth checks.
func Parse(args []string) (c Command, ok bool) {
	g, rest, ok := parseGlobals(args)
	if !ok || len(rest) == 0 || (g.Name != "" && len(g.Files) == 0) {
		return c, false
	}
	var services []string
	switch c.Verb = rest[0]; c.Verb {
	case "ps":
		c.Ps, services, ok = parsePs(rest[1:])
	case "up":
		services, ok = parseUp(rest[1:])
		ok = ok && os.Getenv("COMPOSE_PROGRESS") == "" && os.Getenv("COMPOSE_ANSI") == ""
		c.Up = compose.UpRequest{
			Detach: true,
			Options: compose.UpOptions{Services: services,
				RemoveOrphans: EnvBool("COMPOSE_REMOVE_ORPHANS"), IgnoreOrphans: EnvBool("COMPOSE_IGNORE_ORPHANS")},
			IfUpToDate: true,
		}
		c.Up.Parallel = EnvInt("COMPOSE_PARALLEL_LIMIT", 0)
	default:
		return c, false
	}
	if !ok {
		return c, false
	}
	c.Load = LoadOptions(g.Files, g.Name, g.ProjectDir, g.EnvFiles, g.Profiles)
	c.Load.Services = services
	if c.Verb == "up" && len(loadcache.DotEnvCompose(c.Load)) > 0 {
		return c, false // .env steers up's flags (berth's applyDotEnv)
	}
	return c, true
}

// EnvInt reads an integer environment variable, or def.
func EnvInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return n
	}
	return def
}

// parseGlobals reads the project flags before the verb; rest starts with
// the verb. ok is false on any other flag (berth's --ansi, --progress,
// --dry-run, --parallel, -h...): berth reads those.
func parseGlobals(args []string) (g globals, rest []string, ok bool) {
	var files, envFiles, profiles []string
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		if v, n := valueFlag(args, "file", 'f'); n > 0 {
			files = append(files, v)
			args = args[n:]
		} else if v, n := valueFlag(args, "project-name", 'p'); n > 0 {
			g.Name = v
			args = args[n:]
		} else if v, n := valueFlag(args, "project-directory", 0); n > 0 {
			g.ProjectDir = v
			args = args[n:]
		} else if v, n := valueFlag(args, "env-file", 0); n > 0 {
			envFiles = append(envFiles, v)
			g.envFilesSet = true
			args = args[n:]
		} else if v, n := valueFlag(args, "profile", 0); n > 0 {
			profiles = append(profiles, v)
			args = args[n:]
		} else {
			return g, nil, false
		}
	}
	g.Files, g.Profiles = files, profiles
	g.EnvFiles = envFiles
	if !g.envFilesSet {
		g.EnvFiles = EnvList("COMPOSE_ENV_FILES")
	}
	return g, args, true
}

// parseUp reads up's arguments: -d or --detach, and services.
func parseUp(args []string) (services []string, ok bool) {
	services = []string{} // as berth's (see parsePs)
	detach := false
	for _, a := range args {
		switch {
		case a == "-d" || a == "--detach":
			detach = true
		case strings.HasPrefix(a, "-") || strings.Contains(a, "="):
			return nil, false
		default:
			services = append(services, a)
		}
	}
	return services, detach
}

// parsePs reads ps's flags and services, interspersed as pflag allows.
// ok is false on anything else (--orphans, -h, "--", a service with "=").
func parsePs(args []string) (f PsFlags, services []string, ok bool) {
	f.Format, f.Orphans = "table", true
	services = []string{} // berth's services are never nil (the load cache's key tells)
	for len(args) > 0 {
		a := args[0]
		if v, n := valueFlag(args, "format", 0); n > 0 {
			f.Format, args = v, args[n:]
			continue
		}
		if v, n := valueFlag(args, "filter", 0); n > 0 {
			f.Filter, args = v, args[n:]
			continue
		}
		if v, n := valueFlag(args, "status", 0); n > 0 {
			f.Status, args = append(f.Status, v), args[n:]
			continue
		}
		args = args[1:]
		switch {
		case a == "--all":
			f.All = true
		case a == "--quiet":
			f.Quiet = true
		case a == "--services":
			f.Services = true
		case a == "--no-trunc":
			f.NoTrunc = true
		case len(a) > 1 && a[0] == '-' && a[1] != '-':
			// -a, -q, -aq, -qa
			for _, c := range a[1:] {
				switch c {
				case 'a':
					f.All = true
				case 'q':
					f.Quiet = true
				default:
					return f, nil, false
				}
			}
		case strings.HasPrefix(a, "-") || strings.Contains(a, "="):
			return f, nil, false
		default:
			services = append(services, a)
		}
	}
	return f, services, true
}
