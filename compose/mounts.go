package compose

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/engine/container"
)

// serviceMounts fills cfg's mounts from the service's volumes,
// volumes_from, secrets and configs. A bind source that does not exist
// (and may not be made), a secret file that is missing, an undeclared
// volume or secret: one error naming the service and the field.
func serviceMounts(p *types.Project, s types.ServiceConfig, cfg *container.Config) error {
	where := func(field string) string { return fmt.Sprintf("service %q: %s", s.Name, field) }
	for _, v := range s.Volumes {
		m := container.Mount{Type: v.Type, Source: v.Source, Target: v.Target, ReadOnly: v.ReadOnly}
		switch v.Type {
		case types.VolumeTypeVolume:
			if v.Source != "" {
				vol, ok := p.Volumes[v.Source]
				if !ok {
					return fmt.Errorf("%s: volume %q is not declared in the top-level volumes: %w", where("volumes"), v.Source, errdefs.ErrInvalidArgument)
				}
				m.Source = vol.Name
			}
			if v.Volume != nil {
				m.NoCopy, m.SubPath = v.Volume.NoCopy, v.Volume.Subpath
			}
		case types.VolumeTypeBind:
			m.CreateHostPath = v.Bind == nil || bool(v.Bind.CreateHostPath)
			if v.Bind != nil {
				m.Propagation = v.Bind.Propagation
			}
			if _, err := os.Stat(v.Source); errors.Is(err, os.ErrNotExist) && !m.CreateHostPath {
				return fmt.Errorf("%s: bind source path %s does not exist and create_host_path is false: %w", where("volumes"), v.Source, errdefs.ErrInvalidArgument)
			}
		case types.VolumeTypeTmpfs:
			if v.Tmpfs != nil {
				m.TmpfsSize, m.TmpfsMode = int64(v.Tmpfs.Size), v.Tmpfs.Mode
			}
		default:
			return fmt.Errorf("%s: volume type %q is not supported yet: %w", where("volumes"), v.Type, errdefs.ErrNotImplemented)
		}
		cfg.Mounts = append(cfg.Mounts, m)
	}
	for _, from := range s.VolumesFrom {
		ref, ok := strings.CutPrefix(from, types.ContainerPrefix)
		if !ok {
			svc, mode, _ := strings.Cut(strings.TrimPrefix(from, types.ServicePrefix), ":")
			src, ok := p.Services[svc]
			if !ok {
				return fmt.Errorf("%s: %q is not a service: %w", where("volumes_from"), svc, errdefs.ErrInvalidArgument)
			}
			ref = ContainerName(p, src, 1)
			if mode != "" {
				ref += ":" + mode
			}
		}
		cfg.VolumesFrom = append(cfg.VolumesFrom, ref)
	}
	for _, ref := range s.Secrets {
		def, ok := p.Secrets[ref.Source]
		if !ok {
			return fmt.Errorf("%s: secret %q is not declared in the top-level secrets: %w", where("secrets"), ref.Source, errdefs.ErrInvalidArgument)
		}
		target := ref.Target
		if target == "" {
			target = ref.Source
		}
		if !path.IsAbs(target) {
			target = "/run/secrets/" + target
		}
		if err := addFile(p, cfg, "secret", ref.Source, types.FileObjectConfig(def), types.FileReferenceConfig(ref), target, where("secrets")); err != nil {
			return err
		}
	}
	for _, ref := range s.Configs {
		def, ok := p.Configs[ref.Source]
		if !ok {
			return fmt.Errorf("%s: config %q is not declared in the top-level configs: %w", where("configs"), ref.Source, errdefs.ErrInvalidArgument)
		}
		target := ref.Target
		if target == "" {
			target = "/" + ref.Source
		}
		if err := addFile(p, cfg, "config", ref.Source, types.FileObjectConfig(def), types.FileReferenceConfig(ref), target, where("configs")); err != nil {
			return err
		}
	}
	return nil
}

// addFile makes a secret or config available at target: a file is
// bind-mounted read-only as it is, unless ownership or a mode is asked for;
// then, like environment and inline content, it is written for the
// container with them.
func addFile(p *types.Project, cfg *container.Config, kind, name string, def types.FileObjectConfig, ref types.FileReferenceConfig, target, where string) error {
	f := container.File{Target: target}
	var err error
	if f.UID, err = atoiOr(ref.UID); err != nil {
		return fmt.Errorf("%s: %s %q: uid %q: %w", where, kind, name, ref.UID, errdefs.ErrInvalidArgument)
	}
	if f.GID, err = atoiOr(ref.GID); err != nil {
		return fmt.Errorf("%s: %s %q: gid %q: %w", where, kind, name, ref.GID, errdefs.ErrInvalidArgument)
	}
	if ref.Mode != nil {
		f.Mode = uint32(*ref.Mode)
	}
	switch {
	case bool(def.External):
		return fmt.Errorf("%s: %s %q is external: external %ss need a swarm and are not supported: %w", where, kind, name, kind, errdefs.ErrNotImplemented)
	case def.File != "":
		fi, err := os.Stat(def.File)
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s: %s %q: file %s does not exist: %w", where, kind, name, def.File, errdefs.ErrInvalidArgument)
		} else if err != nil {
			return fmt.Errorf("%s: %s %q: %w", where, kind, name, err)
		}
		if fi.IsDir() || (ref.UID == "" && ref.GID == "" && ref.Mode == nil) {
			cfg.Mounts = append(cfg.Mounts, container.Mount{Type: "bind", Source: def.File, Target: target, ReadOnly: true})
			return nil
		}
		if f.Content, err = os.ReadFile(def.File); err != nil {
			return fmt.Errorf("%s: %s %q: %w", where, kind, name, err)
		}
	case def.Environment != "":
		v, ok := p.Environment[def.Environment]
		if !ok {
			return fmt.Errorf("%s: %s %q: environment variable %s is not set: %w", where, kind, name, def.Environment, errdefs.ErrInvalidArgument)
		}
		f.Content = []byte(v)
	default:
		f.Content = []byte(def.Content)
	}
	cfg.Files = append(cfg.Files, f)
	return nil
}

func atoiOr(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	return strconv.Atoi(s)
}
