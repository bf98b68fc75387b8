package network

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"

	"github.com/berth-dev/berth/internal/netnstest"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates bridges, veths, network namespaces and nftables tables")
	}
}

// testPools are far from anything a test host usually routes; IPAM skips
// whatever part of it is in use, parallel tests included.
var testPools = []Pool{
	{Base: netip.MustParsePrefix("10.231.0.0/16"), Size: 24},
	{Base: netip.MustParsePrefix("fd89:b3e7:4aff::/48"), Size: 64},
}

// newTestManager returns a Manager with its own dirs and table, and
// registers a cleanup that removes every network and sandbox it made and
// then checks that no bridge, veth, table or netns file is left.
func newTestManager(t *testing.T) *Manager {
	t.Helper()
	needRoot(t)
	b := make([]byte, 3)
	rand.Read(b)
	dir := t.TempDir()
	m, err := New(Config{
		StateDir: filepath.Join(dir, "state"),
		RunDir:   filepath.Join(dir, "run"),
		Table:    "berth-t" + hex.EncodeToString(b),
		Pools:    testPools,
	})
	if err != nil {
		t.Fatal(err)
	}
	var bridges, veths []string
	t.Cleanup(func() {
		for _, name := range append(bridges, veths...) {
			if _, err := netlink.LinkByName(name); err == nil {
				t.Errorf("link %s left behind", name)
			}
		}
		if ok, err := m.fw.exists(mustConn(t)); err != nil || ok {
			t.Errorf("nftables table %s left behind (err %v)", m.cfg.Table, err)
		}
		ents, _ := os.ReadDir(m.cfg.netnsDir())
		for _, e := range ents {
			t.Errorf("netns file %s left behind", e.Name())
		}
	})
	t.Cleanup(func() {
		ctx := context.Background()
		nets, err := m.List(ctx)
		if err != nil {
			t.Errorf("cleanup list: %v", err)
		}
		for _, n := range nets {
			bridges = append(bridges, n.Bridge)
			eps, _ := m.Endpoints(ctx, n.Name)
			for _, ep := range eps {
				veths = append(veths, ep.HostVeth)
				if err := m.Unpublish(ctx, ep.ContainerID); err != nil {
					t.Errorf("cleanup unpublish: %v", err)
				}
				if err := m.Disconnect(ctx, n.Name, ep.ContainerID); err != nil {
					t.Errorf("cleanup disconnect: %v", err)
				}
			}
			if err := m.Remove(ctx, n.Name); err != nil {
				t.Errorf("cleanup remove %s: %v", n.Name, err)
			}
		}
		ents, _ := os.ReadDir(m.cfg.netnsDir())
		for _, e := range ents {
			if err := m.RemoveSandbox(ctx, e.Name()); err != nil {
				t.Errorf("cleanup sandbox: %v", err)
			}
		}
		// A test that published without a network still owns the table.
		if err := m.dropTable(ctx); err != nil {
			t.Errorf("cleanup table: %v", err)
		}
	})
	return m
}

func mustConn(t *testing.T) *nftables.Conn {
	t.Helper()
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func uniqueID(t *testing.T) string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// serveIn starts a TCP server inside the sandbox that answers every
// connection with reply and closes it.
func serveIn(t *testing.T, sandbox, addr, reply string) {
	t.Helper()
	var ln net.Listener
	if err := netnstest.Run(sandbox, func() (err error) {
		ln, err = net.Listen("tcp4", addr)
		return err
	}); err != nil {
		t.Fatalf("listen in sandbox: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte(reply))
			c.Close()
		}
	}()
}

// fetch dials addr (from the current namespace) and returns what it reads.
func fetch(addr string, timeout time.Duration) (string, error) {
	c, err := net.DialTimeout("tcp4", addr, timeout)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	b, err := io.ReadAll(c)
	return string(b), err
}

func fetchFrom(sandbox, addr string, timeout time.Duration) (string, error) {
	var got string
	err := netnstest.Run(sandbox, func() (err error) {
		got, err = fetch(addr, timeout)
		return err
	})
	return got, err
}

func freePort(t *testing.T) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

// hostAddr returns a non-loopback IPv4 address of the host outside any
// Berth bridge, if there is one.
func hostAddr() (netip.Addr, bool) {
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback != 0 || i.Flags&net.FlagUp == 0 || strings.HasPrefix(i.Name, "berth") || strings.HasPrefix(i.Name, "vberth") {
			continue
		}
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP.To4()); ok && n.IP.To4() != nil {
					return ip, true
				}
			}
		}
	}
	return netip.Addr{}, false
}

func isTimeoutOrRefused(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || err != nil && strings.Contains(err.Error(), "refused")
}
