package compose

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/compose/files"
)

// clearComposeEnv unsets every variable that steers loading, so the
// developer's own environment cannot change a test's outcome; t.Setenv
// restores them afterwards (and makes these tests non-parallel).
func clearComposeEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{"COMPOSE_FILE", "COMPOSE_PATH_SEPARATOR", "COMPOSE_PROJECT_NAME",
		"COMPOSE_PROFILES", "COMPOSE_DISABLE_ENV_FILE", "TAG", "GREETING", "TOKEN"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
}

func abs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func envValue(s types.ServiceConfig, k string) string {
	if v := s.Environment[k]; v != nil {
		return *v
	}
	return "<unset>"
}

func TestLoad(t *testing.T) {
	type want struct {
		name       string
		workingDir string // relative to the package directory
		services   []string
		check      func(t *testing.T, p *types.Project)
	}
	image := func(svc, img string) func(*testing.T, *types.Project) {
		return func(t *testing.T, p *types.Project) {
			t.Helper()
			if got := p.Services[svc].Image; got != img {
				t.Errorf("service %s image = %q, want %q", svc, got, img)
			}
		}
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		opts files.Options
		want want
	}{
		{
			name: "discovery searches upwards from a subdirectory",
			opts: files.Options{WorkingDir: "testdata/discover/sub/deeper"},
			want: want{name: "discover", workingDir: "testdata/discover", services: []string{"web"}},
		},
		{
			name: "compose.yml wins over docker-compose.yaml",
			opts: files.Options{WorkingDir: "testdata/precedence"},
			want: want{name: "precedence", workingDir: "testdata/precedence", services: []string{"web"}, check: image("web", "from-compose-yml")},
		},
		{
			name: "several -f merge in order",
			opts: files.Options{ConfigPaths: []string{"testdata/merge/compose.yaml", "testdata/merge/override.yaml"}},
			want: want{name: "merged", workingDir: "testdata/merge", services: []string{"db", "web"}, check: func(t *testing.T, p *types.Project) {
				image("web", "busybox:2")(t, p)
				if a, b := envValue(p.Services["web"], "A"), envValue(p.Services["web"], "B"); a != "1" || b != "2" {
					t.Errorf("merged environment A=%s B=%s, want A=1 B=2", a, b)
				}
			}},
		},
		{
			name: "COMPOSE_FILE lists files",
			env:  map[string]string{"COMPOSE_FILE": "testdata/merge/compose.yaml:testdata/merge/override.yaml"},
			want: want{name: "merged", workingDir: "testdata/merge", services: []string{"db", "web"}, check: image("web", "busybox:2")},
		},
		{
			name: "COMPOSE_PATH_SEPARATOR splits COMPOSE_FILE",
			env:  map[string]string{"COMPOSE_FILE": "testdata/merge/compose.yaml;testdata/merge/override.yaml", "COMPOSE_PATH_SEPARATOR": ";"},
			want: want{name: "merged", workingDir: "testdata/merge", services: []string{"db", "web"}},
		},
		{
			name: "-f wins over COMPOSE_FILE",
			env:  map[string]string{"COMPOSE_FILE": "testdata/merge/compose.yaml"},
			opts: files.Options{ConfigPaths: []string{"testdata/discover/compose.yaml"}},
			want: want{name: "discover", workingDir: "testdata/discover", services: []string{"web"}},
		},
		{
			name: "COMPOSE_PROJECT_NAME wins over the name in the file",
			env:  map[string]string{"COMPOSE_PROJECT_NAME": "fromenv"},
			opts: files.Options{ConfigPaths: []string{"testdata/merge/compose.yaml"}},
			want: want{name: "fromenv", workingDir: "testdata/merge", services: []string{"web"}},
		},
		{
			name: "-p wins over COMPOSE_PROJECT_NAME",
			env:  map[string]string{"COMPOSE_PROJECT_NAME": "fromenv"},
			opts: files.Options{ConfigPaths: []string{"testdata/merge/compose.yaml"}, ProjectName: "fromflag"},
			want: want{name: "fromflag", workingDir: "testdata/merge", services: []string{"web"}},
		},
		{
			name: "--project-directory is where discovery looks",
			opts: files.Options{ProjectDir: "testdata/discover"},
			want: want{name: "discover", workingDir: "testdata/discover", services: []string{"web"}},
		},
		{
			name: "--project-directory sets the working dir and .env of a -f file",
			opts: files.Options{ConfigPaths: []string{"testdata/env/compose.yaml"}, ProjectDir: "testdata/discover"},
			want: want{name: "discover", workingDir: "testdata/discover", services: []string{"web"}, check: image("web", "busybox:latest")},
		},
		{
			name: ".env in the project directory feeds interpolation",
			opts: files.Options{ConfigPaths: []string{"testdata/env/compose.yaml"}},
			want: want{name: "env", workingDir: "testdata/env", services: []string{"web"}, check: func(t *testing.T, p *types.Project) {
				image("web", "busybox:from-dotenv")(t, p)
				if g := envValue(p.Services["web"], "GREETING"); g != "hi" {
					t.Errorf("GREETING = %q, want the default hi", g)
				}
			}},
		},
		{
			name: "--env-file replaces .env",
			opts: files.Options{ConfigPaths: []string{"testdata/env/compose.yaml"}, EnvFiles: []string{"testdata/env/alt.env"}},
			want: want{name: "env", workingDir: "testdata/env", services: []string{"web"}, check: func(t *testing.T, p *types.Project) {
				image("web", "busybox:from-alt")(t, p)
				if g := envValue(p.Services["web"], "GREETING"); g != "hello" {
					t.Errorf("GREETING = %q, want hello", g)
				}
			}},
		},
		{
			name: "the process environment wins over .env",
			env:  map[string]string{"TAG": "fromos"},
			opts: files.Options{ConfigPaths: []string{"testdata/env/compose.yaml"}},
			want: want{name: "env", workingDir: "testdata/env", services: []string{"web"}, check: image("web", "busybox:fromos")},
		},
		{
			name: "a required variable that is set",
			env:  map[string]string{"TOKEN": "s3cret"},
			opts: files.Options{ConfigPaths: []string{"testdata/required/compose.yaml"}},
			want: want{name: "required", workingDir: "testdata/required", services: []string{"web"}, check: func(t *testing.T, p *types.Project) {
				if v := envValue(p.Services["web"], "TOKEN"); v != "s3cret" {
					t.Errorf("TOKEN = %q", v)
				}
			}},
		},
		{
			name: "services outside the active profiles are removed",
			opts: files.Options{ConfigPaths: []string{"testdata/profiles/compose.yaml"}},
			want: want{name: "profiles", workingDir: "testdata/profiles", services: []string{"web"}},
		},
		{
			name: "--profile enables services",
			opts: files.Options{ConfigPaths: []string{"testdata/profiles/compose.yaml"}, Profiles: []string{"debug"}},
			want: want{name: "profiles", workingDir: "testdata/profiles", services: []string{"debug", "tools", "web"}},
		},
		{
			name: "COMPOSE_PROFILES enables services",
			env:  map[string]string{"COMPOSE_PROFILES": "tools"},
			opts: files.Options{ConfigPaths: []string{"testdata/profiles/compose.yaml"}},
			want: want{name: "profiles", workingDir: "testdata/profiles", services: []string{"tools", "web"}},
		},
		{
			// As in Compose, all of its profiles become active.
			name: "a service named on the command line is enabled with its profiles",
			opts: files.Options{ConfigPaths: []string{"testdata/profiles/compose.yaml"}, Services: []string{"tools"}},
			want: want{name: "profiles", workingDir: "testdata/profiles", services: []string{"debug", "tools", "web"}},
		},
		{
			name: "an enabled or unknown service named changes nothing",
			opts: files.Options{ConfigPaths: []string{"testdata/profiles/compose.yaml"}, Services: []string{"web", "nosuch"}},
			want: want{name: "profiles", workingDir: "testdata/profiles", services: []string{"web"}},
		},
		{
			name: "--profile wins over COMPOSE_PROFILES",
			env:  map[string]string{"COMPOSE_PROFILES": "tools"},
			opts: files.Options{ConfigPaths: []string{"testdata/profiles/compose.yaml"}, Profiles: []string{"debug"}},
			want: want{name: "profiles", workingDir: "testdata/profiles", services: []string{"debug", "tools", "web"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearComposeEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			p, err := testLoad(t.Context(), tc.opts)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if p.Name != tc.want.name {
				t.Errorf("name = %q, want %q", p.Name, tc.want.name)
			}
			if wd := abs(t, tc.want.workingDir); p.WorkingDir != wd {
				t.Errorf("working dir = %q, want %q", p.WorkingDir, wd)
			}
			if got := p.ServiceNames(); !slices.Equal(got, tc.want.services) {
				t.Errorf("services = %v, want %v", got, tc.want.services)
			}
			if tc.want.check != nil {
				tc.want.check(t, p)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		env   map[string]string
		opts  files.Options
		class error
		msg   string // the whole message, before the class
	}{
		{
			name:  "invalid YAML names the file and line",
			opts:  files.Options{ConfigPaths: []string{"testdata/badyaml/compose.yaml"}},
			class: errdefs.ErrInvalidArgument,
			msg:   "testdata/badyaml/compose.yaml: line 4, column 4: did not find expected key (while parsing a block mapping that starts at line 2, column 3)",
		},
		{
			name:  "invalid YAML in the second file names that file",
			opts:  files.Options{ConfigPaths: []string{"testdata/merge/compose.yaml", "testdata/badyaml/compose.yaml"}},
			class: errdefs.ErrInvalidArgument,
			msg:   "testdata/badyaml/compose.yaml: line 4, column 4: did not find expected key (while parsing a block mapping that starts at line 2, column 3)",
		},
		{
			name:  "missing env_file names service and file",
			opts:  files.Options{ConfigPaths: []string{"testdata/missingenv/compose.yaml"}},
			class: errdefs.ErrInvalidArgument,
			msg:   `testdata/missingenv/compose.yaml: service "web": env_file "missing.env" not found`,
		},
		{
			name:  "a required variable that is unset",
			opts:  files.Options{ConfigPaths: []string{"testdata/required/compose.yaml"}},
			class: errdefs.ErrInvalidArgument,
			msg:   `testdata/required/compose.yaml: line 5: service "web": environment.TOKEN: required variable TOKEN is missing a value: TOKEN must be set`,
		},
		{
			name:  "bad -p",
			opts:  files.Options{ConfigPaths: []string{"testdata/discover/compose.yaml"}, ProjectName: "Bad Name"},
			class: errdefs.ErrInvalidArgument,
			msg:   `project name from -p: project name "Bad Name" must match ^[a-z0-9][a-z0-9_-]*$`,
		},
		{
			name:  "bad COMPOSE_PROJECT_NAME",
			env:   map[string]string{"COMPOSE_PROJECT_NAME": "Bad/Name"},
			opts:  files.Options{ConfigPaths: []string{"testdata/discover/compose.yaml"}},
			class: errdefs.ErrInvalidArgument,
		},
		{
			name:  "a volume name that would escape its directory",
			opts:  files.Options{ConfigPaths: []string{"testdata/badvolume/compose.yaml"}},
			class: errdefs.ErrInvalidArgument,
			msg:   `testdata/badvolume/compose.yaml: volume "data": volume name "../escape" must match ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`,
		},
		{
			name:  "two services with one container_name",
			opts:  files.Options{ConfigPaths: []string{"testdata/dupname/compose.yaml"}},
			class: errdefs.ErrInvalidArgument,
			msg:   `testdata/dupname/compose.yaml: service "b": container_name "same" is already in use by service "a"`,
		},
		{
			name:  "a -f file that does not exist",
			opts:  files.Options{ConfigPaths: []string{"testdata/nope/compose.yaml"}},
			class: errdefs.ErrNotFound,
			msg:   "testdata/nope/compose.yaml: no such file or directory",
		},
		{
			name:  "no compose file anywhere up the tree",
			opts:  files.Options{WorkingDir: "/proc/self"},
			class: errdefs.ErrNotFound,
			msg:   "no configuration file provided",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearComposeEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			_, err := testLoad(t.Context(), tc.opts)
			if !errors.Is(err, tc.class) {
				t.Fatalf("err = %v, want class %v", err, tc.class)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans several lines: %q", err)
			}
			if tc.msg != "" {
				if want := tc.msg + ": " + tc.class.Error(); err.Error() != want {
					t.Errorf("err = %q\nwant  %q", err, want)
				}
			}
		})
	}
}

func TestUnsupported(t *testing.T) {
	clearComposeEnv(t)
	dir := t.TempDir()
	content := `name: unsup
services:
  web:
    image: busybox
    cap_add: [NET_ADMIN]
    cpu_count: 2
    healthcheck: {test: ["CMD", "true"]}
    deploy:
      placement: {constraints: ["node.role == manager"]}
      resources:
        limits: {memory: 64m}
        reservations: {cpus: "0.5"}
    expose: ["80"]
    ports: ["8080:80"]
    volumes: [data:/data]
  plain:
    image: busybox
    command: ["true"]
    restart: always
volumes:
  data:
    driver_opts: {type: tmpfs}
secrets:
  s:
    file: ./s.txt # used by no service: left out, as by docker compose
`
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := testLoad(t.Context(), files.Options{WorkingDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`service "web": key "cpu_count" is not supported yet and is ignored`,
		`service "web": deploy.placement is not supported (it configures Swarm) and is ignored`,
		`service "web": deploy.resources.reservations.cpus is not enforced, as with docker compose`,
	}
	if got := Unsupported(p); !slices.Equal(got, want) {
		t.Errorf("Unsupported =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// FuzzLoad feeds arbitrary compose files to Load: it must never panic, and
// every error must be one line with a class. The seed corpus is every
// compose file under testdata plus the examples.
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*/*.y*ml")
	examples, _ := filepath.Glob("../examples/*/compose.yaml")
	for _, s := range append(seeds, examples...) {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, content []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "compose.yaml")
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
		p, err := testLoad(t.Context(), files.Options{ConfigPaths: []string{path}, ProjectName: "fuzz"})
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans several lines: %q", err)
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) && !errors.Is(err, errdefs.ErrNotFound) {
				t.Errorf("error without a class: %v", err)
			}
			return
		}
		_ = Unsupported(p)
		if _, err := NewGraph(p); err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("graph error without a class: %v", err)
		}
	})
}

// testLoad loads a project as berth does, without the cache.
func testLoad(ctx context.Context, o files.Options) (*types.Project, error) {
	p, _, err := files.Load(ctx, o, nil)
	return p, err
}
