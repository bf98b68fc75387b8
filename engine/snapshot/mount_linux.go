package snapshot

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// maxMountData is what mount(2) copies of its data argument: one page,
// including the terminating NUL. Longer overlay options go through the new
// mount API, which takes lower layers one at a time.
var maxMountData = os.Getpagesize() - 1

// mountFlags maps the generic options to mount(2) flags and to the mount
// attributes of fsmount(2); everything else is filesystem data.
var mountFlags = map[string]struct {
	clear bool
	flag  uintptr
	attr  int
}{
	"ro":          {flag: unix.MS_RDONLY, attr: unix.MOUNT_ATTR_RDONLY},
	"rw":          {clear: true, flag: unix.MS_RDONLY},
	"nosuid":      {flag: unix.MS_NOSUID, attr: unix.MOUNT_ATTR_NOSUID},
	"suid":        {clear: true, flag: unix.MS_NOSUID},
	"nodev":       {flag: unix.MS_NODEV, attr: unix.MOUNT_ATTR_NODEV},
	"dev":         {clear: true, flag: unix.MS_NODEV},
	"noexec":      {flag: unix.MS_NOEXEC, attr: unix.MOUNT_ATTR_NOEXEC},
	"exec":        {clear: true, flag: unix.MS_NOEXEC},
	"noatime":     {flag: unix.MS_NOATIME, attr: unix.MOUNT_ATTR_NOATIME},
	"relatime":    {flag: unix.MS_RELATIME, attr: unix.MOUNT_ATTR_RELATIME},
	"strictatime": {flag: unix.MS_STRICTATIME, attr: unix.MOUNT_ATTR_STRICTATIME},
	"nodiratime":  {flag: unix.MS_NODIRATIME, attr: unix.MOUNT_ATTR_NODIRATIME},
	"bind":        {flag: unix.MS_BIND},
	"rbind":       {flag: unix.MS_BIND | unix.MS_REC},
}

func parseOptions(opts []string) (flags uintptr, attrs int, data []string) {
	for _, o := range opts {
		f, ok := mountFlags[o]
		switch {
		case !ok:
			data = append(data, o)
		case f.clear:
			flags &^= f.flag
		default:
			flags |= f.flag
			attrs |= f.attr
		}
	}
	return flags, attrs, data
}

// MountAll performs mounts on target in order, creating target if needed.
// If one fails, the ones already made are undone.
func MountAll(mounts []Mount, target string) error {
	if err := os.MkdirAll(target, 0o755); err != nil {
		return fmt.Errorf("mount %s: %w", target, err)
	}
	for i, m := range mounts {
		if err := mountOne(m, target); err != nil {
			for j := 0; j < i; j++ {
				unix.Unmount(target, unix.MNT_DETACH)
			}
			return fmt.Errorf("mount %s on %s: %w", m.Type, target, err)
		}
	}
	return nil
}

func mountOne(m Mount, target string) error {
	flags, attrs, data := parseOptions(m.Options)
	joined := strings.Join(data, ",")
	if len(joined) <= maxMountData {
		return unix.Mount(m.Source, target, m.Type, flags, joined)
	}
	if m.Type != "overlay" || flags&unix.MS_BIND != 0 {
		return fmt.Errorf("options are %d bytes, more than mount(2) takes (%d)", len(joined), maxMountData)
	}
	return mountOverlayFD(data, attrs, target)
}

// mountOverlayFD builds an overlay with fsopen/fsconfig, passing each lower
// layer with "lowerdir+" (Linux 6.8+), so the layer count is not limited by
// the page-sized option string of mount(2).
func mountOverlayFD(data []string, attrs int, target string) error {
	fsfd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("fsopen overlay: %w", err)
	}
	defer unix.Close(fsfd)
	set := func(key, value string, hasValue bool) error {
		var err error
		if !hasValue {
			err = unix.FsconfigSetFlag(fsfd, key)
		} else {
			err = unix.FsconfigSetString(fsfd, key, value)
		}
		if err != nil {
			return fmt.Errorf("overlay option %s: %w%s", key, err, fsLog(fsfd))
		}
		return nil
	}
	for _, o := range data {
		key, value, hasValue := strings.Cut(o, "=")
		if key == "lowerdir" {
			for _, dir := range strings.Split(value, ":") {
				if err := set("lowerdir+", dir, true); err != nil {
					return fmt.Errorf("%w (too many layers for mount(2), and this kernel lacks lowerdir+)", err)
				}
			}
			continue
		}
		if err := set(key, value, hasValue); err != nil {
			return err
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return fmt.Errorf("create overlay: %w%s", err, fsLog(fsfd))
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, attrs)
	if err != nil {
		return fmt.Errorf("fsmount overlay: %w", err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("move mount to %s: %w", target, err)
	}
	return nil
}

// fsLog reads the kernel's explanation of a failed fsconfig, if any.
func fsLog(fsfd int) string {
	buf := make([]byte, 256)
	n, err := unix.Read(fsfd, buf)
	if err != nil || n <= 0 {
		return ""
	}
	return " (" + strings.TrimSpace(string(buf[:n])) + ")"
}

// Unmount unmounts everything mounted on target, detaching lazily when it is
// busy. A target that is not a mount point, or does not exist, is fine.
func Unmount(target string) error {
	for range 64 { // mounts may be stacked; a bound keeps a bug from spinning
		err := unix.Unmount(target, unix.UMOUNT_NOFOLLOW)
		switch {
		case err == nil:
			continue
		case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
			return nil
		case errors.Is(err, unix.EBUSY):
			if err := unix.Unmount(target, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW); err != nil && !errors.Is(err, unix.EINVAL) {
				return fmt.Errorf("unmount %s: %w", target, err)
			}
		default:
			return fmt.Errorf("unmount %s: %w", target, err)
		}
	}
	return fmt.Errorf("unmount %s: still mounted after 64 unmounts", target)
}
