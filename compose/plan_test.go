package compose

import (
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
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

func TestPlanUpFromNothing(t *testing.T) {
	t.Parallel()
	p := testProject()
	plan, err := PlanUp(p, Observed{}, UpOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := `network demo_default: create-network
volume demo_data: create-volume
[0] service db: create demo-db-1
[0] service db: start demo-db-1
[0] service web: create demo-web-1
[0] service web: start demo-web-1
[1] service api: create demo-api-1
[1] service api: start demo-api-1
`
	if got := plan.String(); got != want {
		t.Fatalf("plan:\n%s\nwant:\n%s", got, want)
	}
	// The created container carries Compose's labels and the service's shape.
	cfg := plan.Levels[0][1].Steps[0].Config
	if cfg.Labels[LabelProject] != "demo" || cfg.Labels[LabelService] != "web" || cfg.Labels[LabelNumber] != "1" || cfg.Labels[LabelConfigHash] != hashOf(t, p, "web") {
		t.Errorf("labels %v", cfg.Labels)
	}
	if len(cfg.Ports) != 1 || cfg.Ports[0].HostPort != 8080 || cfg.Networks[0].Network != "demo_default" || cfg.Networks[0].Aliases[0] != "web" {
		t.Errorf("config %+v", cfg)
	}
	if db := plan.Levels[0][0].Steps[0].Config; db.Mounts[0].Source != "demo_data" {
		t.Errorf("volume source %q", db.Mounts[0].Source)
	}
}

func TestPlanUpIsEmptyWhenNothingChanged(t *testing.T) {
	t.Parallel()
	p := testProject()
	obs := Observed{Networks: map[string]bool{"demo_default": true}, Volumes: map[string]bool{"demo_data": true}}
	for _, s := range []string{"api", "db", "web"} {
		obs.Containers = append(obs.Containers, ObservedContainer{ID: s + "id", Name: "demo-" + s + "-1", Service: s, Number: 1, Hash: hashOf(t, p, s), Running: true})
	}
	plan, err := PlanUp(p, obs, UpOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !plan.Empty() {
		t.Fatalf("plan is not empty:\n%s", plan)
	}
}

func TestPlanUpRecreatesChangedStartsStoppedRemovesOrphans(t *testing.T) {
	t.Parallel()
	p := testProject()
	obs := Observed{Networks: map[string]bool{"demo_default": true}, Volumes: map[string]bool{"demo_data": true}}
	obs.Containers = []ObservedContainer{
		{ID: "a1", Name: "demo-api-1", Service: "api", Number: 1, Hash: "stale", Running: true},
		{ID: "d1", Name: "demo-db-1", Service: "db", Number: 1, Hash: hashOf(t, p, "db"), Running: false},
		{ID: "w1", Name: "demo-web-1", Service: "web", Number: 1, Hash: hashOf(t, p, "web"), Running: true},
		{ID: "w2", Name: "demo-web-2", Service: "web", Number: 2, Hash: hashOf(t, p, "web"), Running: true},
		{ID: "o1", Name: "demo-old-1", Service: "old", Number: 1, Running: true},
	}
	plan, err := PlanUp(p, obs, UpOptions{RemoveOrphans: true})
	if err != nil {
		t.Fatal(err)
	}
	want := `[0] service db: start demo-db-1
[0] service web: stop demo-web-2
[0] service web: remove demo-web-2
[1] service api: stop demo-api-1
[1] service api: remove demo-api-1
[1] service api: create demo-api-1
[1] service api: start demo-api-1
service old: stop demo-old-1
service old: remove demo-old-1
`
	if got := plan.String(); got != want {
		t.Fatalf("plan:\n%s\nwant:\n%s", got, want)
	}
	// Without --remove-orphans the orphan is only warned about.
	plan, _ = PlanUp(p, obs, UpOptions{})
	if len(plan.Cleanup) != 0 || len(plan.Warnings) != 1 || !strings.Contains(plan.Warnings[0], "demo-old-1") {
		t.Fatalf("orphan handling: %+v", plan.Warnings)
	}
}

func TestPlanDown(t *testing.T) {
	t.Parallel()
	p := testProject()
	obs := Observed{
		Containers: []ObservedContainer{
			{ID: "a1", Name: "demo-api-1", Service: "api", Number: 1, Running: true},
			{ID: "d1", Name: "demo-db-1", Service: "db", Number: 1, Running: false},
		},
		ProjectNetworks: []string{"demo_default"},
		ProjectVolumes:  []string{"demo_data"},
	}
	plan, err := PlanDown(p, obs, DownOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := `[0] service api: stop demo-api-1
[0] service api: remove demo-api-1
[1] service db: remove demo-db-1
network demo_default: remove-network
`
	if got := plan.String(); got != want {
		t.Fatalf("plan:\n%s\nwant:\n%s", got, want)
	}
	plan, _ = PlanDown(p, obs, DownOptions{Volumes: true})
	if !strings.HasSuffix(plan.String(), "volume demo_data: remove-volume\n") {
		t.Fatalf("down -v plan:\n%s", plan)
	}
}

func TestServiceHashIgnoresScale(t *testing.T) {
	t.Parallel()
	s := testProject().Services["web"]
	h1, _ := ServiceHash(s)
	n := 3
	s.Scale = &n
	h2, _ := ServiceHash(s)
	s.Command = types.ShellCommand{"other"}
	h3, _ := ServiceHash(s)
	if h1 != h2 || h1 == h3 {
		t.Fatalf("hash: scale changed it=%v, command did not=%v", h1 != h2, h1 == h3)
	}
}

func TestConvertRefusesWhatItCannotDo(t *testing.T) {
	t.Parallel()
	p := testProject()
	for name, mut := range map[string]func(*types.ServiceConfig){
		"host network": func(s *types.ServiceConfig) { s.NetworkMode = "host" },
		"port range": func(s *types.ServiceConfig) {
			s.Ports = []types.ServicePortConfig{{Target: 80, Published: "8000-8001"}}
		},
		"anonymous": func(s *types.ServiceConfig) { s.Volumes = []types.ServiceVolumeConfig{{Type: "volume", Target: "/x"}} },
		"no image":  func(s *types.ServiceConfig) { s.Image = "" },
	} {
		s := p.Services["web"]
		mut(&s)
		if _, err := containerConfig(p, s, 1, "h"); err == nil || !strings.Contains(err.Error(), `service "web"`) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestPlanUpAwaitsCompletedDependencies(t *testing.T) {
	t.Parallel()
	p := testProject()
	api := p.Services["api"]
	api.DependsOn = types.DependsOnConfig{"db": {Condition: types.ServiceConditionCompletedSuccessfully}}
	p.Services["api"] = api
	plan, err := PlanUp(p, Observed{}, UpOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plan.String(), "[1] service api: await-success demo-db-1\n[1] service api: create demo-api-1\n") {
		t.Fatalf("plan:\n%s", plan)
	}
	// Nothing to start, nothing to wait for.
	if plan, _ := PlanUp(p, Observed{}, UpOptions{NoStart: true}); strings.Contains(plan.String(), "await-success") {
		t.Fatalf("create-only plan waits:\n%s", plan)
	}
}

func TestLevelPlanGroupsByLevel(t *testing.T) {
	t.Parallel()
	levels := [][]ObservedContainer{
		{{ID: "d", Name: "demo-db-1", Service: "db"}, {ID: "w", Name: "demo-web-1", Service: "web", Running: true}},
		{{ID: "a", Name: "demo-api-1", Service: "api"}},
	}
	plan := levelPlan(levels, func(c ObservedContainer) []Step {
		if c.Running {
			return nil
		}
		return []Step{{Kind: StepStart, Service: c.Service, Name: c.Name, ID: c.ID}}
	})
	want := "[0] service db: start demo-db-1\n[1] service api: start demo-api-1\n"
	if got := plan.String(); got != want {
		t.Fatalf("plan:\n%s\nwant:\n%s", got, want)
	}
}

func TestPlanUpRecreatesWhenTheImageChanged(t *testing.T) {
	t.Parallel()
	p := testProject()
	obs := Observed{Networks: map[string]bool{"demo_default": true}, Volumes: map[string]bool{"demo_data": true},
		Images: map[string]string{"busybox": "sha256:new"}}
	for _, s := range []string{"api", "db", "web"} {
		id := "sha256:new"
		if s == "web" {
			id = "sha256:old"
		}
		obs.Containers = append(obs.Containers, ObservedContainer{ID: s + "id", Name: "demo-" + s + "-1", Service: s, Number: 1,
			Hash: hashOf(t, p, s), ImageID: id, Running: true})
	}
	plan, err := PlanUp(p, obs, UpOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := `[0] service web: stop demo-web-1
[0] service web: remove demo-web-1
[0] service web: create demo-web-1
[0] service web: start demo-web-1
`
	if got := plan.String(); got != want {
		t.Fatalf("plan:\n%s\nwant:\n%s", got, want)
	}
}
