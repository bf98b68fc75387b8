package engine

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/opencontainers/cgroups"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/engine/network"
	"github.com/berth-dev/berth/engine/snapshot"
	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/stopwatch"
	"github.com/berth-dev/berth/netdns"
)

// prepare builds everything a start needs, in an order where each step only
// adds to the host: the caller's teardown undoes any prefix of it.
func (e *Engine) prepare(ctx context.Context, c container.Container) error {
	var endpoints []network.Endpoint
	sw := stopwatch.Start(ctx, "prepare", "container", c.Name)
	defer sw.Done()
	img, err := e.Images.Get(ctx, c.Config.ImageID)
	if err != nil {
		return fmt.Errorf("image %q of container %s: %w", c.Config.Image, c.Name, err)
	}
	if err := e.unpack(ctx, img); err != nil {
		return err
	}
	runDir := e.runDir(c.ID)
	if err := os.MkdirAll(runDir, 0o700); err != nil {
		return err
	}
	mounts, err := e.Snapshots.Prepare(ctx, c.ID, img.ChainIDs)
	if err != nil {
		return err
	}
	rootfs := e.rootfsDir(c.ID)
	if err := snapshot.MountAll(mounts, rootfs); err != nil {
		return fmt.Errorf("mount root filesystem: %w", err)
	}
	sw.Lap("rootfs")

	netns, err := e.Networks.CreateSandbox(ctx, c.ID)
	if err != nil {
		return err
	}
	sw.Lap("netns")
	hostname := c.Config.Hostname
	if hostname == "" {
		hostname = c.ShortID()
	}
	for _, a := range c.Config.Networks {
		aliases := append([]string{c.Name, c.ShortID()}, a.Aliases...)
		ep, err := e.Networks.Connect(ctx, a.Network, c.ID, netns, aliases)
		if err != nil {
			return fmt.Errorf("connect to network %q: %w", a.Network, err)
		}
		endpoints = append(endpoints, ep)
	}
	sw.Lap("connect")
	if len(c.Config.Ports) > 0 {
		if len(endpoints) == 0 {
			return fmt.Errorf("container %s publishes ports but has no network: %w", c.Name, errdefs.ErrInvalidArgument)
		}
		ports, err := toNetworkPorts(c.Config.Ports)
		if err != nil {
			return err
		}
		if err := e.Networks.Publish(ctx, c.ID, endpoints[0].IP, ports); err != nil {
			return fmt.Errorf("ports: %w", err)
		}
	}
	sw.Lap("publish")
	if err := e.syncDNS(ctx); err != nil {
		return fmt.Errorf("dns: %w", err)
	}
	sw.Lap("dns")

	files, err := e.writeEtcFiles(c, hostname, endpoints)
	if err != nil {
		return err
	}
	uid, gid, groups, err := container.ResolveUser(rootfs, c.Config.User)
	if err != nil {
		return fmt.Errorf("container %s: %w", c.Name, err)
	}
	cwd := c.Config.WorkingDir
	if cwd == "" {
		cwd = "/"
	}
	// Docker creates a missing working directory; so do we, inside the root.
	if p, err := securejoin.SecureJoin(rootfs, cwd); err == nil {
		_ = os.MkdirAll(p, 0o755)
	}
	volMounts, err := e.volumeMounts(ctx, c, rootfs)
	if err != nil {
		return err
	}
	spec, err := container.Spec(container.SpecOptions{
		Rootfs:      rootfs,
		NetNS:       netns,
		CgroupsPath: e.cgroupParent() + "/" + c.ID,
		CgroupV2:    cgroups.IsCgroup2UnifiedMode(),
		Hostname:    hostname,
		Process: container.Process{
			Args: append(append([]string(nil), c.Config.Entrypoint...), c.Config.Cmd...),
			Env:  append(c.Config.Env, "HOSTNAME="+hostname),
			Cwd:  cwd, UID: uid, GID: gid, AdditionalGids: groups,
		},
		Mounts: append(files, volMounts...),
	})
	if err != nil {
		return err
	}
	sw.Lap("spec")
	return atomicfile.WriteJSON(filepath.Join(runDir, "config.json"), spec, 0o600)
}

// writeEtcFiles writes the container's hostname, hosts and resolv.conf and
// returns their bind mounts.
func (e *Engine) writeEtcFiles(c container.Container, hostname string, eps []network.Endpoint) ([]specs.Mount, error) {
	dir := e.Containers.Dir(c.ID)
	var ip, gw netip.Addr
	if len(eps) > 0 {
		ip, gw = eps[0].IP, eps[0].Gateway
	}
	hostResolv, _ := os.ReadFile("/etc/resolv.conf")
	var resolv []byte
	if gw.IsValid() {
		resolv = netdns.ResolvConf(gw, hostResolv)
	} else {
		resolv = hostResolv
	}
	files := map[string][]byte{
		"hostname":    []byte(hostname + "\n"),
		"hosts":       netdns.Hosts(ip, hostname),
		"resolv.conf": resolv,
	}
	var mounts []specs.Mount
	for _, name := range []string{"hostname", "hosts", "resolv.conf"} {
		p := filepath.Join(dir, name)
		if err := atomicfile.Write(p, files[name], 0o644); err != nil {
			return nil, err
		}
		mounts = append(mounts, specs.Mount{Destination: "/etc/" + name, Type: "bind", Source: p, Options: []string{"rbind", "rprivate"}})
	}
	return mounts, nil
}

// volumeMounts turns named volumes and binds into spec mounts. A new named
// volume first receives the image's content at its target, as in Docker.
func (e *Engine) volumeMounts(ctx context.Context, c container.Container, rootfs string) ([]specs.Mount, error) {
	var out []specs.Mount
	for _, m := range c.Config.Mounts {
		opts := []string{"rbind", "rprivate"}
		if m.ReadOnly {
			opts = append(opts, "ro")
		}
		src := m.Source
		switch m.Type {
		case "volume":
			v, err := e.Volumes.Get(ctx, m.Source)
			if err != nil {
				return nil, fmt.Errorf("container %s: volume %q: %w", c.Name, m.Source, err)
			}
			if inImage, err := securejoin.SecureJoin(rootfs, m.Target); err == nil {
				if err := e.Volumes.CopyUpOnce(ctx, m.Source, inImage); err != nil {
					return nil, err
				}
			}
			src = v.Mountpoint
		case "bind":
			if _, err := os.Stat(src); errors.Is(err, os.ErrNotExist) {
				// Docker Compose creates a missing bind source directory.
				if err := os.MkdirAll(src, 0o755); err != nil {
					return nil, err
				}
			}
		default:
			return nil, fmt.Errorf("container %s: mount type %q: %w", c.Name, m.Type, errdefs.ErrNotImplemented)
		}
		out = append(out, specs.Mount{Destination: m.Target, Type: "bind", Source: src, Options: opts})
	}
	return out, nil
}

func toNetworkPorts(ps []container.Port) ([]network.Port, error) {
	out := make([]network.Port, 0, len(ps))
	for _, p := range ps {
		np := network.Port{HostPort: p.HostPort, ContainerPort: p.ContainerPort, Protocol: strings.ToLower(p.Protocol)}
		if np.Protocol == "" {
			np.Protocol = "tcp"
		}
		if p.HostIP != "" && p.HostIP != "0.0.0.0" {
			ip, err := netip.ParseAddr(p.HostIP)
			if err != nil {
				return nil, fmt.Errorf("port %s: host ip %q: %w", strconv.Itoa(int(p.ContainerPort)), p.HostIP, errdefs.ErrInvalidArgument)
			}
			np.HostIP = ip
		}
		out = append(out, np)
	}
	return out, nil
}
