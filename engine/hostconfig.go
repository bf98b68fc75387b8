package engine

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"

	"github.com/containerd/errdefs"
	"gopkg.in/yaml.v3"

	"github.com/berth-dev/berth/engine/network"
)

// DefaultHostConfig is where Berth's own settings for this host live;
// BERTH_CONFIG names another file.
const DefaultHostConfig = "/etc/berth/config.yaml"

// HostConfig is Berth's settings file for a host. A missing file is an
// empty config.
type HostConfig struct {
	// DefaultAddressPools are where networks get their subnets when the
	// compose file names none, as Docker's daemon.json key of that name:
	//
	//	default-address-pools:
	//	  - base: 10.89.0.0/16
	//	    size: 24
	//	  - base: fd00:89::/48
	//	    size: 64
	DefaultAddressPools []AddressPool `yaml:"default-address-pools"`
	// InsecureRegistries may be spoken to in plain HTTP (loopback ones
	// always may), as daemon.json's key of that name.
	InsecureRegistries []string `yaml:"insecure-registries"`
	// CertsDir replaces /etc/docker/certs.d, where registries' CAs and
	// client certificates are read from.
	CertsDir string `yaml:"certs-dir"`
}

// AddressPool is one entry of default-address-pools.
type AddressPool struct {
	Base string `yaml:"base"`
	Size int    `yaml:"size"`
}

// hostConfigPath is BERTH_CONFIG, else DefaultHostConfig.
func hostConfigPath() string {
	if p := os.Getenv("BERTH_CONFIG"); p != "" {
		return p
	}
	return DefaultHostConfig
}

// LoadHostConfig reads the settings file at path.
func LoadHostConfig(path string) (HostConfig, error) {
	var c HostConfig
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("berth config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return c, fmt.Errorf("berth config %s: %v: %w", path, err, errdefs.ErrInvalidArgument)
	}
	return c, nil
}

// networkPools are the pools networks come from: BERTH_NETWORK_POOL when
// set, else the config file's default-address-pools, else the built-in
// default (nil).
func networkPools() ([]network.Pool, error) {
	if v := os.Getenv("BERTH_NETWORK_POOL"); v != "" {
		pools, err := network.ParsePools(v)
		if err != nil {
			return nil, fmt.Errorf("BERTH_NETWORK_POOL: %w", err)
		}
		return pools, nil
	}
	path := hostConfigPath()
	c, err := LoadHostConfig(path)
	if err != nil {
		return nil, err
	}
	var out []network.Pool
	for _, p := range c.DefaultAddressPools {
		base, err := netip.ParsePrefix(p.Base)
		if err != nil {
			return nil, fmt.Errorf("berth config %s: default-address-pools: base %q: %w", path, p.Base, errdefs.ErrInvalidArgument)
		}
		pool := network.Pool{Base: base, Size: p.Size}
		if pool.Size == 0 {
			pool.Size = 24
			if base.Addr().Is6() {
				pool.Size = 64
			}
		}
		out = append(out, pool)
	}
	return out, nil
}
