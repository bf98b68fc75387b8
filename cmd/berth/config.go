package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/compose"
	"github.com/berth-dev/berth/internal/atomicfile"
)

var _ = register(newConfigCommand)

// configOptions are the flags of berth config, as docker compose config
// spells them.
type configOptions struct {
	format   string
	quiet    bool
	services bool
	volumes  bool
	networks bool
	profiles bool
	images   bool
	hash     string
	env      bool
	output   string
}

func newConfigCommand(pf *projectFlags) *cobra.Command {
	o := &configOptions{}
	cmd := &cobra.Command{
		Use:   "config [OPTIONS] [SERVICE...]",
		Short: "Parse, resolve and render the compose file in canonical form",
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := loadProject(cmd, pf, true, args...)
			if err != nil {
				return err
			}
			if len(args) > 0 {
				if p, err = p.WithSelectedServices(args); err != nil {
					return fmt.Errorf("%v: %w", err, errdefs.ErrNotFound)
				}
				p = p.WithoutUnnecessaryResources()
			}
			if err := notYet(cmd, "no-interpolate", "no-normalize", "no-path-resolution", "no-consistency", "no-env-resolution",
				"resolve-image-digests", "lock-image-digests", "variables", "models"); err != nil {
				return err
			}
			if o.quiet {
				return nil
			}
			out, err := renderConfig(p, o)
			if err != nil {
				return err
			}
			if o.output != "" {
				return atomicfile.Write(o.output, out, 0o644)
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.format, "format", "yaml", "output format: yaml or json")
	fl.BoolVarP(&o.quiet, "quiet", "q", false, "only validate the configuration, print nothing")
	fl.BoolVar(&o.services, "services", false, "print the service names, one per line")
	fl.BoolVar(&o.volumes, "volumes", false, "print the volume names, one per line")
	fl.BoolVar(&o.networks, "networks", false, "print the network names, one per line")
	fl.BoolVar(&o.profiles, "profiles", false, "print the profile names, one per line")
	fl.BoolVar(&o.images, "images", false, "print the image names, one per line")
	fl.StringVar(&o.hash, "hash", "", `print the service config hash, one per line ("*" for every service, or a comma-separated list)`)
	fl.BoolVar(&o.env, "environment", false, "print the environment used for interpolation")
	fl.StringVarP(&o.output, "output", "o", "", "save to file (default: standard output)")
	for _, f := range []string{"no-interpolate", "no-normalize", "no-path-resolution", "no-consistency", "no-env-resolution",
		"resolve-image-digests", "lock-image-digests", "variables", "models"} {
		fl.Bool(f, false, "not supported yet")
	}
	return cmd
}

// renderConfig renders what the flags ask for: one listing, or the whole
// normalized project.
func renderConfig(p *types.Project, o *configOptions) ([]byte, error) {
	var lines []string
	switch {
	case o.services:
		lines = p.ServiceNames()
	case o.volumes:
		lines = p.VolumeNames()
	case o.networks:
		lines = p.NetworkNames()
	case o.profiles:
		// Every profile the files declare, active or not.
		for _, s := range p.AllServices() {
			lines = append(lines, s.Profiles...)
		}
		slices.Sort(lines)
		lines = slices.Compact(lines)
	case o.images:
		for _, name := range p.ServiceNames() {
			lines = append(lines, imageName(p, name))
		}
	case o.hash != "":
		names := p.ServiceNames()
		if o.hash != "*" {
			names = strings.Split(o.hash, ",")
		}
		for _, name := range names {
			s, ok := p.Services[name]
			if !ok {
				return nil, fmt.Errorf("--hash: no such service: %s: %w", name, errdefs.ErrNotFound)
			}
			h, err := compose.ServiceHash(s)
			if err != nil {
				return nil, err
			}
			lines = append(lines, name+" "+h)
		}
	case o.env:
		lines = slices.Sorted(slices.Values(p.Environment.Values()))
	default:
		return compose.RenderConfig(p, o.format)
	}
	if len(lines) == 0 {
		return nil, nil
	}
	return []byte(strings.Join(lines, "\n") + "\n"), nil
}

// imageName is the service's image, or the name docker compose gives the
// image it builds: <project>-<service>.
func imageName(p *types.Project, service string) string {
	if img := p.Services[service].Image; img != "" {
		return img
	}
	return p.Name + "-" + service
}
