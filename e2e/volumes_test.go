package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
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

// TestBindPropagationAndNocopyMustShowInsideAndOnTheHost: binds from a
// shared host mount with propagation rshared pass mounts both ways,
// rslave only from the host, the default (rprivate) neither; rshared
// from a private mount is refused before anything is created, as Docker
// refuses it; a volume with nocopy does not receive the image's content
// at its target, one without does.
func TestBindPropagationAndNocopyMustShowInsideAndOnTheHost(t *testing.T) {
	e := newEnv(t)
	shared, private := filepath.Join(e.dir, "shared"), filepath.Join(e.dir, "private")
	for _, d := range []string{"a/sub", "a/in", "b/sub", "b/in", "c/sub"} {
		os.MkdirAll(filepath.Join(shared, d), 0o755)
	}
	os.MkdirAll(private, 0o755)
	// The host's own mounts may be private (as this one's) or shared:
	// the test makes one of each. Unmounted after the down below.
	for dir, kind := range map[string]uintptr{shared: unix.MS_SHARED, private: unix.MS_PRIVATE} {
		if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
		if err := unix.Mount("", dir, "", kind, ""); err != nil {
			t.Fatal(err)
		}
	}
	e.writeProject(map[string]string{
		"compose.yaml": `name: prop
services:
  p:
    image: busybox
    command: [sleep, '3600']
    privileged: true
    volumes:
      - {type: bind, source: ./shared/a, target: /a, bind: {propagation: rshared}}
      - {type: bind, source: ./shared/b, target: /b, bind: {propagation: rslave}}
      - {type: bind, source: ./shared/c, target: /c}
      - {type: volume, source: nc, target: /var, volume: {nocopy: true}}
  copy:
    image: busybox
    command: [sleep, '3600']
    volumes: [cp:/var]
volumes: {nc: {}, cp: {}}
`,
		"refused.yaml": `name: propbad
services:
  s:
    image: busybox
    command: [sleep, '3600']
    volumes: [{type: bind, source: ./private, target: /x, bind: {propagation: rshared}}]
`})
	e.downAtEnd("prop")
	e.downAtEnd("propbad")

	r := e.berth("-f", "refused.yaml", "up", "-d")
	if r.code == 0 || !strings.Contains(r.stderr, "propagation rshared needs a shared mount") {
		t.Errorf("rshared from a private mount: %+v", r)
	}
	if ps := e.must("-p", "propbad", "ps", "-a", "-q").stdout; strings.TrimSpace(ps) != "" {
		t.Errorf("refused up left containers: %q", ps)
	}

	e.must("up", "-d")
	for _, d := range []string{"a", "b", "c"} {
		if err := unix.Mount("tmpfs", filepath.Join(shared, d, "sub"), "tmpfs", 0, "size=64k"); err != nil {
			t.Fatal(err)
		}
	}
	e.must("exec", "-T", "p", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /a/in && mount -t tmpfs -o size=64k tmpfs /b/in")
	inside := execOut(e, "p", "sh", "-c", "for d in a b c; do grep -c \" /$d/sub \" /proc/self/mountinfo; done; true")
	if inside != "1\n1\n0" {
		t.Errorf("the host's mounts seen inside at /a (rshared), /b (rslave), /c (rprivate): %q, want 1 1 0", strings.Fields(inside))
	}
	host := readFile(t, "/proc/self/mountinfo")
	if !strings.Contains(host, " "+filepath.Join(shared, "a", "in")+" ") {
		t.Errorf("the container's mount at /a/in (rshared) did not reach the host")
	}
	if strings.Contains(host, " "+filepath.Join(shared, "b", "in")+" ") {
		t.Errorf("the container's mount at /b/in (rslave) reached the host")
	}

	if got := execOut(e, "p", "ls", "/var"); got != "" {
		t.Errorf("nocopy volume received the image's /var: %q", got)
	}
	if got := execOut(e, "copy", "ls", "/var"); got != "www" {
		t.Errorf("volume without nocopy: /var holds %q, want the image's www", got)
	}
}
