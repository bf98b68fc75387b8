package compose

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"
)

// project builds a project from services; each gets its name filled in.
func project(svcs ...types.ServiceConfig) *types.Project {
	p := &types.Project{Name: "g", Services: types.Services{}}
	for _, s := range svcs {
		p.Services[s.Name] = s
	}
	return p
}

func dependsOn(names ...string) types.DependsOnConfig {
	d := types.DependsOnConfig{}
	for _, n := range names {
		d[n] = types.ServiceDependency{Condition: types.ServiceConditionStarted, Required: true}
	}
	return d
}

// sc builds a service; the edge fields live in embedded structs, which
// composite literals cannot name directly.
func sc(name string, mods ...func(*types.ServiceConfig)) types.ServiceConfig {
	s := types.ServiceConfig{Name: name}
	for _, m := range mods {
		m(&s)
	}
	return s
}

func needs(names ...string) func(*types.ServiceConfig) {
	return func(s *types.ServiceConfig) { s.DependsOn = dependsOn(names...) }
}
func links(l ...string) func(*types.ServiceConfig) {
	return func(s *types.ServiceConfig) { s.Links = l }
}
func netMode(m string) func(*types.ServiceConfig) {
	return func(s *types.ServiceConfig) { s.NetworkMode = m }
}
func ipc(m string) func(*types.ServiceConfig) {
	return func(s *types.ServiceConfig) { s.Ipc = m }
}
func pid(m string) func(*types.ServiceConfig) {
	return func(s *types.ServiceConfig) { s.Pid = m }
}
func volumesFrom(v ...string) func(*types.ServiceConfig) {
	return func(s *types.ServiceConfig) { s.VolumesFrom = v }
}

func TestGraphEdges(t *testing.T) {
	t.Parallel()
	db := types.ServiceConfig{Name: "db"}
	twoLevels := [][]string{{"db"}, {"web"}}
	for _, tc := range []struct {
		name   string
		web    types.ServiceConfig
		levels [][]string
	}{
		{"depends_on", sc("web", needs("db")), twoLevels},
		{"links service", sc("web", links("db")), twoLevels},
		{"links service:alias", sc("web", links("db:database")), twoLevels},
		{"network_mode service:", sc("web", netMode("service:db")), twoLevels},
		{"ipc service:", sc("web", ipc("service:db")), twoLevels},
		{"pid service:", sc("web", pid("service:db")), twoLevels},
		{"volumes_from service", sc("web", volumesFrom("db")), twoLevels},
		{"volumes_from service:ro", sc("web", volumesFrom("db:ro")), twoLevels},
		{"volumes_from container: is no edge", sc("web", volumesFrom("container:other")), [][]string{{"db", "web"}}},
		{"network_mode bridge is no edge", sc("web", netMode("bridge")), [][]string{{"db", "web"}}},
		{"several edges to one service count once", sc("web", needs("db"), links("db"), netMode("service:db")), twoLevels},
		{"optional depends_on on a missing service is dropped", sc("web", func(s *types.ServiceConfig) { s.DependsOn = types.DependsOnConfig{"gone": {Required: false}} }), [][]string{{"db", "web"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			web := tc.web
			web.Name = "web"
			g, err := NewGraph(project(db, web))
			if err != nil {
				t.Fatalf("NewGraph: %v", err)
			}
			if got := g.Levels(); !slices.EqualFunc(got, tc.levels, slices.Equal) {
				t.Errorf("Levels = %v, want %v", got, tc.levels)
			}
			wantDeps, wantDependents := []string(nil), []string(nil)
			if len(tc.levels) == 2 {
				wantDeps, wantDependents = []string{"db"}, []string{"web"}
			}
			if got := g.Dependencies("web"); !slices.Equal(got, wantDeps) {
				t.Errorf("Dependencies(web) = %v, want %v", got, wantDeps)
			}
			if got := g.Dependents("db"); !slices.Equal(got, wantDependents) {
				t.Errorf("Dependents(db) = %v, want %v", got, wantDependents)
			}
		})
	}
}

func TestGraphUnknownService(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		web  types.ServiceConfig
		want string
	}{
		{sc("web", needs("db")), `service "web": depends_on "db" is not a service`},
		{sc("web", links("db:alias")), `service "web": links "db" is not a service`},
		{sc("web", netMode("service:db")), `service "web": network_mode "db" is not a service`},
		{sc("web", ipc("service:db")), `service "web": ipc "db" is not a service`},
		{sc("web", pid("service:db")), `service "web": pid "db" is not a service`},
		{sc("web", volumesFrom("db:ro")), `service "web": volumes_from "db" is not a service`},
	} {
		t.Run(tc.want, func(t *testing.T) {
			t.Parallel()
			web := tc.web
			web.Name = "web"
			_, err := NewGraph(project(web, types.ServiceConfig{Name: "other"}))
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("err = %v, want invalid argument", err)
			}
			if want := tc.want + ": invalid argument"; err.Error() != want {
				t.Errorf("err = %q, want %q", err, want)
			}
		})
	}
}

func TestGraphCycles(t *testing.T) {
	t.Parallel()
	svc := func(name string, ds ...string) types.ServiceConfig {
		return sc(name, needs(ds...))
	}
	for _, tc := range []struct {
		name string
		p    *types.Project
		want string
	}{
		{"two services", project(svc("b", "a"), svc("a", "b")), `dependency cycle: service "a" -> "b" -> "a"`},
		{"self", project(svc("a", "a"), svc("z")), `dependency cycle: service "a" -> "a"`},
		{"reached through a non-cycle service", project(svc("a", "c"), svc("c", "d"), svc("d", "e"), svc("e", "c")), `dependency cycle: service "c" -> "d" -> "e" -> "c"`},
		{"the smallest of two cycles", project(svc("x", "y"), svc("y", "x"), svc("m", "n"), svc("n", "m")), `dependency cycle: service "m" -> "n" -> "m"`},
		{"through links", project(sc("a", links("b:bee")), svc("b", "a")), `dependency cycle: service "a" -> "b" -> "a"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewGraph(tc.p)
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("err = %v, want invalid argument", err)
			}
			if want := tc.want + ": invalid argument"; err.Error() != want {
				t.Errorf("err = %q, want %q", err, want)
			}
		})
	}
}

func TestGraphLevels(t *testing.T) {
	t.Parallel()
	// A diamond with a tail: web -> (api, cache) -> db; worker -> db.
	p := project(
		sc("web", needs("api", "cache")),
		sc("api", needs("db")),
		sc("cache", needs("db")),
		sc("worker", needs("db")),
		types.ServiceConfig{Name: "db"},
	)
	g, err := NewGraph(p)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"db"}, {"api", "cache", "worker"}, {"web"}}
	if got := g.Levels(); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("Levels = %v, want %v", got, want)
	}
	slices.Reverse(want)
	if got := g.StopLevels(); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("StopLevels = %v, want %v", got, want)
	}
	if got := g.Dependents("db"); !slices.Equal(got, []string{"api", "cache", "worker"}) {
		t.Errorf("Dependents(db) = %v", got)
	}
	// The results are copies: changing them does not change the graph.
	g.Levels()[0][0] = "changed"
	g.Dependencies("web")[0] = "changed"
	if g.Levels()[0][0] != "db" || g.Dependencies("web")[0] != "api" {
		t.Error("Levels or Dependencies exposed the graph's own slices")
	}
}

// randomDAG makes n services where each may depend only on services earlier
// in a random order, so there is no cycle; deps[s] lists s's dependencies.
func randomDAG(r *rand.Rand, n int) (*types.Project, map[string][]string) {
	order := r.Perm(n)
	name := func(i int) string { return fmt.Sprintf("s%03d", order[i]) }
	p := &types.Project{Name: "g", Services: types.Services{}}
	deps := map[string][]string{}
	for i := range n {
		s := sc(name(i), needs())
		for j := range i {
			if r.IntN(n) < 3 { // about 3 dependencies each on average at most
				s.DependsOn[name(j)] = types.ServiceDependency{Required: true}
				deps[s.Name] = append(deps[s.Name], name(j))
			}
		}
		p.Services[s.Name] = s
	}
	return p, deps
}

func TestGraphRandomDAGs(t *testing.T) {
	t.Parallel()
	for seed := uint64(1); seed <= 20; seed++ {
		r := rand.New(rand.NewPCG(seed, seed*7919))
		p, deps := randomDAG(r, 200)
		g, err := NewGraph(p)
		if err != nil {
			t.Fatalf("seed %d: NewGraph: %v", seed, err)
		}
		levelOf := map[string]int{}
		for k, lvl := range g.Levels() {
			if !slices.IsSorted(lvl) {
				t.Errorf("seed %d: level %d not sorted: %v", seed, k, lvl)
			}
			for _, s := range lvl {
				if _, dup := levelOf[s]; dup {
					t.Errorf("seed %d: %s appears twice", seed, s)
				}
				levelOf[s] = k
			}
		}
		if len(levelOf) != len(p.Services) {
			t.Errorf("seed %d: %d services placed, want %d", seed, len(levelOf), len(p.Services))
		}
		for s, ds := range deps {
			for _, d := range ds {
				if levelOf[s] <= levelOf[d] {
					t.Errorf("seed %d: %s (level %d) depends on %s (level %d)", seed, s, levelOf[s], d, levelOf[d])
				}
			}
		}
		for s, k := range levelOf {
			if k == 0 {
				if len(deps[s]) != 0 {
					t.Errorf("seed %d: %s in level 0 has dependencies %v", seed, s, deps[s])
				}
				continue
			}
			if !slices.ContainsFunc(deps[s], func(d string) bool { return levelOf[d] == k-1 }) {
				t.Errorf("seed %d: %s in level %d has no dependency in level %d: not minimal", seed, s, k, k-1)
			}
		}
	}
}

var quotedName = regexp.MustCompile(`"([^"]+)"`)

func TestGraphRandomCycles(t *testing.T) {
	t.Parallel()
	for seed := uint64(1); seed <= 20; seed++ {
		r := rand.New(rand.NewPCG(seed, seed*104729))
		p, deps := randomDAG(r, 200)
		// Pick an existing edge from -> to and add the back edge to -> from.
		var from string
		for _, s := range slices.Sorted(mapKeys(deps)) {
			if len(deps[s]) > 0 && r.IntN(4) == 0 {
				from = s
				break
			}
		}
		if from == "" {
			t.Fatalf("seed %d: no edge to reverse", seed)
		}
		to := deps[from][r.IntN(len(deps[from]))]
		svc := p.Services[to]
		svc.DependsOn[from] = types.ServiceDependency{Required: true}
		p.Services[to] = svc
		deps[to] = append(deps[to], from)

		_, err := NewGraph(p)
		if !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatalf("seed %d: err = %v, want a cycle", seed, err)
		}
		var cycle []string
		for _, m := range quotedName.FindAllStringSubmatch(err.Error(), -1) {
			cycle = append(cycle, m[1])
		}
		if len(cycle) < 2 || cycle[0] != cycle[len(cycle)-1] {
			t.Fatalf("seed %d: %q does not name a closed cycle", seed, err)
		}
		for i := 0; i+1 < len(cycle); i++ {
			if !slices.Contains(deps[cycle[i]], cycle[i+1]) {
				t.Errorf("seed %d: %q: %s does not depend on %s", seed, err, cycle[i], cycle[i+1])
			}
		}
		// The same graph reports the same cycle every time.
		if _, again := NewGraph(p); again.Error() != err.Error() {
			t.Errorf("seed %d: cycle reported as %q then %q", seed, err, again)
		}
	}
}
