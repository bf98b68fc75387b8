package compose

import (
	"fmt"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/engine/runtime"
)

// serviceRun maps the keys the container's shim acts on: healthcheck, tty,
// stdin_open and logging.
func serviceRun(s types.ServiceConfig, cfg *container.Config) error {
	log, err := serviceLogging(s)
	if err != nil {
		return err
	}
	cfg.Run.Log = log
	cfg.Run.TTY = s.Tty
	cfg.Run.OpenStdin = s.StdinOpen
	if hc := s.HealthCheck; hc != nil {
		h := &runtime.HealthConfig{Test: []string(hc.Test)}
		if hc.Disable {
			h.Test = []string{"NONE"}
		}
		for _, d := range []struct {
			from *types.Duration
			to   *time.Duration
		}{{hc.Interval, &h.Interval}, {hc.Timeout, &h.Timeout}, {hc.StartPeriod, &h.StartPeriod}, {hc.StartInterval, &h.StartInterval}} {
			if d.from != nil {
				*d.to = time.Duration(*d.from)
			}
		}
		if hc.Retries != nil {
			h.Retries = int(*hc.Retries)
		}
		if err := h.Validate(); err != nil {
			return fmt.Errorf("service %q: healthcheck: %w", s.Name, err)
		}
		cfg.Run.Healthcheck = h
	}
	return nil
}
