package runtime

// What a shim starts, converted by its spawner.
//
// The shim does not read the OCI spec. Decoding it in the shim built
// encoding/json's type caches for the whole runtime-spec type tree (about
// 0.2 MB that stays in every shim: no collection runs there), and converting
// it cost the shim specconv's work at every start. The spawner (the CLI,
// one process for all the containers of a command) converts the spec
// instead and puts in the shim's configuration libcontainer's configuration
// as JSON, whose types the shim needs anyway (libcontainer encodes its
// configuration for its init and its state file), the container's process,
// and the seccomp profile apart, so that a shim whose program is cached
// never decodes it (entry_linux.go).

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/atomicfile"
)

// ProcessConfig is the container's first process as the shim starts it,
// and the base of the processes exec'd in it (environment, user, working
// directory): the spec's process, taken out by the spawner.
type ProcessConfig struct {
	Args           []string    `json:"args"`
	Env            []string    `json:"env,omitempty"`
	Cwd            string      `json:"cwd"`
	UID            uint32      `json:"uid"`
	GID            uint32      `json:"gid"`
	AdditionalGids []uint32    `json:"additional_gids,omitempty"`
	Terminal       bool        `json:"terminal,omitempty"`
	Size           *WindowSize `json:"size,omitempty"` // the terminal's first size
}

// SeccompRef is the spec's seccomp profile as the spawner hands it to the
// shim: its text, in a file named by its SHA-256 and written once per
// profile, and that sum, from which the shim finds a compiled program
// without reading the profile.
type SeccompRef struct {
	Path string `json:"path"`
	Sum  string `json:"sum"` // hex
}

// prepareStart converts the OCI spec (cfg.Spec, or the bundle's) for the
// shim, into cfg: libcontainer's configuration, the process, and the
// seccomp profile apart (its text, written under cfg.SeccompCache, or dir
// without one; not decoded here: the shim decodes it only when its program
// is not cached, and reports a profile that does not convert). A spec that
// does not convert otherwise fails here, before any shim runs.
func prepareStart(cfg *Config, dir string) error {
	spec, profile, err := startSpec(cfg)
	if err != nil {
		return err
	}
	cfg.Seccomp = nil
	if len(profile) > 0 {
		if !seccompBuilt {
			return errors.New("this berth was built without the seccomp build tag; rebuild with make build")
		}
		if cfg.SeccompCache != "" {
			dir = cfg.SeccompCache
		}
		ref, err := writeProfile(dir, profile)
		if err != nil {
			return err
		}
		cfg.Seccomp = ref
	}
	lcfg, err := libcontainerConfig(cfg.ID, cfg.Bundle, spec)
	if err != nil {
		return err
	}
	if cfg.Libcontainer, err = json.Marshal(lcfg); err != nil {
		return err
	}
	p := spec.Process
	cfg.Process = &ProcessConfig{
		Args: p.Args, Env: p.Env, Cwd: p.Cwd,
		UID: p.User.UID, GID: p.User.GID, AdditionalGids: p.User.AdditionalGids,
		Terminal: p.Terminal,
	}
	if p.ConsoleSize != nil {
		cfg.Process.Size = &WindowSize{Rows: uint16(p.ConsoleSize.Height), Cols: uint16(p.ConsoleSize.Width)}
	}
	return nil
}

// startSpec is the spec a start converts, without its seccomp profile,
// and that profile's JSON text (nil without one): cfg.Spec when the caller
// handed it over, else the bundle's config.json. Both give the same text
// for one profile (the compact encoding), so a cached program is found
// either way.
func startSpec(cfg *Config) (*specs.Spec, []byte, error) {
	if s := cfg.Spec; s != nil {
		if s.Process == nil || s.Root == nil {
			return nil, nil, errors.New("spec: process and root are required")
		}
		if s.Linux == nil || s.Linux.Seccomp == nil {
			return s, nil, nil
		}
		profile, err := json.Marshal(s.Linux.Seccomp)
		if err != nil {
			return nil, nil, err
		}
		c, l := *s, *s.Linux
		l.Seccomp = nil
		c.Linux = &l
		return &c, profile, nil
	}
	var spec struct {
		specs.Spec
		Linux *struct {
			specs.Linux
			Seccomp json.RawMessage `json:"seccomp"`
		} `json:"linux"`
	}
	path := filepath.Join(cfg.Bundle, "config.json")
	if err := atomicfile.ReadJSON(path, &spec); err != nil {
		return nil, nil, fmt.Errorf("read spec: %w", err)
	}
	if spec.Process == nil || spec.Root == nil {
		return nil, nil, fmt.Errorf("spec %s: process and root are required", path)
	}
	var profile []byte
	if spec.Linux != nil {
		spec.Spec.Linux = &spec.Linux.Linux
		if p := spec.Linux.Seccomp; len(p) > 0 && string(p) != "null" {
			profile = p
		}
	}
	return &spec.Spec, profile, nil
}

// writeProfile keeps a seccomp profile's text in dir under its SHA-256,
// unless it is there already.
func writeProfile(dir string, profile []byte) (*SeccompRef, error) {
	sum := sha256.Sum256(profile)
	ref := &SeccompRef{Sum: hex.EncodeToString(sum[:])}
	ref.Path = filepath.Join(dir, "profile-"+ref.Sum+".json")
	if _, err := os.Stat(ref.Path); err == nil {
		return ref, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return ref, atomicfile.Replace(ref.Path, profile, 0o600)
}

// readProfile reads the profile ref names, checking it is the one named.
func readProfile(ref SeccompRef) ([]byte, error) {
	b, err := os.ReadFile(ref.Path)
	if err != nil {
		return nil, fmt.Errorf("read seccomp profile: %w", err)
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != ref.Sum {
		return nil, fmt.Errorf("seccomp profile %s: not the profile of the spec (changed since)", ref.Path)
	}
	return b, nil
}

// loadStart decodes libcontainer's configuration, as the spawner converted
// it.
func loadStart(cfg Config) (*configs.Config, error) {
	if cfg.Libcontainer == nil || cfg.Process == nil {
		return nil, errors.New("shim config: no converted spec (written by another berth?)")
	}
	lcfg := new(configs.Config)
	if err := json.Unmarshal(cfg.Libcontainer, lcfg); err != nil {
		return nil, fmt.Errorf("read libcontainer configuration: %w", err)
	}
	return lcfg, nil
}

// decodeProfile decodes the spec's seccomp profile and converts it for
// libcontainer; a variable so a test can see it is not called when the
// program is cached.
var decodeProfile = func(profile []byte) (*configs.Seccomp, error) {
	var sc specs.LinuxSeccomp
	if err := json.Unmarshal(profile, &sc); err != nil {
		return nil, fmt.Errorf("read spec: seccomp: %w", err)
	}
	cfg, err := specconv.SetupSeccomp(&sc)
	if err != nil {
		return nil, fmt.Errorf("convert spec: %w", err)
	}
	return cfg, nil
}

// absolute makes the spec's relative paths (its root, the sources of its
// bind mounts) relative to the bundle, as an OCI runtime, run in the
// bundle, resolves them: specconv resolves them against the working
// directory, which in the spawner is not the bundle.
func absolute(spec *specs.Spec, bundle string) {
	if !filepath.IsAbs(spec.Root.Path) {
		spec.Root.Path = filepath.Join(bundle, spec.Root.Path)
	}
	for i, m := range spec.Mounts {
		bind := slices.ContainsFunc(m.Options, func(o string) bool { return o == "bind" || o == "rbind" })
		if bind && m.Source != "" && !filepath.IsAbs(m.Source) {
			spec.Mounts[i].Source = filepath.Join(bundle, m.Source)
		}
	}
}

// bundleLabel is the label specconv gives the bundle, which it takes to be
// the working directory.
const bundleLabel = "bundle="

func setBundleLabel(labels []string, bundle string) []string {
	out := slices.DeleteFunc(labels, func(l string) bool { return strings.HasPrefix(l, bundleLabel) })
	return append(out, bundleLabel+bundle)
}
