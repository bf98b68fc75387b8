package container

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"syscall"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// HostDevices resolves a device mapping against the host: the node at
// Source, or every node under it when Source is a directory (as Docker does
// for /dev/snd), each placed under Target.
func HostDevices(d Device) ([]specs.LinuxDevice, error) {
	if !filepath.IsAbs(d.Source) {
		return nil, fmt.Errorf("%q: the host path must be absolute: %w", d.Source, errdefs.ErrInvalidArgument)
	}
	target := d.Target
	if target == "" {
		target = d.Source
	}
	if !path.IsAbs(target) {
		return nil, fmt.Errorf("%q: the container path %q must be absolute: %w", d.Source, target, errdefs.ErrInvalidArgument)
	}
	if d.Permissions != "" {
		if err := checkAccess(d.Permissions); err != nil {
			return nil, fmt.Errorf("%s: %v: %w", d.Source, err, errdefs.ErrInvalidArgument)
		}
	}
	fi, err := os.Stat(d.Source)
	if err != nil {
		return nil, fmt.Errorf("device %s does not exist on this host: %w", d.Source, errdefs.ErrInvalidArgument)
	}
	if !fi.IsDir() {
		dev, ok := deviceNode(d.Source, fi, target)
		if !ok {
			return nil, fmt.Errorf("%s is not a device: %w", d.Source, errdefs.ErrInvalidArgument)
		}
		return []specs.LinuxDevice{dev}, nil
	}
	var out []specs.LinuxDevice
	err = filepath.WalkDir(d.Source, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		info, err := os.Stat(p)
		if err != nil {
			return nil // a dangling link
		}
		rel, _ := filepath.Rel(d.Source, p)
		if dev, ok := deviceNode(p, info, path.Join(target, filepath.ToSlash(rel))); ok {
			out = append(out, dev)
		}
		return nil
	})
	if err == nil && len(out) == 0 {
		err = fmt.Errorf("directory %s holds no device: %w", d.Source, errdefs.ErrInvalidArgument)
	}
	return out, err
}

func deviceNode(p string, fi os.FileInfo, target string) (specs.LinuxDevice, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return specs.LinuxDevice{}, false
	}
	var typ string
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFCHR:
		typ = "c"
	case syscall.S_IFBLK:
		typ = "b"
	default:
		return specs.LinuxDevice{}, false
	}
	mode := fi.Mode().Perm()
	return specs.LinuxDevice{
		Path:     target,
		Type:     typ,
		Major:    int64(unix.Major(st.Rdev)),
		Minor:    int64(unix.Minor(st.Rdev)),
		FileMode: &mode,
		UID:      &st.Uid,
		GID:      &st.Gid,
	}, true
}

// blockDevice gives the major and minor numbers of a host block device,
// which is how cgroups name it.
func blockDevice(p string) (major, minor int64, err error) {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return 0, 0, fmt.Errorf("device %s does not exist on this host: %w", p, errdefs.ErrInvalidArgument)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return 0, 0, fmt.Errorf("%s is not a block device: %w", p, errdefs.ErrInvalidArgument)
	}
	return int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev)), nil
}

// allHostDevices lists every device node under /dev, for privileged
// containers. The console and the pseudo-terminal multiplexer stay the
// container's own.
func allHostDevices() ([]specs.LinuxDevice, error) {
	var out []specs.LinuxDevice
	err := filepath.WalkDir("/dev", func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if e.IsDir() {
			switch e.Name() {
			case "pts", "shm", "mqueue", ".lxc", ".udev":
				return filepath.SkipDir
			}
			return nil
		}
		if e.Type()&fs.ModeDevice == 0 || p == "/dev/console" || p == "/dev/ptmx" {
			return nil
		}
		info, err := e.Info()
		if err != nil {
			return nil
		}
		if dev, ok := deviceNode(p, info, p); ok {
			out = append(out, dev)
		}
		return nil
	})
	return out, err
}
