// Command gen writes the expected output of `docker compose config` for
// every case of the corpus (compose/testdata/config/*/compose.yaml): it loads
// each with compose-go at the version Docker Compose v5.5 builds with, and
// the steps Compose's config command takes (load with interpolation, path
// resolution, normalization and consistency checks; drop resources no
// service uses; merge env_file into environment; YAML or JSON; every "$"
// doubled), and each service's config hash as Compose computes it. Berth's own output is tested against these files, so Berth's
// config prints what Compose prints without Docker on the machine.
//
// Run from this directory: go run . (it is its own module, so the pinned
// compose-go does not touch Berth's).
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	cases, err := filepath.Glob("../*/compose.yaml")
	if err != nil {
		panic(err)
	}
	for _, file := range cases {
		dir, err := filepath.Abs(filepath.Dir(file))
		if err != nil {
			panic(err)
		}
		for _, format := range []string{"yaml", "json", "hash"} {
			out, err := render(dir, format)
			if err != nil {
				fmt.Fprintf(os.Stderr, "%s: %v\n", dir, err)
				os.Exit(1)
			}
			// The checkout's path differs between machines.
			out = bytes.ReplaceAll(out, []byte(dir), []byte("/project"))
			if err := os.WriteFile(filepath.Join(dir, "expected."+format), out, 0o644); err != nil {
				panic(err)
			}
		}
	}
}

func render(dir, format string) ([]byte, error) {
	ctx := context.Background()
	os.Setenv("PWD", dir)
	po, err := cli.NewProjectOptions([]string{filepath.Join(dir, "compose.yaml")},
		// docker compose config's own options...
		cli.WithInterpolation(true),
		cli.WithResolvedPaths(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
		cli.WithDefaultProfiles(),
		cli.WithDiscardEnvFile,
		// ...then those of every project load.
		cli.WithWorkingDirectory(""),
		cli.WithOsEnv,
		cli.WithEnvFiles(),
		cli.WithDotEnv,
		cli.WithConfigFileEnv,
		cli.WithDefaultConfigPath,
		cli.WithEnvFiles(),
		cli.WithDotEnv,
		cli.WithDefaultProfiles(),
		cli.WithName(""),
	)
	if err != nil {
		return nil, err
	}
	p, err := po.LoadProject(ctx)
	if err != nil {
		return nil, err
	}
	if p, err = p.WithServicesEnabled(); err != nil {
		return nil, err
	}
	if p, err = p.WithSelectedServices(nil); err != nil {
		return nil, err
	}
	p = p.WithoutUnnecessaryResources()
	if p, err = p.WithServicesEnvironmentResolved(true); err != nil {
		return nil, err
	}
	if err := p.CheckContainerNameUnicity(); err != nil {
		return nil, err
	}
	var out []byte
	switch format {
	case "json":
		out, err = p.MarshalJSON()
	case "hash":
		// docker compose's ServiceHash, which config --hash prints and
		// which labels every container it makes.
		for _, name := range p.ServiceNames() {
			s := p.Services[name]
			s.Build, s.PullPolicy, s.Scale, s.DependsOn, s.Profiles = nil, "", nil, nil, nil
			if s.Deploy != nil {
				d := *s.Deploy
				d.Replicas = nil
				s.Deploy = &d
			}
			b, err := json.Marshal(s)
			if err != nil {
				return nil, err
			}
			if bytes.Contains(b, []byte(dir)) {
				continue // hashes of absolute paths differ between checkouts
			}
			out = append(out, fmt.Sprintf("%s %x\n", name, sha256.Sum256(b))...)
		}
		return out, nil
	default:
		out, err = p.MarshalYAML()
	}
	if err != nil {
		return nil, err
	}
	return bytes.ReplaceAll(out, []byte("$"), []byte("$$")), nil
}
