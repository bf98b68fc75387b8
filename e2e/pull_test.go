package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// TestPullMustIgnoreFailuresOfImagesThatAreBuilt: as in Compose, a failed
// pull of a service's image is only a warning when the service can build
// it; the same failure for a service without build fails the pull and
// names the service.
func TestPullMustIgnoreFailuresOfImagesThatAreBuilt(t *testing.T) {
	reg := startRegistry(t, registryOpts{})
	reg.configure(t)
	e := newEnv(t)
	e.writeProject(map[string]string{
		"compose.yaml": fmt.Sprintf(`name: pullbuild
services:
  app:
    build: .
    image: %s/e2e/app:1
`, reg.host),
		"Dockerfile": "FROM busybox\n",
	})
	r := e.must("--progress", "plain", "pull")
	if !strings.Contains(r.stderr, "Pull failed") || !strings.Contains(r.stderr, "to be built from source (service app)") {
		t.Errorf("pull of an image the service builds:\n%s", r.stderr)
	}

	e.writeProject(map[string]string{"compose.yaml": fmt.Sprintf(`name: pullbuild
services:
  app:
    build: .
    image: %[1]s/e2e/app:1
  other:
    image: %[1]s/e2e/app:1
`, reg.host)})
	r = e.berth("--progress", "plain", "pull")
	if r.code == 0 || !strings.Contains(r.stderr, `service "other": image`) {
		t.Errorf("pull of an image a service without build needs: exit %d\n%s", r.code, r.stderr)
	}
}
