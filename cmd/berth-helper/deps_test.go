package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestHelperLinksNoEngineCore: every shim and every container's init run
// this binary, and each pays for what it links (package initialisers at
// start, their allocations kept for the process's life). The engine's core
// package opens the image store, whose reference parser alone compiled
// 0.4 MB of regexps in every shim; the shim needs only engine/hostside.
func TestHelperLinksNoEngineCore(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	banned := map[string]bool{
		"github.com/berth-dev/berth/engine":       true,
		"github.com/berth-dev/berth/engine/image": true,
		"github.com/berth-dev/berth/engine/build": true,
		"github.com/berth-dev/berth/compose":      true,
		"github.com/distribution/reference":       true,
		"net/http":                                true,
	}
	for _, p := range strings.Fields(string(out)) {
		if banned[p] {
			t.Errorf("berth-helper links %s", p)
		}
	}
}
