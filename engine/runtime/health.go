package runtime

import (
	"fmt"
	"time"

	"github.com/containerd/errdefs"
)

// HealthConfig is a healthcheck: Compose's healthcheck key, Docker's
// HEALTHCHECK. Zero durations and retries take Docker's defaults.
type HealthConfig struct {
	// Test is ["CMD", args...], ["CMD-SHELL", command] or ["NONE"].
	Test          []string      `json:"test,omitempty"`
	Interval      time.Duration `json:"interval,omitempty"`       // default 30 s
	Timeout       time.Duration `json:"timeout,omitempty"`        // default 30 s
	StartPeriod   time.Duration `json:"start_period,omitempty"`   // default 0
	StartInterval time.Duration `json:"start_interval,omitempty"` // default 5 s
	Retries       int           `json:"retries,omitempty"`        // default 3
}

// Docker's healthcheck defaults and limits.
const (
	defaultHealthInterval      = 30 * time.Second
	defaultHealthTimeout       = 30 * time.Second
	defaultHealthStartInterval = 5 * time.Second
	defaultHealthRetries       = 3
	// healthLogEntries and healthOutputMax bound what the status keeps.
	healthLogEntries = 5
	healthOutputMax  = 4096
)

// Disabled reports whether the healthcheck is off (["NONE"], or no test).
func (h *HealthConfig) Disabled() bool {
	return h == nil || len(h.Test) == 0 || h.Test[0] == "NONE"
}

// Validate checks a healthcheck as Docker does before anything is created.
func (h *HealthConfig) Validate() error {
	if h == nil || len(h.Test) == 0 {
		return nil
	}
	switch h.Test[0] {
	case "NONE":
	case "CMD", "CMD-SHELL":
		if len(h.Test) < 2 || (h.Test[0] == "CMD-SHELL" && len(h.Test) != 2) {
			return fmt.Errorf("test %q: %s needs a command: %w", h.Test, h.Test[0], errdefs.ErrInvalidArgument)
		}
	default:
		return fmt.Errorf("test %q: must start with CMD, CMD-SHELL or NONE: %w", h.Test, errdefs.ErrInvalidArgument)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"interval", h.Interval}, {"timeout", h.Timeout}, {"start_period", h.StartPeriod}, {"start_interval", h.StartInterval}} {
		if d.v != 0 && d.v < time.Millisecond {
			return fmt.Errorf("%s %v: must be at least 1ms: %w", d.name, d.v, errdefs.ErrInvalidArgument)
		}
	}
	if h.Retries < 0 {
		return fmt.Errorf("retries %d: must not be negative: %w", h.Retries, errdefs.ErrInvalidArgument)
	}
	return nil
}

// withDefaults fills zero values with Docker's defaults.
func (h HealthConfig) withDefaults() HealthConfig {
	if h.Interval == 0 {
		h.Interval = defaultHealthInterval
	}
	if h.Timeout == 0 {
		h.Timeout = defaultHealthTimeout
	}
	if h.StartInterval == 0 {
		h.StartInterval = defaultHealthStartInterval
	}
	if h.Retries == 0 {
		h.Retries = defaultHealthRetries
	}
	return h
}

// args is the probe's command line.
func (h HealthConfig) args() []string {
	if h.Test[0] == "CMD-SHELL" {
		return []string{"/bin/sh", "-c", h.Test[1]}
	}
	return h.Test[1:]
}

// MergeHealth is a container's healthcheck given its own and its image's,
// as Docker merges them: the image's test and timings fill what the
// container's leaves unset.
func MergeHealth(own, image *HealthConfig) *HealthConfig {
	if own == nil {
		return image
	}
	if image == nil {
		return own
	}
	m := *own
	if len(m.Test) == 0 {
		m.Test = image.Test
	}
	if m.Interval == 0 {
		m.Interval = image.Interval
	}
	if m.Timeout == 0 {
		m.Timeout = image.Timeout
	}
	if m.StartPeriod == 0 {
		m.StartPeriod = image.StartPeriod
	}
	if m.StartInterval == 0 {
		m.StartInterval = image.StartInterval
	}
	if m.Retries == 0 {
		m.Retries = image.Retries
	}
	return &m
}

// record applies one probe's result to the health state, as Docker does: a
// success makes it healthy; failures count once the start period is over
// (or once it was healthy), and retries of them in a row make it unhealthy.
func (h *Health) record(cfg HealthConfig, p HealthProbe, inStartPeriod bool) {
	h.Log = append(h.Log, p)
	if len(h.Log) > healthLogEntries {
		h.Log = h.Log[len(h.Log)-healthLogEntries:]
	}
	if p.ExitCode == 0 {
		h.Status = HealthHealthy
		h.FailingStreak = 0
		return
	}
	if inStartPeriod && h.Status == HealthStarting {
		return
	}
	h.FailingStreak++
	if h.FailingStreak >= cfg.Retries {
		h.Status = HealthUnhealthy
	}
}
