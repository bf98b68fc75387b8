package network

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// CreateSandbox makes a network namespace for container id, bind-mounted at
// RunDir/netns/<id> so it outlives every process in it, with loopback up.
// Calling it again for the same id returns the same path.
func (m *Manager) CreateSandbox(ctx context.Context, id string) (string, error) {
	if err := checkContainerID(id); err != nil {
		return "", err
	}
	path := m.SandboxPath(id)
	l, err := m.lock(ctx)
	if err != nil {
		return "", err
	}
	defer l.Unlock()
	if !isNetnsMount(path) {
		if err := mountNewNetns(path); err != nil {
			return "", fmt.Errorf("sandbox %s: %w", id, err)
		}
		return path, nil
	}
	if err := loopbackUp(path); err != nil {
		return "", fmt.Errorf("sandbox %s: %w", id, err)
	}
	return path, nil
}

// RemoveSandbox unmounts and deletes the namespace file of container id; the
// namespace and the veths inside it die with the last reference.
func (m *Manager) RemoveSandbox(ctx context.Context, id string) error {
	if err := checkContainerID(id); err != nil {
		return err
	}
	path := m.SandboxPath(id)
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("sandbox %s: unmount: %w", id, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("sandbox %s: %w", id, err)
	}
	return nil
}

func isNetnsMount(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.NSFS_MAGIC
}

// mountNewNetns creates a namespace on a thread of its own, brings its
// loopback up from there and bind-mounts it at path. The thread stays locked
// and is thrown away when the goroutine ends, so no Go code ever runs in the
// wrong namespace.
func mountNewNetns(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o444)
	if err != nil {
		return err
	}
	f.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare netns: %w", err)
			return
		}
		if err := setLoopbackUp(); err != nil {
			errc <- err
			return
		}
		if err := disableIPv6ByDefault(); err != nil {
			errc <- err
			return
		}
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(src, path, "", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("bind netns to %s: %w", path, err)
			return
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

func loopbackUp(path string) error {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("open netns: %w", err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in netns: %w", err)
	}
	defer h.Close()
	return upLoopback(h)
}

// setLoopbackUp brings up the loopback of the calling thread's network
// namespace.
func setLoopbackUp() error {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink in netns: %w", err)
	}
	defer h.Close()
	return upLoopback(h)
}

// disableIPv6ByDefault makes the interfaces created in the calling
// thread's namespace from now on start without IPv6, not even a link-local
// address, as Docker gives a container on a network without IPv6; one on
// an IPv6 network turns it on for its own interface (configureSandbox).
// Writing an interface's disable_ipv6 needs the kernel's RTNL lock, which
// the write only tries to take, restarting the system call until it gets
// it: with the starts of an up creating veths and namespaces at once, that
// spun for up to 1 ms of CPU per start. The default needs no lock. A kernel
// without IPv6 has nothing to disable.
func disableIPv6ByDefault() error {
	if err := writeSysctl("net/ipv6/conf/default/disable_ipv6", "1"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// upLoopback brings up the loopback of h's namespace: a namespace's first
// device, always index 1 (the kernel's LOOPBACK_IFINDEX), so it needs no
// lookup by name.
func upLoopback(h *netlink.Handle) error {
	if err := h.LinkSetUp(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: 1, Name: "lo"}}); err != nil {
		return fmt.Errorf("loopback up: %w", err)
	}
	return nil
}

// inSandbox runs fn on a thread switched into the namespace ns: there
// /proc/sys/net and new netlink sockets are the sandbox's. The thread stays
// locked and Go discards it when the goroutine ends.
func inSandbox(ns netns.NsHandle, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := netns.Set(ns); err != nil {
			errc <- fmt.Errorf("enter sandbox: %w", err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}
