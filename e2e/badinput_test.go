package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadInputMustFailWithOneLineAndChangeNothing feeds broken projects and
// expects one clear line, a non-zero exit, and no containers or networks.
func TestBadInputMustFailWithOneLineAndChangeNothing(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	busy := held.Addr().(*net.TCPAddr).Port

	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"invalid yaml", "services:\n  web:\n    image: [busybox\n", []string{"compose.yaml", "line"}},
		{"unknown image", "services:\n  web:\n    image: nope\n", []string{"compose.yaml: ", `service "web"`, `image "nope:latest": registry unreachable`}},
		{"cycle", "services:\n  a:\n    image: busybox\n    depends_on: [b]\n  b:\n    image: busybox\n    depends_on: [a]\n", []string{`service "a" -> "b" -> "a"`}},
		{"missing env_file", "services:\n  web:\n    image: busybox\n    env_file: missing.env\n", []string{"web", "missing.env"}},
		{"unknown capability", "services:\n  web:\n    image: busybox\n    cap_add: [CAP_FLY]\n", []string{"compose.yaml: ", `service "web": cap_add: unknown capability "CAP_FLY"`}},
		{"bad ulimit", "services:\n  web:\n    image: busybox\n    ulimits: {nofile: {soft: 20, hard: 10}}\n", []string{"compose.yaml: ", `service "web": ulimits: nofile: soft limit 20 is above the hard limit 10`}},
		{"impossible memory", "services:\n  web:\n    image: busybox\n    mem_limit: 1k\n", []string{"compose.yaml: ", `service "web": mem_limit: 1 KiB is below the minimum of 6 MiB`}},
		{"unknown signal", "services:\n  web:\n    image: busybox\n    stop_signal: SIGFLY\n", []string{"compose.yaml: ", `service "web": stop_signal: unknown signal "SIGFLY"`}},
		{"seccomp profile that does not parse", "services:\n  web:\n    image: busybox\n    security_opt: [seccomp=/etc/hostname]\n", []string{"compose.yaml: ", `service "web": security_opt: seccomp profile: decoding seccomp profile failed`}},
		{"missing device", "services:\n  web:\n    image: busybox\n    devices: [/dev/berth-none:/dev/x]\n", []string{"compose.yaml: ", `service "web": devices: device /dev/berth-none does not exist on this host`}},
		{"host sysctl", "services:\n  web:\n    image: busybox\n    sysctls: {vm.swappiness: '1'}\n", []string{"compose.yaml: ", `service "web": sysctls: vm.swappiness is not namespaced`}},
		{"storage quota", "services:\n  web:\n    image: busybox\n    storage_opt: {size: 1G}\n", []string{"compose.yaml: ", `service "web": storage_opt: a per-container storage quota is not supported`}},
		{"other runtime", "services:\n  web:\n    image: busybox\n    runtime: runsc\n", []string{"compose.yaml: ", `service "web": runtime: runtime "runsc" is not available`}},
		{"user namespace", "services:\n  web:\n    image: busybox\n    userns_mode: private\n", []string{"compose.yaml: ", `service "web": userns_mode: "private": user namespaces are not supported`}},
		{"port in use", fmt.Sprintf("services:\n  a:\n    image: busybox\n    command: [sleep, '3600']\n  web:\n    image: busybox\n    command: [sleep, '3600']\n    depends_on: [a]\n    ports: ['127.0.0.1:%d:80']\n", busy), []string{"compose.yaml: ", `service "web": ports: `, fmt.Sprint(busy), "already in use"}},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			e := newEnv(t)
			e.writeProject(map[string]string{"compose.yaml": tc.yaml})
			r := e.berth("-p", "bad", "up", "-d")
			if r.code == 0 {
				t.Fatalf("up succeeded:\n%s", r.stderr)
			}
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			last := lines[len(lines)-1]
			for _, w := range tc.want {
				if !strings.Contains(last, w) {
					t.Errorf("error line %q lacks %q (stderr:\n%s)", last, w, r.stderr)
				}
			}
			// The file is broken, so look at the state itself.
			if cs, _ := os.ReadDir(filepath.Join(e.root, "containers")); len(cs) > 1 {
				t.Errorf("container records left: %d", len(cs)-1)
			}
			nets, _ := os.ReadDir(filepath.Join(e.root, "network"))
			for _, n := range nets {
				if strings.HasSuffix(n.Name(), ".json") {
					t.Errorf("network state left: %s", n.Name())
				}
			}
			if leaks := envLeaks(e); len(leaks) > 0 {
				t.Errorf("host changed: %v", leaks)
			}
		})
	}
}

// TestBadCommandLinesMustFailWithOneLine: an unknown verb, subcommand or
// flag, an unknown service named to any verb, and two services with one
// container_name exit 1 with one clear line, and nothing is created.
func TestBadCommandLinesMustFailWithOneLine(t *testing.T) {
	e := newEnv(t)
	e.writeProject(map[string]string{"compose.yaml": "name: badcl\nservices:\n  web: {image: busybox, command: [sleep, '3600']}\n"})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"pul"}, `unknown berth command: "pul"`},
		{[]string{"image", "tagg", "a", "b"}, `unknown berth command: "image tagg"`},
		{[]string{"up", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"logs", "nope"}, "no such service: nope"},
		{[]string{"stop", "nope"}, "no such service: nope"},
		{[]string{"restart", "nope"}, "no such service: nope"},
		{[]string{"events", "nope"}, "no such service: nope"},
		{[]string{"up", "-d", "nope"}, "no such service: nope"},
	} {
		r := e.berth(tc.args...)
		if r.code != 1 || !strings.Contains(r.stderr, tc.want) || strings.Count(strings.TrimSpace(r.stderr), "\n") > 1 {
			t.Errorf("berth %v: exit %d, stderr %q; want %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	e.writeProject(map[string]string{"compose.yaml": "name: badcl\nservices:\n  a: {image: busybox, container_name: same}\n  b: {image: busybox, container_name: same}\n"})
	if r := e.berth("up", "-d"); r.code != 1 || !strings.Contains(r.stderr, `compose.yaml: service "b": container_name "same" is already in use by service "a"`) {
		t.Errorf("two services with one container_name: %+v", r)
	}
	if names := psNames(e, "-p", "badcl"); names != "" {
		t.Fatalf("created %s", names)
	}
}
