// Package files loads a Compose project from its files, with compose-go's
// loader, as docker compose does, through the load cache (package
// loadcache). It is the only package of Berth that links compose-go's
// loader (and through it the JSON schema and its initialisers), so
// package compose, which works on loaded models, does not: the lean
// helper links compose to serve ps and a no-op up -d from the load cache
// (docs/performance.md).
package files

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/compose-spec/compose-go/v2/cli"
	composeerr "github.com/compose-spec/compose-go/v2/errdefs"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"
	"gopkg.in/yaml.v3"

	"github.com/berth-dev/berth/compose/loadcache"
	"github.com/berth-dev/berth/internal/names"
)

// Options says where a project comes from, as docker compose's global
// flags and environment variables do (see loadcache.Options).
type Options = loadcache.Options

// Load reads, merges, interpolates and normalizes a Compose project the way
// docker compose does, drops services disabled by profiles, and checks every
// name that will become a path on the host. Errors are one line naming the
// file (and the service and field when known) and carry
// errdefs.ErrInvalidArgument, or errdefs.ErrNotFound when no file is found.
//
// warn, when not nil, computes the project's warnings (compose.Unsupported),
// which Load returns; they are kept with the model in the load cache (they
// are a function of the model, and computing them encodes every service),
// so only a load with warn uses the cache in o.CacheDir.
func Load(ctx context.Context, o Options, warn func(*types.Project) []string) (*types.Project, []string, error) {
	if o.CacheDir != "" && warn != nil {
		return loadCached(ctx, o, warn)
	}
	p, err := load(ctx, o, nil)
	if err != nil || warn == nil {
		return p, nil, err
	}
	return p, warn(p), nil
}

// load is Load without the cache; in records the files it reads.
func load(ctx context.Context, o Options, in *loadInputs) (*types.Project, error) {
	paths, err := absPaths(o.WorkingDir, o.ConfigPaths)
	if err != nil {
		return nil, err
	}
	projectDir := o.ProjectDir
	if projectDir != "" && !filepath.IsAbs(projectDir) && o.WorkingDir != "" {
		projectDir = filepath.Join(o.WorkingDir, projectDir)
	}
	envFiles, err := absPaths(o.WorkingDir, o.EnvFiles)
	if err != nil {
		return nil, err
	}

	// The order follows docker compose: the OS environment wins over .env;
	// .env is read once before COMPOSE_FILE is looked up (so .env may set
	// it) and once more when the project directory became known through the
	// chosen compose file; COMPOSE_PROFILES may come from either.
	opts := []cli.ProjectOptionsFn{
		cli.WithWorkingDirectory(projectDir),
		cli.WithOsEnv,
	}
	if o.WorkingDir != "" && projectDir == "" && len(paths) == 0 {
		// Discovery starts from WorkingDir; the chosen file then sets the
		// project directory (see below).
		opts = append(opts, cli.WithWorkingDirectory(o.WorkingDir))
	}
	opts = append(opts,
		cli.WithEnvFiles(envFiles...),
		cli.WithDotEnv,
		cli.WithConfigFileEnv,
		cli.WithDefaultConfigPath,
	)
	po, err := cli.NewProjectOptions(paths, opts...)
	if err != nil {
		return nil, loadError(err, paths)
	}
	if len(po.ConfigPaths) == 0 {
		return nil, fmt.Errorf("no configuration file provided: %w", errdefs.ErrNotFound)
	}
	if projectDir == "" {
		// Discovery from a subdirectory: the project directory is the one
		// holding the first compose file, not where the search started.
		po.WorkingDir = ""
		if first := po.ConfigPaths[0]; first != "-" {
			po.WorkingDir = filepath.Dir(first)
		} else if o.WorkingDir != "" {
			po.WorkingDir = o.WorkingDir
		}
	}
	more := []cli.ProjectOptionsFn{
		cli.WithEnvFiles(envFiles...),
		cli.WithDotEnv,
		cli.WithDefaultProfiles(o.Profiles...),
		cli.WithResolvedPaths(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
	}
	if o.ProjectName != "" {
		if err := names.Project(o.ProjectName); err != nil {
			return nil, fmt.Errorf("project name from -p: %w", err)
		}
		more = append(more, cli.WithName(o.ProjectName))
	}
	for _, f := range more {
		if err := f(po); err != nil {
			return nil, loadError(err, po.ConfigPaths)
		}
	}
	in.options(po, discoveryStart(o, projectDir), len(paths) == 0)
	// env_file is resolved here rather than by compose-go so a missing file
	// is reported with the service that names it.
	if err := cli.WithoutEnvironmentResolution(po); err != nil {
		return nil, loadError(err, po.ConfigPaths)
	}

	p, err := po.LoadProject(ctx)
	if err != nil {
		return nil, loadError(err, po.ConfigPaths)
	}
	if len(o.Services) > 0 {
		if p, err = p.WithServicesEnabled(o.Services...); err != nil {
			return nil, loadError(err, p.ComposeFiles)
		}
	}
	if err := checkEnvFiles(p); err != nil {
		return nil, err
	}
	in.project(p)
	// As docker compose: env_file merged into environment (and dropped, so
	// config prints what the containers get), and networks, volumes,
	// secrets and configs that no enabled service uses left out.
	resolved, err := p.WithServicesEnvironmentResolved(true)
	if err != nil {
		return nil, loadError(err, p.ComposeFiles)
	}
	p = resolved.WithoutUnnecessaryResources()
	if err := checkNames(p); err != nil {
		return nil, loadError(err, p.ComposeFiles)
	}
	return p, nil
}

func absPaths(wd string, in []string) ([]string, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]string, 0, len(in))
	for _, p := range in {
		switch {
		case p == "-" || filepath.IsAbs(p):
		case wd != "":
			p = filepath.Join(wd, p)
		default:
			abs, err := filepath.Abs(p)
			if err != nil {
				return nil, fmt.Errorf("path %q: %w", p, err)
			}
			p = abs
		}
		out = append(out, p)
	}
	return out, nil
}

// checkNames runs every name that becomes a path or a link name through the
// one validator.
func checkNames(p *types.Project) error {
	if err := names.Project(p.Name); err != nil {
		return err
	}
	containers := map[string]string{} // container_name -> service
	for _, name := range slices.Sorted(maps.Keys(p.Services)) {
		s := p.Services[name]
		if err := names.Object("service", name); err != nil {
			return err
		}
		if s.ContainerName != "" {
			if err := names.Object("container", s.ContainerName); err != nil {
				return fmt.Errorf("service %q: %w", name, err)
			}
			if other, ok := containers[s.ContainerName]; ok {
				return fmt.Errorf("service %q: container_name %q is already in use by service %q: %w", name, s.ContainerName, other, errdefs.ErrInvalidArgument)
			}
			containers[s.ContainerName] = name
		}
	}
	for _, key := range slices.Sorted(maps.Keys(p.Volumes)) {
		v := p.Volumes[key]
		if err := names.Object("volume", key); err != nil {
			return err
		}
		if v.Name != "" && v.Name != key {
			if err := names.Object("volume", v.Name); err != nil {
				return fmt.Errorf("volume %q: %w", key, err)
			}
		}
	}
	for _, key := range slices.Sorted(maps.Keys(p.Networks)) {
		n := p.Networks[key]
		if err := names.Object("network", key); err != nil {
			return err
		}
		if n.Name != "" && n.Name != key {
			if err := names.Object("network", n.Name); err != nil {
				return fmt.Errorf("network %q: %w", key, err)
			}
		}
	}
	return nil
}

// displayPath shortens an absolute path to one relative to the working
// directory when that is shorter, as users typed it.
func displayPath(p string) string {
	if p == "-" {
		return "stdin"
	}
	wd, err := os.Getwd()
	if err != nil {
		return p
	}
	if rel, err := filepath.Rel(wd, p); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return p
}

// checkEnvFiles reports the first required env_file that does not exist,
// naming the service and the file that declares it.
func checkEnvFiles(p *types.Project) error {
	for _, name := range slices.Sorted(maps.Keys(p.Services)) {
		for _, ef := range p.Services[name].EnvFiles {
			if !ef.Required {
				continue
			}
			if _, err := os.Stat(ef.Path); err == nil {
				continue
			} else if !errors.Is(err, os.ErrNotExist) {
				return loadError(fmt.Errorf("service %q: env_file %q: %w", name, relTo(p.WorkingDir, ef.Path), err), p.ComposeFiles)
			}
			return loadError(fmt.Errorf("service %q: env_file %q not found", name, relTo(p.WorkingDir, ef.Path)), p.ComposeFiles)
		}
	}
	return nil
}

func relTo(dir, path string) string {
	if rel, err := filepath.Rel(dir, path); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return path
}

var (
	// compose-go reports unreadable files as `compose file "/x/compose.yaml"
	// [set by ...] is invalid: <cause>`.
	reComposeFile = lazyRegexp(`^compose file "([^"]+)"[^:]* is invalid: (.*)$`)
	// Schema errors: `validating /x/compose.yaml: services.web.foo false schema`.
	reValidating = lazyRegexp(`^validating (.+?): ([^ ]+) (.*)$`)
	// Interpolation: `error while interpolating services.web.image: <cause>`.
	reInterpolating = lazyRegexp(`^error while interpolating ([^ :]+): (.*)$`)
	// go-yaml v4's parse errors, with the line they are at.
	reGoYAML = lazyRegexp(`go-yaml load error in [a-z]+(?: \(([^)]*)\))? at L(\d+)(?:\.C(\d+))?(?:-L(\d+)(?:\.C(\d+))?)?: (.*)$`)
	// Errors that start with the object they are about: `service "web" ...`.
	reObject = lazyRegexp(`^(service|volume|network) "([^"]+)"`)
)

// loadError turns a compose-go error into one line naming the file, the
// line and the service and field when they can be told, with Berth's error
// class. compose-go reports most problems without the file they come from,
// so the files are parsed again (only on this error path) to find it.
// reCycle matches compose-go's "dependency cycle detected: a -> b -> a".
var reCycle = lazyRegexp(`dependency cycle detected: (.+)$`)

func loadError(err error, files []string) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	msg := strings.Join(strings.Fields(err.Error()), " ")
	msg = strings.TrimSuffix(msg, ": "+composeerr.ErrInvalid.Error())
	msg = strings.TrimSuffix(msg, ": "+errdefs.ErrInvalidArgument.Error())
	var class error = errdefs.ErrInvalidArgument
	srcs := readSources(files)
	var (
		file string
		line int
	)
	if m := reCycle().FindStringSubmatch(msg); m != nil {
		// compose-go finds cycles before our graph does; say it our way,
		// which names every service of the cycle.
		parts := strings.Split(m[1], " -> ")
		for i, p := range parts {
			parts[i] = strconv.Quote(strings.TrimSpace(p))
		}
		msg = "dependency cycle: service " + strings.Join(parts, " -> ")
	}
	switch {
	case strings.HasPrefix(msg, "invalid project name"):
		// From -p or COMPOSE_PROJECT_NAME, not from a file.
		return fmt.Errorf("%s: %w", msg, class)
	case reComposeFile().MatchString(msg):
		sm := reComposeFile().FindStringSubmatch(msg)
		file, msg = sm[1], sm[2]
		if errors.Is(err, os.ErrNotExist) {
			msg, class = "no such file or directory", errdefs.ErrNotFound
		}
	case reGoYAML().MatchString(msg):
		// go-yaml v4: "go-yaml load error in parser (while parsing ...) at
		// L3.C12-L4.C1: did not find expected ','".
		// The range runs from where the construct began to the problem.
		sm := reGoYAML().FindStringSubmatch(msg)
		while, at, problem := sm[1], yamlMark(sm[2], sm[3]), yamlMark(sm[4], sm[5])
		msg = sm[6]
		if problem == "" {
			problem, at = at, ""
		}
		if while != "" && at != "" {
			msg += fmt.Sprintf(" (%s that starts at %s)", while, at)
		}
		msg = problem + ": " + msg
		for _, s := range srcs {
			if s.err != nil {
				file = s.path
				break
			}
		}
	case strings.HasPrefix(msg, "yaml:") || strings.Contains(msg, ": yaml: "):
		// The parser's message carries the line but not the file: find the
		// file by parsing each one again. The message itself is kept as
		// compose-go gives it, so it reads like docker compose's.
		for _, s := range srcs {
			if s.err != nil {
				file = s.path
				break
			}
		}
		msg = msg[strings.Index(msg, "yaml: ")+len("yaml: "):]
		if i := strings.LastIndex(msg, ": line "); i >= 0 {
			msg = msg[i+2:] // drop the "while parsing ... at line N" context
		}
	case reValidating().MatchString(msg):
		sm := reValidating().FindStringSubmatch(msg)
		file = sm[1]
		path := strings.Split(sm[2], ".")
		cause := sm[3]
		if cause == "false schema" || strings.HasPrefix(cause, "additional properties") {
			// The schema forbids the key itself.
			cause = fmt.Sprintf("key %q is not allowed", path[len(path)-1])
			path = path[:len(path)-1]
		}
		line = lineOf(srcs, file, sm[2])
		msg = joinNonEmpty(describePath(path), cause)
	case reInterpolating().MatchString(msg):
		sm := reInterpolating().FindStringSubmatch(msg)
		path := strings.Split(sm[1], ".")
		for _, s := range srcs {
			if n := s.lookup(path); n != nil && strings.Contains(n.Value, "$") {
				file, line = s.path, n.Line
				break
			}
		}
		msg = joinNonEmpty(describePath(path), sm[2])
	case reObject().MatchString(msg):
		om := reObject().FindStringSubmatch(msg)
		path := []string{om[1] + "s", om[2]}
		// The last file that mentions the object is the likeliest culprit:
		// it overrides the earlier ones.
		for i := len(srcs) - 1; i >= 0; i-- {
			if n := srcs[i].lookup(path); n != nil {
				file = srcs[i].path
				break
			}
		}
	}
	if file == "" {
		// Still unplaced (`invalid hostPort: abc`, `invalid ranges ...:
		// 8080-8081 and 9090-9092`): look for the offending value, or either
		// of two, in the services of each file.
		if i := strings.LastIndex(msg, ": "); i >= 0 {
			for _, v := range append([]string{msg[i+2:]}, strings.Split(msg[i+2:], " and ")...) {
				if f, l, where := findValue(srcs, v); f != "" {
					file, line, msg = f, l, where+": "+msg
					break
				}
			}
		}
	}
	if file == "" && len(files) > 0 {
		file = files[0]
	}
	prefix := ""
	if file != "" {
		prefix = displayPath(file) + ": "
	}
	if line > 0 {
		prefix += fmt.Sprintf("line %d: ", line)
	}
	return fmt.Errorf("%s%s: %w", prefix, strings.TrimSuffix(msg, "."), class)
}

// yamlMark says where in a file go-yaml's "L3.C12" is.
func yamlMark(line, col string) string {
	switch {
	case line == "":
		return ""
	case col == "":
		return "line " + line
	}
	return "line " + line + ", column " + col
}

func joinNonEmpty(a, b string) string {
	if a == "" {
		return b
	}
	if b == "" {
		return a
	}
	return a + ": " + b
}

// describePath turns `services.web.environment.X` into
// `service "web": environment.X`.
func describePath(path []string) string {
	if len(path) >= 2 {
		kind := ""
		switch path[0] {
		case "services":
			kind = "service"
		case "volumes":
			kind = "volume"
		case "networks":
			kind = "network"
		case "secrets":
			kind = "secret"
		case "configs":
			kind = "config"
		}
		if kind != "" {
			return joinNonEmpty(fmt.Sprintf("%s %q", kind, path[1]), strings.Join(path[2:], "."))
		}
	}
	return strings.Join(path, ".")
}

// source is one compose file parsed again to locate an error in it.
type source struct {
	path string
	root *yaml.Node
	err  error
}

func readSources(files []string) []source {
	var out []source
	for _, f := range files {
		if f == "-" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		s := source{path: f, root: &yaml.Node{}}
		s.err = yaml.Unmarshal(b, s.root)
		out = append(out, s)
	}
	return out
}

// lookup finds the node at path (map keys, or indexes in sequences).
func (s source) lookup(path []string) *yaml.Node {
	if s.err != nil || s.root == nil || len(s.root.Content) == 0 {
		return nil
	}
	n := s.root.Content[0]
	for _, p := range path {
		switch n.Kind {
		case yaml.MappingNode:
			var next *yaml.Node
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == p {
					next = n.Content[i+1]
					break
				}
			}
			if next == nil {
				return nil
			}
			n = next
		case yaml.SequenceNode:
			i, err := strconv.Atoi(p)
			if err != nil || i < 0 || i >= len(n.Content) {
				return nil
			}
			n = n.Content[i]
		default:
			return nil
		}
	}
	return n
}

// lineOf is the line of path in file, or of its deepest existing parent.
func lineOf(srcs []source, file, dotted string) int {
	path := strings.Split(dotted, ".")
	for _, s := range srcs {
		if s.path != file {
			continue
		}
		for k := len(path); k > 0; k-- {
			if n := s.lookup(path[:k]); n != nil {
				return n.Line
			}
		}
	}
	return 0
}

// findValue finds the first scalar under services.<name>.<key> whose value
// contains v, and says where it is.
func findValue(srcs []source, v string) (file string, line int, where string) {
	if len(v) < 2 {
		return "", 0, ""
	}
	for _, s := range srcs {
		svcs := s.lookup([]string{"services"})
		if svcs == nil || svcs.Kind != yaml.MappingNode {
			continue
		}
		for i := 0; i+1 < len(svcs.Content); i += 2 {
			svc := svcs.Content[i+1]
			if svc.Kind != yaml.MappingNode {
				continue
			}
			for j := 0; j+1 < len(svc.Content); j += 2 {
				if n := findScalar(svc.Content[j+1], v); n != nil {
					return s.path, n.Line, fmt.Sprintf("service %q: %s", svcs.Content[i].Value, svc.Content[j].Value)
				}
			}
		}
	}
	return "", 0, ""
}

func findScalar(n *yaml.Node, v string) *yaml.Node {
	if n.Kind == yaml.ScalarNode {
		if strings.Contains(n.Value, v) {
			return n
		}
		return nil
	}
	for _, c := range n.Content {
		if f := findScalar(c, v); f != nil {
			return f
		}
	}
	return nil
}

// lazyRegexp compiles expr on first use: the patterns of loadError serve
// only failed loads, and every berth process would compile them at start.
func lazyRegexp(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}
