package compose

import (
	"fmt"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"
)

// Graph is the dependency graph of a project's services: an edge a -> b
// means a needs b started first (depends_on, links, network_mode, ipc, pid
// or volumes_from naming b).
type Graph struct {
	deps       map[string][]string // sorted, unique
	dependents map[string][]string // sorted, unique
	levels     [][]string
}

// edge is one reference from a service to another, with the key it came
// from so errors can name it.
type edge struct {
	key, target string
}

// NewGraph builds the graph of p's services. A reference to a service that
// does not exist, or a cycle, is an errdefs.ErrInvalidArgument naming it.
func NewGraph(p *types.Project) (*Graph, error) {
	g := &Graph{deps: map[string][]string{}, dependents: map[string][]string{}}
	svcNames := slices.Sorted(mapKeys(p.Services))
	for _, name := range svcNames {
		g.deps[name] = nil
	}
	for _, name := range svcNames {
		for _, e := range serviceEdges(p.Services[name]) {
			if _, ok := p.Services[e.target]; !ok {
				if e.key == "" { // optional depends_on: a missing target is fine
					continue
				}
				return nil, fmt.Errorf("service %q: %s %q is not a service: %w", name, e.key, e.target, errdefs.ErrInvalidArgument)
			}
			if !slices.Contains(g.deps[name], e.target) {
				g.deps[name] = append(g.deps[name], e.target)
				g.dependents[e.target] = append(g.dependents[e.target], name)
			}
		}
	}
	for _, name := range svcNames {
		slices.Sort(g.deps[name])
		slices.Sort(g.dependents[name])
	}
	if err := g.layer(svcNames); err != nil {
		return nil, err
	}
	return g, nil
}

// serviceEdges lists s's references to other services, in a fixed order.
// An optional depends_on (required: false) gets an empty key.
func serviceEdges(s types.ServiceConfig) []edge {
	var out []edge
	for _, dep := range slices.Sorted(mapKeys(s.DependsOn)) {
		key := "depends_on"
		if !s.DependsOn[dep].Required {
			key = ""
		}
		out = append(out, edge{key, dep})
	}
	for _, l := range s.Links {
		// "svc" or "svc:alias"
		target, _, _ := strings.Cut(l, ":")
		out = append(out, edge{"links", target})
	}
	for _, m := range []struct{ key, value string }{
		{"network_mode", s.NetworkMode}, {"ipc", s.Ipc}, {"pid", s.Pid},
	} {
		if target, ok := strings.CutPrefix(m.value, types.ServicePrefix); ok {
			out = append(out, edge{m.key, target})
		}
	}
	for _, v := range s.VolumesFrom {
		// "svc", "svc:ro", "service:svc[:ro]"; "container:x" names a
		// container outside the project, not a service.
		if strings.HasPrefix(v, types.ContainerPrefix) {
			continue
		}
		v = strings.TrimPrefix(v, types.ServicePrefix)
		target, _, _ := strings.Cut(v, ":")
		out = append(out, edge{"volumes_from", target})
	}
	return out
}

// layer places every service one level above its highest dependency, or
// reports a cycle.
func (g *Graph) layer(svcNames []string) error {
	level := map[string]int{}
	placed := 0
	for placed < len(svcNames) {
		var next []string
		for _, name := range svcNames {
			if _, done := level[name]; done {
				continue
			}
			ready := true
			for _, d := range g.deps[name] {
				if _, done := level[d]; !done {
					ready = false
					break
				}
			}
			if ready {
				next = append(next, name)
			}
		}
		if len(next) == 0 {
			return g.cycleError(svcNames, level)
		}
		for _, name := range next {
			level[name] = len(g.levels)
		}
		g.levels = append(g.levels, next)
		placed += len(next)
	}
	return nil
}

// cycleError reports one cycle among the unplaced services, chosen
// deterministically: every unplaced service has an unplaced dependency, so
// walking from the smallest one along the smallest unplaced dependency must
// come back to a service already seen.
func (g *Graph) cycleError(svcNames []string, level map[string]int) error {
	unplaced := func(s string) bool { _, ok := level[s]; return !ok }
	var start string
	for _, name := range svcNames {
		if unplaced(name) {
			start = name
			break
		}
	}
	var walk []string
	seen := map[string]int{}
	for cur := start; ; {
		if i, ok := seen[cur]; ok {
			walk = walk[i:]
			break
		}
		seen[cur] = len(walk)
		walk = append(walk, cur)
		for _, d := range g.deps[cur] {
			if unplaced(d) {
				cur = d
				break
			}
		}
	}
	// Start the cycle at its smallest name so the message is stable.
	least := 0
	for i, s := range walk {
		if s < walk[least] {
			least = i
		}
	}
	cycle := append(slices.Clone(walk[least:]), walk[:least]...)
	cycle = append(cycle, cycle[0])
	quoted := make([]string, len(cycle))
	for i, s := range cycle {
		quoted[i] = fmt.Sprintf("%q", s)
	}
	return fmt.Errorf("dependency cycle: service %s: %w", strings.Join(quoted, " -> "), errdefs.ErrInvalidArgument)
}

// Levels is the start order: level 0 has no dependencies and each later
// level depends only on earlier ones; each level is sorted by name.
func (g *Graph) Levels() [][]string {
	out := make([][]string, len(g.levels))
	for i, l := range g.levels {
		out[i] = slices.Clone(l)
	}
	return out
}

// StopLevels is the stop order: Levels reversed, dependents first.
func (g *Graph) StopLevels() [][]string {
	out := g.Levels()
	slices.Reverse(out)
	return out
}

// Dependencies are the services svc needs directly, sorted.
func (g *Graph) Dependencies(svc string) []string { return slices.Clone(g.deps[svc]) }

// Dependents are the services that need svc directly, sorted.
func (g *Graph) Dependents(svc string) []string { return slices.Clone(g.dependents[svc]) }

// Select returns the named services (every service when none is named),
// with everything they depend on when deps is set. A name that is not a
// service is errdefs.ErrNotFound, as docker compose's "no such service".
func (g *Graph) Select(services []string, deps bool) (map[string]bool, error) {
	out := map[string]bool{}
	if len(services) == 0 {
		for name := range g.deps {
			out[name] = true
		}
		return out, nil
	}
	var visit func(string)
	visit = func(name string) {
		if out[name] {
			return
		}
		out[name] = true
		if deps {
			for _, d := range g.deps[name] {
				visit(d)
			}
		}
	}
	for _, name := range services {
		if _, ok := g.deps[name]; !ok {
			return nil, fmt.Errorf("no such service: %s: %w", name, errdefs.ErrNotFound)
		}
		visit(name)
	}
	return out, nil
}

// SelectDependents returns the named services (every service when none is
// named) with every service that depends on them, directly or not: what
// must go when they go.
func (g *Graph) SelectDependents(services []string) (map[string]bool, error) {
	if len(services) == 0 {
		return g.Select(nil, false)
	}
	out := map[string]bool{}
	var visit func(string)
	visit = func(name string) {
		if out[name] {
			return
		}
		out[name] = true
		for _, d := range g.dependents[name] {
			visit(d)
		}
	}
	for _, name := range services {
		if _, ok := g.deps[name]; !ok {
			return nil, fmt.Errorf("no such service: %s: %w", name, errdefs.ErrNotFound)
		}
		visit(name)
	}
	return out, nil
}
