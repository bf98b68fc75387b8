package compose

import (
	"fmt"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/engine/container"
)

// TestExposeMustReachPsAsDockerShowsIt: expose: entries (ports, ranges,
// protocols) are recorded as "PORT/PROTO"; ps lists the ones no published
// port covers after the published ones, as docker compose ps does.
func TestExposeMustReachPsAsDockerShowsIt(t *testing.T) {
	t.Parallel()
	var cfg container.Config
	s := types.ServiceConfig{Name: "web"}
	s.Expose = types.StringOrNumberList{"8080", "9000-9002/udp", "80/TCP", "8080"}
	if err := serviceExpose(s, &cfg); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.Expose, " "); got != "80/tcp 8080/tcp 9000/udp 9001/udp 9002/udp" {
		t.Fatalf("expose recorded as %q", got)
	}
	cfg.Ports = []container.Port{{HostPort: 8000, ContainerPort: 80, Protocol: "tcp"}}
	r := summarize(engine.Info{Container: container.Container{Config: cfg}}, "p")
	if want := "0.0.0.0:8000->80/tcp, 8080/tcp, 9000/udp, 9001/udp, 9002/udp"; r.Ports != want {
		t.Errorf("ps ports %q, want %q", r.Ports, want)
	}
	if got := fmt.Sprint(r.Publishers[1]); got != "{ 8080 0 tcp}" {
		t.Errorf("publisher of an exposed port: %s", got)
	}
	for _, bad := range []string{"0", "70000", "http", "90-80", "80/icmp", "1-x"} {
		s.Expose = types.StringOrNumberList{bad}
		err := serviceExpose(s, &container.Config{})
		if err == nil || !strings.Contains(err.Error(), `service "web": expose: "`+bad+`"`) {
			t.Errorf("expose %q: %v", bad, err)
		}
	}
}
