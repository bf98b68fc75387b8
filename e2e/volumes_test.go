package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// execOut runs a command in a service and returns its trimmed output.
func execOut(e *env, svc string, args ...string) string {
	e.t.Helper()
	return strings.TrimSpace(e.must(append([]string{"exec", "-T", svc}, args...)...).stdout)
}

// TestVolumeKindsMustMountAsAsked: anonymous volumes (kept across a
// recreate, renewed by -V), tmpfs, read-only binds, subpaths, bind-type
// driver_opts and volumes_from, observed from inside the containers.
func TestVolumeKindsMustMountAsAsked(t *testing.T) {
	e := newEnv(t)
	hostdir := filepath.Join(e.dir, "hostdir")
	os.MkdirAll(hostdir, 0o755)
	os.WriteFile(filepath.Join(hostdir, "from-host"), []byte("hi"), 0o644)
	os.MkdirAll(filepath.Join(e.dir, "ro"), 0o755)
	project := func(greeting string) string {
		return `
name: vk
services:
  a:
    image: busybox
    command: [sleep, '3600']
    environment: {GREETING: ` + greeting + `}
    volumes:
      - /anon
      - type: tmpfs
        target: /scratch
        tmpfs: {size: 1048576}
      - type: bind
        source: ./ro
        target: /ro
        read_only: true
      - type: volume
        source: hostdir
        target: /hd
      - type: volume
        source: data
        target: /sub
        volume: {subpath: inner}
  b:
    image: busybox
    command: [sleep, '3600']
    volumes_from: ['a:ro']
volumes:
  data: {name: vk_data, external: true}
  hostdir:
    driver_opts: {type: none, o: bind, device: ` + hostdir + `}
`
	}
	e.writeProject(map[string]string{"compose.yaml": project("one")})
	e.downAtEnd("vk")
	e.must("volume", "create", "vk_data")
	t.Cleanup(func() { e.berth("volume", "rm", "vk_data") })
	os.MkdirAll(filepath.Join(e.root, "volumes", "vk_data", "_data", "inner"), 0o755)
	os.WriteFile(filepath.Join(e.root, "volumes", "vk_data", "_data", "inner", "f"), []byte("inside"), 0o644)

	e.must("up", "-d")
	e.must("exec", "-T", "a", "sh", "-c", "echo kept > /anon/f")
	if got := execOut(e, "a", "sh", "-c", "grep ' /scratch ' /proc/mounts"); !strings.HasPrefix(got, "tmpfs /scratch tmpfs") || !strings.Contains(got, "size=1024k") {
		t.Errorf("/scratch: %q", got)
	}
	if r := e.berth("exec", "-T", "a", "touch", "/ro/x"); r.code == 0 {
		t.Errorf("wrote to a read-only bind")
	}
	if got := execOut(e, "a", "cat", "/hd/from-host"); got != "hi" {
		t.Errorf("driver_opts bind volume: %q", got)
	}
	if got := execOut(e, "a", "cat", "/sub/f"); got != "inside" {
		t.Errorf("subpath: %q", got)
	}
	if got := execOut(e, "b", "cat", "/anon/f"); got != "kept" {
		t.Errorf("volumes_from: %q", got)
	}
	if r := e.berth("exec", "-T", "b", "touch", "/anon/g"); r.code == 0 {
		t.Errorf("volumes_from :ro is writable")
	}
	// A volume in use is never removed.
	if r := e.berth("volume", "rm", "vk_data"); r.code != 1 || !strings.Contains(r.stderr, "in use by container vk-a-1") {
		t.Errorf("volume rm of a volume in use: %+v", r)
	}

	// Recreate keeps the anonymous volume; -V renews it.
	e.writeProject(map[string]string{"compose.yaml": project("two")})
	e.must("up", "-d", "-t", "1", "a")
	if got := execOut(e, "a", "cat", "/anon/f"); got != "kept" {
		t.Fatalf("anonymous volume lost across a recreate: %q", got)
	}
	e.must("up", "-d", "-t", "1", "-V", "--force-recreate", "--no-deps", "a")
	if r := e.berth("exec", "-T", "a", "cat", "/anon/f"); r.code == 0 {
		t.Fatalf("-V kept the anonymous volume: %q", r.stdout)
	}
	// down without -v leaves anonymous volumes; prune removes them.
	e.must("down", "-t", "1")
	if r := e.must("volume", "ls", "-q", "--filter", "dangling=true"); len(strings.Fields(r.stdout)) < 2 {
		t.Fatalf("dangling volumes after down: %q", r.stdout)
	}
	e.must("volume", "prune", "-f")
	left := e.must("volume", "ls", "-q").stdout
	if strings.Join(strings.Fields(left), ",") != "vk_data,vk_hostdir" {
		t.Fatalf("after prune: %q", left)
	}
	if got := e.must("volume", "inspect", "--format", "{{.Mountpoint}}", "vk_hostdir").stdout; strings.TrimSpace(got) != hostdir {
		t.Fatalf("inspect: %q", got)
	}
	e.must("volume", "rm", "vk_hostdir")
	if _, err := os.Stat(filepath.Join(hostdir, "from-host")); err != nil {
		t.Fatalf("removing a bind volume touched the host directory: %v", err)
	}
}

// TestSecretsAndConfigsMustAppearWithTheirOwnersAndModes: file,
// environment and inline secrets and configs, at their default and
// configured targets.
func TestSecretsAndConfigsMustAppearWithTheirOwnersAndModes(t *testing.T) {
	e := newEnv(t)
	t.Setenv("BERTH_E2E_TOKEN", "t0ken")
	e.writeProject(map[string]string{"pw.txt": "hunter2", "compose.yaml": `
name: secr
services:
  s:
    image: busybox
    command: [sleep, '3600']
    secrets:
      - pw
      - source: token
        target: tok
        uid: "1000"
        gid: "1001"
        mode: 0400
    configs:
      - source: conf
        target: /etc/app.conf
      - motd
secrets:
  pw: {file: ./pw.txt}
  token: {environment: BERTH_E2E_TOKEN}
configs:
  conf: {content: "port=8080"}
  motd: {file: ./pw.txt}
`})
	e.downAtEnd("secr")
	e.must("up", "-d")
	for path, want := range map[string]string{"/run/secrets/pw": "hunter2", "/run/secrets/tok": "t0ken", "/etc/app.conf": "port=8080", "/motd": "hunter2"} {
		if got := execOut(e, "s", "cat", path); got != want {
			t.Errorf("%s: %q, want %q", path, got, want)
		}
	}
	if got := execOut(e, "s", "stat", "-c", "%u %g %a", "/run/secrets/tok"); got != "1000 1001 400" {
		t.Errorf("owner and mode of tok: %q", got)
	}
	if r := e.berth("exec", "-T", "s", "sh", "-c", "echo x > /run/secrets/pw"); r.code == 0 {
		t.Errorf("a secret is writable")
	}
}

// TestBadMountsMustFailBeforeAnythingIsCreated: a missing secret file, an
// external secret, a missing bind source that may not be made.
func TestBadMountsMustFailBeforeAnythingIsCreated(t *testing.T) {
	for name, tc := range map[string]struct{ yaml, want string }{
		"missing secret file": {"services:\n  s:\n    image: busybox\n    secrets: [pw]\nsecrets:\n  pw: {file: ./nope.txt}\n",
			`service "s": secrets: secret "pw": file`},
		"external secret": {"services:\n  s:\n    image: busybox\n    secrets: [pw]\nsecrets:\n  pw: {external: true}\n",
			`secret "pw" is external`},
		"missing bind source": {"services:\n  s:\n    image: busybox\n    volumes:\n      - type: bind\n        source: ./nope\n        target: /x\n        bind: {create_host_path: false}\n",
			`service "s": volumes: bind source path`},
	} {
		t.Run(strings.ReplaceAll(name, " ", "_"), func(t *testing.T) {
			e := newEnv(t)
			e.writeProject(map[string]string{"compose.yaml": tc.yaml})
			r := e.berth("-p", "bad", "up", "-d")
			if r.code == 0 || !strings.Contains(r.stderr, "compose.yaml: ") || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("up: exit %d, stderr %q; want %q", r.code, r.stderr, tc.want)
			}
			if names := psNames(e, "-p", "bad"); names != "" {
				t.Fatalf("created %s", names)
			}
			if nets, _ := filepath.Glob(filepath.Join(e.root, "network", "*.json")); len(nets) > 0 {
				t.Fatalf("created networks %v", nets)
			}
		})
	}
}
