package compose

import (
	"errors"
	"strings"
	"time"

	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/engine/container"
)

func testProject() *types.Project {
	return &types.Project{
		Name:       "demo",
		WorkingDir: "/src/demo",
		Services: types.Services{
			"web": sc("web", func(s *types.ServiceConfig) {
				s.Image, s.Command = "busybox", types.ShellCommand{"httpd"}
				s.Ports = []types.ServicePortConfig{{Target: 80, Published: "8080", Protocol: "tcp"}}
			}),
			"db": sc("db", func(s *types.ServiceConfig) {
				s.Image = "busybox"
				s.Volumes = []types.ServiceVolumeConfig{{Type: "volume", Source: "data", Target: "/data"}}
			}),
			"api": sc("api", func(s *types.ServiceConfig) {
				s.Image = "busybox"
				s.DependsOn = types.DependsOnConfig{"db": {Condition: "service_started"}}
			}),
		},
		Networks: types.Networks{"default": {Name: "demo_default"}},
		Volumes:  types.Volumes{"data": {Name: "demo_data"}},
	}
}

func hashOf(t *testing.T, p *types.Project, svc string) string {
	h, err := ServiceHash(p.Services[svc])
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// running lists observed containers of the test project, one running
// replica per service, with the current hash and model.
func running(t *testing.T, p *types.Project, svcs ...string) Observed {
	obs := Observed{Networks: map[string]bool{"demo_default": true}, Volumes: map[string]bool{"demo_data": true}}
	for _, s := range svcs {
		model, hash, err := serviceModel(p.Services[s])
		if err != nil {
			t.Fatal(err)
		}
		obs.Containers = append(obs.Containers, ObservedContainer{ID: s + "0123456789abcdef", Name: "demo-" + s + "-1", Service: s, Number: 1,
			Hash: hash, Model: model, Running: true, State: "running"})
	}
	return obs
}

func mustPlan(t *testing.T, plan Plan, err error, want string) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if got := plan.String(); got != want {
		t.Fatalf("plan:\n%s\nwant:\n%s", got, want)
	}
}

func TestPlanUpFromNothing(t *testing.T) {
	t.Parallel()
	p := testProject()
	plan, err := PlanUp(p, Observed{}, UpOptions{})
	mustPlan(t, plan, err, `#1 network demo_default: create (not found)
#2 volume demo_data: create (not found)
#3 container demo-db-1: create (new service) after #1,#2
#4 container demo-db-1: start (created) after #3
#5 container demo-web-1: create (new service) after #1
#6 container demo-web-1: start (created) after #5
#7 container demo-api-1: create (new service) after #1
#8 container demo-api-1: start (created) after #4,#7
`)
	// The created container carries Compose's labels and the service's shape.
	cfg := plan.Steps[4].Config
	if cfg.Labels[LabelProject] != "demo" || cfg.Labels[LabelService] != "web" || cfg.Labels[LabelNumber] != "1" || cfg.Labels[LabelConfigHash] != hashOf(t, p, "web") {
		t.Errorf("labels %v", cfg.Labels)
	}
	if len(cfg.Ports) != 1 || cfg.Ports[0].HostPort != 8080 || cfg.Networks[0].Network != "demo_default" || cfg.Networks[0].Aliases[0] != "web" {
		t.Errorf("config %+v", cfg)
	}
	if db := plan.Steps[2].Config; db.Mounts[0].Source != "demo_data" || len(db.Model) == 0 {
		t.Errorf("db config %+v", db)
	}
	if api := plan.Steps[6].Config; api.Labels[LabelDependsOn] != "db:service_started:false" {
		t.Errorf("depends_on label %q", api.Labels[LabelDependsOn])
	}
}

func TestPlanUpIsEmptyWhenNothingChanged(t *testing.T) {
	t.Parallel()
	p := testProject()
	plan, err := PlanUp(p, running(t, p, "api", "db", "web"), UpOptions{})
	mustPlan(t, plan, err, "")
}

func TestPlanUpRecreatesReplaceFirstAndSaysWhy(t *testing.T) {
	t.Parallel()
	p := testProject()
	obs := running(t, p, "api", "db", "web")
	api := p.Services["api"]
	v := "2"
	api.Environment = types.MappingWithEquals{"FOO": &v}
	api.Command = types.ShellCommand{"serve"}
	p.Services["api"] = api
	plan, err := PlanUp(p, obs, UpOptions{})
	mustPlan(t, plan, err, `#1 container api012345678_demo-api-1: create (replaces demo-api-1: command changed, environment added)
#2 container demo-api-1: stop (replaced by #1) after #1
#3 container demo-api-1: remove (replaced by #1) after #1,#2
#4 container demo-api-1: rename from #1 after #3
#5 container demo-api-1: start (recreated) after #4
`)
	if s := plan.Steps[0]; !s.Quiet || s.Replaces != "api0123456789abcdef" || plan.Steps[1].Timeout != defaultStopGrace {
		t.Errorf("recreate steps: %+v", plan.Steps[:2])
	}
	// A changed value inside a map is named by its key.
	obs = running(t, p, "api", "db", "web")
	w := "3"
	api.Environment = types.MappingWithEquals{"FOO": &w}
	p.Services["api"] = api
	plan, _ = PlanUp(p, obs, UpOptions{})
	if !strings.Contains(plan.String(), "(replaces demo-api-1: environment.FOO changed)") {
		t.Fatalf("plan:\n%s", plan)
	}
	// --no-recreate leaves it; --force-recreate recreates what did not change.
	if plan, _ := PlanUp(p, running(t, testProject(), "api", "db", "web"), UpOptions{Recreate: RecreateNever}); !plan.Empty() {
		t.Fatalf("--no-recreate:\n%s", plan)
	}
	plan, _ = PlanUp(p, running(t, p, "api", "db", "web"), UpOptions{Recreate: RecreateForce, Services: []string{"web"}, NoDeps: true})
	if got := plan.String(); !strings.Contains(got, "demo-web-1: create (replaces demo-web-1: --force-recreate)") || strings.Contains(got, "api") {
		t.Fatalf("--force-recreate web:\n%s", got)
	}
}

func TestPlanUpStartsStoppedAndHandlesOrphans(t *testing.T) {
	t.Parallel()
	p := testProject()
	obs := running(t, p, "api", "db", "web")
	obs.Containers[1].Running, obs.Containers[1].State, obs.Containers[1].ExitCode = false, "exited", 137
	obs.Containers = append(obs.Containers, ObservedContainer{ID: "o1", Name: "demo-old-1", Service: "old", Number: 1, Running: true, StopGrace: 3 * time.Second})
	plan, err := PlanUp(p, obs, UpOptions{RemoveOrphans: true})
	mustPlan(t, plan, err, `#1 container demo-db-1: start (exited (137))
#2 container demo-old-1: stop (orphan: service old is not in the project)
#3 container demo-old-1: remove (orphan: service old is not in the project) after #2
`)
	if plan.Steps[1].Timeout != 3*time.Second {
		t.Errorf("orphan stop timeout %s, want its own grace period", plan.Steps[1].Timeout)
	}
	// Without --remove-orphans the orphan is only warned about; a service
	// disabled by a profile is no orphan.
	plan, _ = PlanUp(p, obs, UpOptions{})
	if len(plan.Warnings) != 1 || !strings.Contains(plan.Warnings[0], "demo-old-1") {
		t.Fatalf("orphan handling: %+v", plan.Warnings)
	}
	p.DisabledServices = types.Services{"old": {Name: "old"}}
	if plan, _ := PlanUp(p, obs, UpOptions{}); len(plan.Warnings) != 0 {
		t.Fatalf("disabled service warned as orphan: %v", plan.Warnings)
	}
}

func TestPlanUpScales(t *testing.T) {
	t.Parallel()
	p := testProject()
	obs := running(t, p, "api", "db", "web")
	// Replicas 1 and 3 of web exist: scaling to 3 fills the gap with 2.
	third := obs.Containers[2]
	third.ID, third.Name, third.Number = "w3", "demo-web-3", 3
	obs.Containers = append(obs.Containers, third)
	plan, err := PlanUp(p, obs, UpOptions{Scale: map[string]int{"web": 3}})
	mustPlan(t, plan, err, `#1 container demo-web-2: create (scale up to 3)
#2 container demo-web-2: start (created) after #1
`)
	// Scaling down removes the highest numbers.
	plan, err = PlanUp(p, obs, UpOptions{Scale: map[string]int{"web": 1}})
	mustPlan(t, plan, err, `#1 container demo-web-3: stop (scale down to 1)
#2 container demo-web-3: remove (scale down to 1) after #1
`)
	// A service with container_name cannot be scaled.
	web := p.Services["web"]
	web.ContainerName = "theweb"
	p.Services["web"] = web
	if _, err := PlanUp(p, obs, UpOptions{Scale: map[string]int{"web": 2}}); !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "container_name") {
		t.Fatalf("scale with container_name: %v", err)
	}
	if _, err := PlanUp(p, obs, UpOptions{Scale: map[string]int{"nope": 2}}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("scale of an unknown service: %v", err)
	}
}

func TestPlanUpFinishesAnInterruptedRecreate(t *testing.T) {
	t.Parallel()
	p := testProject()
	obs := running(t, p, "api", "db", "web")
	// The old web is gone; its replacement was created but not renamed, and
	// another, older, replacement of api is left beside the real api.
	obs.Containers[2].Name, obs.Containers[2].Running, obs.Containers[2].State = "0123456789ab_demo-web-1", false, "created"
	obs.Containers = append(obs.Containers, ObservedContainer{ID: "x", Name: "aaaaaaaaaaaa_demo-api-1", Service: "api", Number: 1, Hash: obs.Containers[0].Hash, State: "created"})
	plan, err := PlanUp(p, obs, UpOptions{})
	mustPlan(t, plan, err, `#1 container demo-web-1: rename from 0123456789ab_demo-web-1 (finish an interrupted recreate of demo-web-1)
#2 container demo-web-1: start (created) after #1
#3 container aaaaaaaaaaaa_demo-api-1: remove (duplicate of replica 1)
`)
}

func TestPlanUpSelectsServices(t *testing.T) {
	t.Parallel()
	p := testProject()
	plan, err := PlanUp(p, Observed{Networks: map[string]bool{"demo_default": true}, Volumes: map[string]bool{"demo_data": true}}, UpOptions{Services: []string{"api"}})
	mustPlan(t, plan, err, `#1 container demo-db-1: create (new service)
#2 container demo-db-1: start (created) after #1
#3 container demo-api-1: create (new service)
#4 container demo-api-1: start (created) after #2,#3
`)
	plan, err = PlanUp(p, Observed{}, UpOptions{Services: []string{"api"}, NoDeps: true})
	mustPlan(t, plan, err, `#1 network demo_default: create (not found)
#2 volume demo_data: create (not found)
#3 container demo-api-1: create (new service) after #1
#4 container demo-api-1: start (created) after #3
`)
	if _, err := PlanUp(p, Observed{}, UpOptions{Services: []string{"nope"}}); !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), "no such service: nope") {
		t.Fatalf("unknown service: %v", err)
	}
}

func TestPlanUpAwaitsDependencies(t *testing.T) {
	t.Parallel()
	p := testProject()
	api := p.Services["api"]
	api.DependsOn = types.DependsOnConfig{
		"db":  {Condition: types.ServiceConditionCompletedSuccessfully, Required: true},
		"web": {Condition: types.ServiceConditionHealthy, Required: false},
	}
	p.Services["api"] = api
	plan, err := PlanUp(p, Observed{}, UpOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := `#7 container demo-db-1: await completed_successfully (depends_on of api) after #4
#8 container demo-web-1: await healthy (depends_on of api) after #6
#9 container demo-api-1: create (new service) after #1
#10 container demo-api-1: start (created) after #7,#8,#9
`
	if got := plan.String(); !strings.HasSuffix(got, want) {
		t.Fatalf("plan:\n%s\nwant the end:\n%s", got, want)
	}
	if plan.Steps[6].Ref != 3 || !plan.Steps[6].Required || plan.Steps[7].Required {
		t.Errorf("await steps: %+v", plan.Steps[6:8])
	}
	// Nothing to start, nothing to wait for.
	if plan, _ := PlanUp(p, Observed{}, UpOptions{NoStart: true}); strings.Contains(plan.String(), "await") {
		t.Fatalf("create-only plan waits:\n%s", plan)
	}
}

func TestPlanUpRestartsDependentsOfARecreatedService(t *testing.T) {
	t.Parallel()
	p := testProject()
	obs := running(t, p, "api", "db", "web")
	api := p.Services["api"]
	api.DependsOn = types.DependsOnConfig{"db": {Condition: types.ServiceConditionStarted, Restart: true, Required: true}}
	p.Services["api"] = api
	db := p.Services["db"]
	db.User = "nobody"
	p.Services["db"] = db
	plan, err := PlanUp(p, obs, UpOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := `#6 container demo-api-1: stop (dependency db was recreated (restart: true)) after #5
#7 container demo-api-1: start (dependency db was recreated (restart: true)) after #5,#6
`
	if got := plan.String(); !strings.HasSuffix(got, want) {
		t.Fatalf("plan:\n%s\nwant the end:\n%s", got, want)
	}
}

func TestPlanUpRecreateKeepsAnonymousVolumesUnlessRenewed(t *testing.T) {
	t.Parallel()
	p := testProject()
	web := p.Services["web"]
	web.Volumes = []types.ServiceVolumeConfig{{Type: "volume", Target: "/cache"}}
	p.Services["web"] = web
	obs := running(t, p, "api", "db", "web")
	obs.Containers[2].Mounts = []container.Mount{{Type: "volume", Source: "anon123", Target: "/cache", Anonymous: true}}
	web.User = "nobody"
	p.Services["web"] = web
	plan, err := PlanUp(p, obs, UpOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m := plan.Steps[0].Config.Mounts; len(m) != 1 || m[0].Source != "anon123" || !m[0].Anonymous || plan.Steps[2].RemoveVolumes {
		t.Fatalf("recreate without -V: mounts %+v, remove %+v", m, plan.Steps[2])
	}
	plan, _ = PlanUp(p, obs, UpOptions{RenewAnonVolumes: true})
	if m := plan.Steps[0].Config.Mounts; len(m) != 1 || m[0].Source != "" || !plan.Steps[2].RemoveVolumes {
		t.Fatalf("recreate with -V: mounts %+v, remove %+v", m, plan.Steps[2])
	}
}

func TestPlanUpRecreatesWhenTheImageChanged(t *testing.T) {
	t.Parallel()
	p := testProject()
	obs := running(t, p, "api", "db", "web")
	obs.Images = map[string]string{"busybox": "sha256:new"}
	for i := range obs.Containers {
		obs.Containers[i].ImageID = "sha256:new"
	}
	obs.Containers[2].ImageID = "sha256:old"
	plan, err := PlanUp(p, obs, UpOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := plan.String(); !strings.HasPrefix(got, "#1 container web012345678_demo-web-1: create (replaces demo-web-1: image busybox now names another image)\n") || strings.Count(got, "\n") != 5 {
		t.Fatalf("plan:\n%s", got)
	}
}

func TestPlanDown(t *testing.T) {
	t.Parallel()
	p := testProject()
	obs := running(t, p, "api", "db", "web")
	obs.Containers[1].Running = false
	obs.Containers = append(obs.Containers, ObservedContainer{ID: "o1", Name: "demo-old-1", Service: "old", Number: 1, Running: true})
	obs.ProjectNetworks, obs.ProjectVolumes = []string{"demo_default"}, []string{"demo_data", "demo_shared"}
	obs.VolumeUsers = map[string][]string{"demo_data": {"demo-db-1"}, "demo_shared": {"other-app-1"}}
	plan, err := PlanDown(p, obs, DownOptions{})
	mustPlan(t, plan, err, `#1 container demo-api-1: stop (down)
#2 container demo-api-1: remove (down) after #1
#3 container demo-db-1: remove (down) after #2
#4 container demo-web-1: stop (down)
#5 container demo-web-1: remove (down) after #4
#6 network demo_default: remove (down) after #2,#3,#5
`)
	if !plan.KeepGoing || plan.Steps[5].Tolerate == nil {
		t.Errorf("down must go on past failures and bear a network in use: %+v", plan)
	}
	// -v removes the orphan too, and the volumes nobody else mounts.
	plan, err = PlanDown(p, obs, DownOptions{Volumes: true})
	mustPlan(t, plan, err, `#1 container demo-old-1: stop (orphan: service old is not in the project; down -v removes its volumes)
#2 container demo-old-1: remove (orphan: service old is not in the project; down -v removes its volumes) after #1
#3 container demo-api-1: stop (down)
#4 container demo-api-1: remove (down) after #3
#5 container demo-db-1: remove (down) after #4
#6 container demo-web-1: stop (down)
#7 container demo-web-1: remove (down) after #6
#8 network demo_default: remove (down) after #2,#4,#5,#7
#9 volume demo_data: remove (down -v) after #2,#4,#5,#7
`)
	if len(plan.Warnings) != 1 || plan.Warnings[0] != "volume demo_shared is kept: it is in use by container other-app-1" {
		t.Errorf("warnings %q", plan.Warnings)
	}
}

func TestPlanStartStopRemove(t *testing.T) {
	t.Parallel()
	p := testProject()
	obs := running(t, p, "api", "db", "web")
	plan, err := PlanStop(p, obs, nil, nil)
	mustPlan(t, plan, err, `#1 container demo-api-1: stop (stop)
#2 container demo-db-1: stop (stop) after #1
#3 container demo-web-1: stop (stop)
`)
	for i := range obs.Containers {
		obs.Containers[i].Running, obs.Containers[i].State = false, "exited"
	}
	plan, err = PlanStart(p, obs, nil)
	mustPlan(t, plan, err, `#1 container demo-db-1: start (exited (0))
#2 container demo-web-1: start (exited (0))
#3 container demo-api-1: start (exited (0)) after #1
`)
	plan, err = PlanRemove(p, obs, []string{"db"}, false, false, nil)
	mustPlan(t, plan, err, "#1 container demo-db-1: remove (rm)\n")
}

func TestServiceHashIgnoresScaleAndDependencies(t *testing.T) {
	t.Parallel()
	s := testProject().Services["api"]
	h1, _ := ServiceHash(s)
	n := 3
	s.Scale = &n
	s.DependsOn = nil
	h2, _ := ServiceHash(s)
	s.Command = types.ShellCommand{"other"}
	h3, _ := ServiceHash(s)
	if h1 != h2 || h1 == h3 {
		t.Fatalf("hash: scale or depends_on changed it=%v, command did not=%v", h1 != h2, h1 == h3)
	}
}

func TestConvertRefusesWhatItCannotDo(t *testing.T) {
	t.Parallel()
	p := testProject()
	for name, mut := range map[string]func(*types.ServiceConfig){
		"ports with host network": func(s *types.ServiceConfig) {
			s.NetworkMode = "host"
			s.Ports = []types.ServicePortConfig{{Target: 80, Published: "8000"}}
		},
		"sctp port": func(s *types.ServiceConfig) {
			s.Ports = []types.ServicePortConfig{{Target: 80, Published: "8000", Protocol: "sctp"}}
		},
		"undeclared volume": func(s *types.ServiceConfig) {
			s.Volumes = []types.ServiceVolumeConfig{{Type: "volume", Source: "nope", Target: "/x"}}
		},
		"missing bind source": func(s *types.ServiceConfig) {
			s.Volumes = []types.ServiceVolumeConfig{{Type: "bind", Source: "/nonexistent/berth", Target: "/x", Bind: &types.ServiceVolumeBind{}}}
		},
		"undeclared secret": func(s *types.ServiceConfig) {
			s.Secrets = []types.ServiceSecretConfig{{Source: "nope"}}
		},
		"no image": func(s *types.ServiceConfig) { s.Image = "" },
	} {
		s := p.Services["web"]
		mut(&s)
		if _, err := containerConfig(p, s, 1, "h"); err == nil || !strings.Contains(err.Error(), `service "web"`) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}
