package compose

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/compose/files"
	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/engine/network"
)

// loadYAML loads a compose file written into a temporary directory.
func loadYAML(t *testing.T, yaml string) (*types.Project, error) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return testLoad(t.Context(), files.Options{WorkingDir: dir, ProjectName: "p"})
}

func TestNetworkSpecMapsEveryKey(t *testing.T) {
	t.Parallel()
	p, err := loadYAML(t, `
services:
  a: {image: busybox, networks: [front]}
networks:
  front:
    driver: bridge
    driver_opts:
      com.docker.network.bridge.name: br-front
      com.docker.network.driver.mtu: "1400"
      com.docker.network.bridge.enable_icc: "false"
      com.docker.network.bridge.host_binding_ipv4: 127.0.0.1
    ipam:
      config:
        - subnet: 172.28.0.0/16
          ip_range: 172.28.5.0/24
          gateway: 172.28.5.254
          aux_addresses: {router: 172.28.1.5}
        - subnet: fd00:28::/64
          gateway: fd00:28::100
    enable_ipv6: true
    internal: true
    attachable: true
    labels: {team: x}
x-berth:
  network_pool: 10.234.0.0/16/28
`)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NetworkSpec(p, "front")
	if err != nil {
		t.Fatal(err)
	}
	want := network.Spec{
		Name: "p_front", Bridge: "br-front", MTU: 1400, NoICC: true, HostIP: netip.MustParseAddr("127.0.0.1"),
		Internal: true, Attachable: true, EnableIPv6: true,
		IPv4: network.IPAM{Subnet: netip.MustParsePrefix("172.28.0.0/16"), Range: netip.MustParsePrefix("172.28.5.0/24"),
			Gateway: netip.MustParseAddr("172.28.5.254"), Aux: map[string]netip.Addr{"router": netip.MustParseAddr("172.28.1.5")}},
		IPv6: network.IPAM{Subnet: netip.MustParsePrefix("fd00:28::/64"), Gateway: netip.MustParseAddr("fd00:28::100")},
	}
	if s.Name != want.Name || s.Bridge != want.Bridge || s.MTU != want.MTU || s.NoICC != want.NoICC || s.HostIP != want.HostIP ||
		s.Internal != want.Internal || s.Attachable != want.Attachable || s.EnableIPv6 != want.EnableIPv6 ||
		s.IPv4.Subnet != want.IPv4.Subnet || s.IPv4.Range != want.IPv4.Range || s.IPv4.Gateway != want.IPv4.Gateway ||
		s.IPv4.Aux["router"] != want.IPv4.Aux["router"] || s.IPv6.Subnet != want.IPv6.Subnet || s.IPv6.Gateway != want.IPv6.Gateway {
		t.Errorf("spec %+v\nwant %+v", s, want)
	}
	if s.Labels["team"] != "x" || s.Labels[LabelProject] != "p" || s.Labels[LabelNetwork] != "front" {
		t.Errorf("labels %v", s.Labels)
	}
	if len(s.Pools) != 1 || s.Pools[0].String() != "10.234.0.0/16/28" {
		t.Errorf("x-berth network_pool: %v", s.Pools)
	}
}

func TestNetworkingBadInput(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"overlapping subnets", `
services: {a: {image: busybox, networks: [x, y]}}
networks:
  x: {ipam: {config: [{subnet: 10.5.0.0/16}]}}
  y: {ipam: {config: [{subnet: 10.5.3.0/24}]}}
`, []string{`network "y"`, "ipam", "overlaps", "10.5.0.0/16"}},
		{"static address outside", `
services: {a: {image: busybox, networks: {x: {ipv4_address: 10.6.0.5}}}}
networks: {x: {ipam: {config: [{subnet: 10.5.0.0/16}]}}}
`, []string{`service "a"`, "ipv4_address", "outside"}},
		{"static address without a subnet", `
services: {a: {image: busybox, networks: {x: {ipv4_address: 10.6.0.5}}}}
networks: {x: {}}
`, []string{`service "a"`, "ipv4_address", "ipam subnet"}},
		{"static address twice", `
services:
  a: {image: busybox, networks: {x: {ipv4_address: 10.5.0.5}}}
  b: {image: busybox, networks: {x: {ipv4_address: 10.5.0.5}}}
networks: {x: {ipam: {config: [{subnet: 10.5.0.0/16}]}}}
`, []string{`service "b"`, "10.5.0.5", `service "a"`}},
		{"unknown network", `
services: {a: {image: busybox, networks: [nope]}}
`, []string{`service "a"`, "nope"}},
		{"driver", `
services: {a: {image: busybox, networks: [x]}}
networks: {x: {driver: overlay}}
`, []string{`network "x"`, "driver", "overlay"}},
		{"gateway outside", `
services: {a: {image: busybox, networks: [x]}}
networks: {x: {ipam: {config: [{subnet: 10.5.0.0/24, gateway: 10.6.0.1}]}}}
`, []string{`network "x"`, "gateway", "10.6.0.1"}},
		{"ipv6 without enable_ipv6", `
services: {a: {image: busybox, networks: [x]}}
networks: {x: {ipam: {config: [{subnet: "fd00:5::/64"}]}}}
`, []string{`network "x"`, "enable_ipv6"}},
		{"mtu", `
services: {a: {image: busybox, networks: [x]}}
networks: {x: {driver_opts: {com.docker.network.driver.mtu: big}}}
`, []string{`network "x"`, "driver_opts", "mtu"}},
		{"same host port twice", `
services:
  a: {image: busybox, ports: ["8080:80"]}
  b: {image: busybox, ports: ["8080:81"]}
`, []string{`service "b"`, "ports", "8080", `service "a"`}},
		{"fixed host port with replicas", `
services:
  a: {image: busybox, ports: ["8080:80"], deploy: {replicas: 2}}
`, []string{`service "a"`, "ports", "8080", "replicas"}},
		{"port range sizes differ", `
services: {a: {image: busybox, ports: ["9090-9092:8080-8081"]}}
`, []string{"compose.yaml", `service "a"`, "ports", "9090-9092"}},
		{"network_mode with hostname", `
services:
  a: {image: busybox}
  b: {image: busybox, network_mode: "service:a", hostname: x}
`, []string{`service "b"`, "network_mode", "hostname"}},
		{"network_mode of an unknown service", `
services: {b: {image: busybox, network_mode: "service:nope"}}
`, []string{`service "b"`, "nope"}},
		{"dns", `
services: {a: {image: busybox, dns: [not-an-ip]}}
`, []string{`service "a"`, "dns", "not-an-ip"}},
		{"extra_hosts", `
services: {a: {image: busybox, extra_hosts: ["x:nowhere"]}}
`, []string{`service "a"`, "extra_hosts", "nowhere"}},
		{"links to an unknown service", `
services: {a: {image: busybox, links: ["nope:db"]}}
`, []string{`service "a"`, "links", "nope"}},
		{"mac address", `
services: {a: {image: busybox, mac_address: "02:42:zz:00:00:01"}}
`, []string{`service "a"`, "mac_address"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := loadYAML(t, tc.yaml)
			if err == nil {
				_, err = PlanUp(p, Observed{Networks: map[string]bool{}, Volumes: map[string]bool{}}, UpOptions{})
			}
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) && !errors.Is(err, errdefs.ErrNotImplemented) {
				t.Errorf("class of %v", err)
			}
			msg := Message(err)
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("%q lacks %q", msg, w)
				}
			}
		})
	}
}

func TestServiceNetworkingMapsEveryKey(t *testing.T) {
	t.Parallel()
	p, err := loadYAML(t, `
services:
  db: {image: busybox}
  web:
    image: busybox
    hostname: www
    domainname: example.test
    mac_address: "02:42:ac:11:00:09"
    dns: [192.0.2.53]
    dns_search: [svc.example]
    dns_opt: [ndots:2]
    extra_hosts: ["gw:host-gateway", "db.ext=192.0.2.7"]
    links: ["db", "db:database"]
    external_links: ["other-db:legacy"]
    networks:
      back:
        aliases: [www-back]
        ipv4_address: 10.5.0.9
        priority: 10
      front:
        priority: 100
    ports:
      - "80"
      - "127.0.0.1:8081:81"
      - "[::1]:8082:82"
      - "9090-9091:8080-8081"
      - "8000-8010:90/udp"
  side:
    image: busybox
    network_mode: "service:web"
networks:
  front: {}
  back: {ipam: {config: [{subnet: 10.5.0.0/16}]}}
`)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := containerConfig(p, p.Services["web"], 1, "h")
	if err != nil {
		t.Fatal(err)
	}
	n := cfg.Net
	if n.Domainname != "example.test" || n.MacAddress != "02:42:ac:11:00:09" || !slices.Equal(n.DNS, []string{"192.0.2.53"}) ||
		!slices.Equal(n.DNSSearch, []string{"svc.example"}) || !slices.Equal(n.DNSOptions, []string{"ndots:2"}) {
		t.Errorf("networking %+v", n)
	}
	if !slices.Equal(n.ExtraHosts, []string{"db.ext:192.0.2.7", "gw:host-gateway"}) {
		t.Errorf("extra_hosts %v", n.ExtraHosts)
	}
	if n.Links["db"] != "p-db-1" || n.Links["database"] != "p-db-1" || n.Links["legacy"] != "other-db" {
		t.Errorf("links %v", n.Links)
	}
	if len(cfg.Networks) != 2 || cfg.Networks[0].Network != "p_front" || cfg.Networks[1].Network != "p_back" {
		t.Fatalf("networks in priority order: %+v", cfg.Networks)
	}
	if b := cfg.Networks[1]; b.IPv4Address != "10.5.0.9" || !slices.Equal(b.Aliases, []string{"web", "www-back"}) {
		t.Errorf("back attachment %+v", b)
	}
	wantPorts := []container.Port{
		{ContainerPort: 80, Protocol: "tcp"},
		{HostIP: "127.0.0.1", HostPort: 8081, ContainerPort: 81, Protocol: "tcp"},
		{HostIP: "::1", HostPort: 8082, ContainerPort: 82, Protocol: "tcp"},
		{HostPort: 9090, ContainerPort: 8080, Protocol: "tcp"},
		{HostPort: 9091, ContainerPort: 8081, Protocol: "tcp"},
		{HostPort: 8000, HostPortEnd: 8010, ContainerPort: 90, Protocol: "udp"},
	}
	if !slices.Equal(cfg.Ports, wantPorts) {
		t.Errorf("ports %+v\nwant %+v", cfg.Ports, wantPorts)
	}
	side, err := containerConfig(p, p.Services["side"], 1, "h")
	if err != nil {
		t.Fatal(err)
	}
	if side.Net.Mode != "container:p-web-1" || len(side.Networks) != 0 {
		t.Errorf("service:web mode %q, networks %v", side.Net.Mode, side.Networks)
	}
}
