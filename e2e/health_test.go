package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// psRow is the part of ps --format json these tests read.
type psRow struct {
	Name, Service, State, Health, Status string
}

// psRows runs ps -a (after the global flags in global) and returns its
// rows by service.
func psRows(t *testing.T, e *env, global ...string) map[string]psRow {
	t.Helper()
	out := e.must(append(global, "ps", "-a", "--format", "json")...).stdout
	rows := map[string]psRow{}
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var r psRow
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("ps json %q: %v", out, err)
		}
		rows[r.Service] = r
	}
	return rows
}

// TestHealthchecksMustShowInPsAndGateDependents: the shim runs each
// service's healthcheck; ps shows the verdict as Docker does, and
// depends_on service_healthy holds the dependent back until it is healthy,
// or fails up when the dependency turns unhealthy.
func TestHealthchecksMustShowInPsAndGateDependents(t *testing.T) {
	e := newEnv(t)
	e.useTestdata()
	e.downAtEnd("health")
	start := time.Now()
	r := e.must("up", "-d")
	took := time.Since(start)
	rows := psRows(t, e)
	// app waited for db, which turns healthy a second after it starts.
	if rows["db"].Health != "healthy" || rows["app"].State != "running" || took < time.Second {
		t.Fatalf("up -d returned after %v with db %+v, app %+v\n%s", took, rows["db"], rows["app"], r.stderr)
	}
	if !strings.HasSuffix(rows["db"].Status, "(healthy)") {
		t.Errorf("db status %q", rows["db"].Status)
	}
	if rows["slow"].Health != "starting" || !strings.HasSuffix(rows["slow"].Status, "(health: starting)") {
		t.Errorf("slow: %+v", rows["slow"])
	}
	if rows["off"].Health != "" || strings.Contains(rows["off"].Status, "(") {
		t.Errorf("off: %+v", rows["off"])
	}
	eventually(t, 10*time.Second, func() error {
		if s := psRows(t, e)["sick"]; s.Health != "unhealthy" || !strings.HasSuffix(s.Status, "(unhealthy)") {
			return fmt.Errorf("sick: %+v", s)
		}
		return nil
	})
	// timeout: the probe that outlasts its timeout fails, the same probe
	// with time enough passes; the last results are kept in the state
	// (Docker's last five), with their output.
	eventually(t, 10*time.Second, func() error {
		rows := psRows(t, e)
		if rows["hung"].Health != "unhealthy" || rows["patient"].Health != "healthy" {
			return fmt.Errorf("hung %+v, patient %+v", rows["hung"], rows["patient"])
		}
		return nil
	})
	var st struct {
		Health struct {
			Log []struct {
				ExitCode int    `json:"exit_code"`
				Output   string `json:"output"`
			} `json:"log"`
		} `json:"health"`
	}
	eventually(t, 10*time.Second, func() error {
		if err := json.Unmarshal([]byte(readFile(t, filepath.Join(e.containerDir("patient"), "status.json"))), &st); err != nil {
			return err
		}
		if n := len(st.Health.Log); n != 5 || st.Health.Log[n-1].ExitCode != 0 || st.Health.Log[n-1].Output != "slow probe\n" {
			return fmt.Errorf("patient's health log: %+v", st.Health.Log)
		}
		return nil
	})
	// The restart policy goes on beside the healthcheck: flaky is
	// restarted after each exit, whatever its health says.
	eventually(t, 20*time.Second, func() error {
		if n := strings.Count(e.must("logs", "flaky").stdout, "flaky start"); n < 3 {
			return fmt.Errorf("flaky started %d times", n)
		}
		return nil
	})
	table := e.must("ps").stdout
	for _, want := range []string{"(healthy)", "(unhealthy)", "(health: starting)"} {
		if !strings.Contains(table, want) {
			t.Errorf("ps table lacks %q:\n%s", want, table)
		}
	}
	e.must("down", "-t", "1")
	e.mustBeGone("health")

	// A dependency that turns unhealthy fails up, naming it; what was made
	// stays for its logs, as with docker compose.
	e.downAtEnd("health2")
	r = e.berth("-f", "unhealthy-dependency.yaml", "up", "-d")
	if r.code != 1 || !strings.Contains(r.stderr, "health2-sick-1 is unhealthy") {
		t.Fatalf("up with an unhealthy dependency: %+v", r)
	}
	if rows := psRows(t, e, "-p", "health2"); rows["app"].State == "running" {
		t.Fatalf("app started although its dependency is unhealthy: %+v", rows["app"])
	}
	e.must("-p", "health2", "down", "-t", "1")
	e.mustBeGone("health2")
}

// writeCheckedImage writes a docker save archive of busybox whose config
// has a HEALTHCHECK that passes once /tmp/ok exists.
func writeCheckedImage(t *testing.T) string {
	t.Helper()
	layer, err := tarball.LayerFromFile(busyboxTar)
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.Config(img, v1.Config{
		Cmd: []string{"sh"},
		Healthcheck: &v1.HealthConfig{
			Test:     []string{"CMD-SHELL", "echo image-check; touch /tmp/ok"},
			Interval: time.Hour, Retries: 1,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference("checked:latest")
	path := filepath.Join(t.TempDir(), "checked.tar")
	if err := tarball.WriteToFile(path, ref, img); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestImageHealthcheckMustRunUnlessDisabled: the image's HEALTHCHECK is
// run; the service's healthcheck overrides its fields; disable turns it off.
func TestImageHealthcheckMustRunUnlessDisabled(t *testing.T) {
	e := newEnv(t)
	e.useTestdata()
	e.must("image", "import", writeCheckedImage(t), "checked")
	e.downAtEnd("imghealth")
	e.must("up", "-d")
	eventually(t, 10*time.Second, func() error {
		rows := psRows(t, e)
		// faster keeps the image's test with its own interval; inherits
		// probes only after the image's hour; none (test: [NONE]) has no
		// healthcheck at all, as disabled.
		if rows["faster"].Health != "healthy" || rows["inherits"].Health != "starting" || rows["disabled"].Health != "" || rows["none"].Health != "" {
			return fmt.Errorf("health: faster %q inherits %q disabled %q none %q", rows["faster"].Health, rows["inherits"].Health, rows["disabled"].Health, rows["none"].Health)
		}
		return nil
	})
	if r := e.must("exec", "-T", "faster", "ls", "/tmp/ok"); r.stdout != "/tmp/ok\n" {
		t.Fatalf("the image's test did not run: %+v", r)
	}
	e.must("down", "-t", "1")
	e.mustBeGone("imghealth")
}
