package compose

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/engine/container"
)

// serviceExpose records the service's expose: ports ("PORT", "FROM-TO",
// with an optional "/PROTO"), as "80/tcp", for ps to show as Docker does;
// the engine adds the image's EXPOSE.
func serviceExpose(s types.ServiceConfig, cfg *container.Config) error {
	for _, e := range s.Expose {
		ports, err := parseExpose(e)
		if err != nil {
			return inService(s.Name, "expose", fmt.Errorf("%q: %w", e, err))
		}
		cfg.Expose = append(cfg.Expose, ports...)
	}
	slices.Sort(cfg.Expose)
	cfg.Expose = slices.Compact(cfg.Expose)
	return nil
}

// parseExpose expands one expose entry into "PORT/PROTO" strings.
func parseExpose(e string) ([]string, error) {
	spec, proto, ok := strings.Cut(e, "/")
	if !ok {
		proto = "tcp"
	}
	switch proto = strings.ToLower(proto); proto {
	case "tcp", "udp", "sctp":
	default:
		return nil, fmt.Errorf("protocol %q: want tcp, udp or sctp: %w", proto, errdefs.ErrInvalidArgument)
	}
	from, to, isRange := strings.Cut(spec, "-")
	lo, err := exposePort(from)
	if err != nil {
		return nil, err
	}
	hi := lo
	if isRange {
		if hi, err = exposePort(to); err != nil {
			return nil, err
		}
		if hi < lo {
			return nil, fmt.Errorf("range %s ends before it starts: %w", spec, errdefs.ErrInvalidArgument)
		}
	}
	out := make([]string, 0, hi-lo+1)
	for p := lo; p <= hi; p++ {
		out = append(out, fmt.Sprintf("%d/%s", p, proto))
	}
	return out, nil
}

func exposePort(s string) (int, error) {
	p, err := strconv.Atoi(s)
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("port %q: want a number from 1 to 65535: %w", s, errdefs.ErrInvalidArgument)
	}
	return p, nil
}

// exposedOnly returns the exposed ports ("80/tcp") that no published port
// covers, as docker compose ps lists them after the published ones.
func exposedOnly(cfg container.Config) []PortPublisher {
	var out []PortPublisher
	for _, e := range cfg.Expose {
		spec, proto, _ := strings.Cut(e, "/")
		p, err := strconv.Atoi(spec)
		if err != nil {
			continue
		}
		if slices.ContainsFunc(cfg.Ports, func(pp container.Port) bool {
			return int(pp.ContainerPort) == p && cmp.Or(pp.Protocol, "tcp") == proto
		}) {
			continue
		}
		out = append(out, PortPublisher{TargetPort: uint16(p), Protocol: proto})
	}
	return out
}

// withExposed adds the ports exposed but not published to s.Publishers and
// to texts, as ps shows them ("8080/tcp").
func withExposed(s *ContainerSummary, cfg container.Config, texts []string) []string {
	for _, p := range exposedOnly(cfg) {
		s.Publishers = append(s.Publishers, p)
		texts = append(texts, fmt.Sprintf("%d/%s", p.TargetPort, p.Protocol))
	}
	return texts
}
