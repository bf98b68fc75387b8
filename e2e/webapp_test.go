package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// serviceImages are the images e2e/images/build.sh makes root filesystems
// for, with the config docker import --change gives them (the parts of the
// official images' configs Compose files rely on).
var serviceImages = map[string]struct {
	tag     string
	changes []string
}{
	"redis": {"redis:7", []string{`CMD ["redis-server", "--protected-mode", "no"]`, "EXPOSE 6379"}},
	"postgres": {"postgres:15", []string{
		`ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]`, `CMD ["postgres"]`,
		"ENV PGDATA=/var/lib/postgresql/data", "EXPOSE 5432", "STOPSIGNAL SIGINT",
	}},
}

// buildServiceImages runs e2e/images/build.sh (cached outside the clone;
// .ci/run builds the cache first) and returns name -> root filesystem tar.
func buildServiceImages(t testing.TB) map[string]string {
	t.Helper()
	if _, err := exec.LookPath("debootstrap"); err != nil {
		t.Skip("needs debootstrap (apt-get install debootstrap; .ci/run does)")
	}
	cache := os.Getenv("BERTH_IMAGE_CACHE")
	if cache == "" {
		cache = "/var/cache/berth-ci"
	}
	out, err := exec.Command("bash", "images/build.sh", cache).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("images/build.sh: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	tars := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if name, tar, ok := strings.Cut(sc.Text(), " "); ok {
			tars[name] = tar
		}
	}
	return tars
}

// TestWebappExampleMustComeUpFromPulledImages: examples/webapp's redis and
// postgres images, built from Debian's packages, are pushed to a registry on
// loopback and removed; up pulls them by name, the page counts visits in
// redis, postgres ran its init script, and its named volume keeps the data
// across down and up.
func TestWebappExampleMustComeUpFromPulledImages(t *testing.T) {
	tars := buildServiceImages(t)
	reg := startRegistry(t, registryOpts{})
	reg.configure(t)
	e := newEnv(t)
	for name, img := range serviceImages {
		ref := reg.host + "/library/" + img.tag
		args := []string{"image", "import"}
		for _, c := range img.changes {
			args = append(args, "--change", c)
		}
		e.must(append(args, tars[name], ref)...)
		e.must("image", "push", "-q", ref)
		e.must("image", "rm", ref)
	}
	t.Setenv("REGISTRY", reg.host+"/library")
	port := freePort(t)
	t.Setenv("WEBAPP_PORT", fmt.Sprint(port))
	example, _ := filepath.Abs("../examples/webapp/compose.yaml")
	e.downAtEnd("webapp")

	up := e.must("--progress", "plain", "-f", example, "up", "-d")
	for _, want := range []string{"redis:7 Pulled", "postgres:15 Pulled"} {
		if !strings.Contains(up.stderr, want) {
			t.Errorf("up did not pull: %q missing from\n%s", want, up.stderr)
		}
	}
	visits := func() string {
		var body string
		eventually(t, 30*time.Second, func() error {
			var err error
			body, err = httpGetIn(e.netns, fmt.Sprintf("127.0.0.1:%d", port), "/cgi-bin/visits")
			if err == nil && !strings.Contains(body, "visits: ") || strings.Contains(body, "unreachable") {
				err = fmt.Errorf("page %q", body)
			}
			return err
		})
		return strings.TrimSpace(body[strings.Index(body, "visits: "):])
	}
	first, second := visits(), visits()
	if first == second {
		t.Errorf("visits did not count: %q then %q", first, second)
	}
	psql := func(sql string) string {
		var out string
		eventually(t, 60*time.Second, func() error {
			r := e.berth("-f", example, "exec", "-T", "db", "psql", "-U", "app", "-d", "app", "-At", "-c", sql)
			out = r.stdout
			if r.code != 0 {
				return fmt.Errorf("psql: %s%s", r.stdout, r.stderr)
			}
			return nil
		})
		return strings.TrimSpace(out)
	}
	if got := psql("select string_agg(name, ',' order by name) from guests"); got != "ada,grace" {
		t.Fatalf("guests from init.sql: %q", got)
	}
	psql("insert into guests values ('linus')")
	e.must("-f", example, "down", "-t", "5")
	e.must("-f", example, "up", "-d")
	if got := psql("select string_agg(name, ',' order by name) from guests"); got != "ada,grace,linus" {
		t.Errorf("guests after down and up: %q (the named volume must keep them)", got)
	}
}
