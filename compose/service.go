package compose

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/engine/runtime"
)

// ContainerName is the name Compose gives replica n of a service.
func ContainerName(p *types.Project, s types.ServiceConfig, n int) string {
	if s.ContainerName != "" {
		return s.ContainerName
	}
	return fmt.Sprintf("%s-%s-%d", p.Name, s.Name, n)
}

// ServiceHash is the config hash label: it changes when anything that
// shapes the service's containers changes, and only then.
func ServiceHash(s types.ServiceConfig) (string, error) {
	_, hash, err := serviceModel(s)
	return hash, err
}

// serviceModel is the service as its containers are made from it, in JSON,
// and its hash, the same as docker compose's (config --hash). Like it, it
// leaves out what does not shape
// a container: adding replicas must not recreate the existing ones, and
// neither must a changed build, pull policy, dependency list or profile.
func serviceModel(s types.ServiceConfig) ([]byte, string, error) {
	s.Build = nil
	s.PullPolicy = ""
	s.Scale = nil
	if s.Deploy != nil {
		d := *s.Deploy
		d.Replicas = nil
		s.Deploy = &d
	}
	s.DependsOn = nil
	s.Profiles = nil
	// Keys in docker compose's order, so the hash is the one it computes.
	b, err := serviceJSON(s)
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(b)
	return b, hex.EncodeToString(sum[:]), nil
}

// Replicas is how many containers the service wants.
func Replicas(s types.ServiceConfig) int {
	if s.Scale != nil {
		return *s.Scale
	}
	if s.Deploy != nil && s.Deploy.Replicas != nil {
		return *s.Deploy.Replicas
	}
	return 1
}

// containerConfig turns one service into an engine container config. It is
// pure: no engine calls, so plans and tests can use it.
func containerConfig(p *types.Project, s types.ServiceConfig, n int, hash string) (container.Config, error) {
	where := func(field string) string { return fmt.Sprintf("service %q: %s", s.Name, field) }
	if s.Image == "" && s.Build == nil {
		return container.Config{}, fmt.Errorf("%s: an image is required: %w", where("image"), errdefs.ErrInvalidArgument)
	}
	if err := runtime.CheckRestart(s.Restart); err != nil {
		return container.Config{}, fmt.Errorf("%s: %w", where("restart"), err)
	}
	var err error
	cfg := container.Config{
		Image:      ImageName(p, s),
		WorkingDir: s.WorkingDir,
		User:       s.User,
		Hostname:   s.Hostname,
		StopSignal: s.StopSignal,
		Restart:    s.Restart,
	}
	if s.Entrypoint != nil {
		cfg.Entrypoint = []string(s.Entrypoint)
	}
	if s.Command != nil {
		cfg.Cmd = []string(s.Command)
	}
	if cfg.Security, cfg.Resources, err = isolation(p, s); err != nil {
		return container.Config{}, err
	}
	if s.StopGracePeriod != nil {
		cfg.StopGrace = time.Duration(*s.StopGracePeriod)
	}
	keys := slices.Sorted(maps.Keys(s.Environment))
	for _, k := range keys {
		if v := s.Environment[k]; v != nil {
			cfg.Env = append(cfg.Env, k+"="+*v)
		}
	}
	cfg.Labels = map[string]string{}
	maps.Copy(cfg.Labels, s.Labels)
	maps.Copy(cfg.Labels, map[string]string{
		LabelProject:     p.Name,
		LabelService:     s.Name,
		LabelNumber:      strconv.Itoa(n),
		LabelConfigHash:  hash,
		LabelOneoff:      "False",
		LabelWorkingDir:  p.WorkingDir,
		LabelConfigFiles: strings.Join(p.ComposeFiles, ","),
		LabelVersion:     Version,
		LabelDependsOn:   dependsOnLabel(s),
	})

	if err := serviceMounts(p, s, &cfg); err != nil {
		return container.Config{}, err
	}
	if err := serviceNetworking(p, s, &cfg); err != nil {
		return container.Config{}, err
	}
	if err := serviceRun(s, &cfg); err != nil {
		return container.Config{}, err
	}
	if err := serviceExpose(s, &cfg); err != nil {
		return container.Config{}, err
	}
	return cfg, nil
}

// dependsOnLabel records depends_on as Compose does ("db:service_started:false,..."),
// so verbs that work from the project name alone keep the dependency order.
func dependsOnLabel(s types.ServiceConfig) string {
	var out []string
	for _, dep := range slices.Sorted(maps.Keys(s.DependsOn)) {
		d := s.DependsOn[dep]
		out = append(out, fmt.Sprintf("%s:%s:%t", dep, d.Condition, d.Restart))
	}
	return strings.Join(out, ",")
}
