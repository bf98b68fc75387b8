package berth

import (
	"os/exec"
	"strings"
	"testing"
)

type pkg struct {
	path, doc string
	imports   []string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-tags", "seccomp", "-f", "{{.ImportPath}}\t{{.Doc}}\t{{join .Imports \" \"}}", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var ps []pkg
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.SplitN(line, "\t", 3)
		ps = append(ps, pkg{path: f[0], doc: f[1], imports: strings.Fields(f[2])})
	}
	return ps
}

const mod = "github.com/berth-dev/berth"

// layer ranks the top-level folders: a package may import only packages of
// its own or a lower rank (cmd -> compose -> engine), and netdns stays
// independent of the engine.
func layer(path string) (string, int) {
	rel := strings.TrimPrefix(path, mod+"/")
	switch {
	case strings.HasPrefix(rel, "cmd/"):
		return "cmd", 3
	case rel == "compose" || strings.HasPrefix(rel, "compose/"):
		return "compose", 2
	case rel == "engine" || strings.HasPrefix(rel, "engine/"):
		return "engine", 1
	case rel == "netdns" || strings.HasPrefix(rel, "netdns/"):
		return "netdns", 0
	}
	return "other", -1
}

func TestImportDirection(t *testing.T) {
	for _, p := range listPackages(t) {
		from, fr := layer(p.path)
		for _, imp := range p.imports {
			if !strings.HasPrefix(imp, mod+"/") {
				continue
			}
			to, tr := layer(imp)
			if from == "netdns" && to == "engine" {
				t.Errorf("%s imports %s: netdns must not import the engine", p.path, imp)
			}
			if fr >= 0 && tr > fr {
				t.Errorf("%s imports %s: imports go cmd -> compose -> engine only", p.path, imp)
			}
			if from == "engine" && to == "compose" {
				t.Errorf("%s imports %s: the engine knows nothing of Compose", p.path, imp)
			}
		}
	}
}

func TestEveryPackageHasADocComment(t *testing.T) {
	for _, p := range listPackages(t) {
		if strings.TrimSpace(p.doc) == "" {
			t.Errorf("package %s has no doc comment", p.path)
		}
	}
}
