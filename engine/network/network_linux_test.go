package network

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
)

func TestNetworkLifecycle(t *testing.T) {
	t.Parallel()
	m := newTestManager(t)
	ctx := t.Context()

	n, err := m.Create(ctx, Spec{Name: "front", Labels: map[string]string{"com.docker.compose.project": "p"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(n.ID) != 64 || n.Bridge != "berth-"+n.ID[:9] || len(n.Bridge) > 15 {
		t.Errorf("bad id/bridge: %q %q", n.ID, n.Bridge)
	}
	if !testPools[0].Base.Contains(n.Subnet.Addr()) || n.Subnet.Bits() != 24 || n.Gateway != n.Subnet.Addr().Next() {
		t.Errorf("subnet %s gateway %s", n.Subnet, n.Gateway)
	}
	link, err := netlink.LinkByName(n.Bridge)
	if err != nil {
		t.Fatalf("bridge missing: %v", err)
	}
	if link.Attrs().Flags&(1<<0) == 0 {
		t.Errorf("bridge %s is not up", n.Bridge)
	}
	addrs, _ := netlink.AddrList(link, netlink.FAMILY_V4)
	if len(addrs) != 1 || addrs[0].IPNet.String() != netip.PrefixFrom(n.Gateway, 24).String() {
		t.Errorf("bridge addresses %v", addrs)
	}
	if b, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); string(b) != "1\n" {
		t.Errorf("ip_forward = %q", b)
	}
	if ok, err := m.fw.exists(mustConn(t)); err != nil || !ok {
		t.Errorf("table %s missing: %v", m.cfg.Table, err)
	}

	got, err := m.Get(ctx, "front")
	if err != nil || got.ID != n.ID || got.Labels["com.docker.compose.project"] != "p" {
		t.Errorf("get = %+v, %v", got, err)
	}
	internal, err := m.Create(ctx, Spec{Name: "back", Internal: true})
	if err != nil {
		t.Fatal(err)
	}
	if internal.Subnet.Overlaps(n.Subnet) {
		t.Errorf("subnets overlap: %s %s", internal.Subnet, n.Subnet)
	}
	list, err := m.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if names := []string{list[0].Name, list[1].Name}; len(list) != 2 || !slices.Equal(names, []string{"back", "front"}) {
		t.Errorf("list = %v", list)
	}

	errCases := []struct {
		name string
		err  error
		want error
	}{
		{"create existing", func() error { _, err := m.Create(ctx, Spec{Name: "front"}); return err }(), errdefs.ErrAlreadyExists},
		{"get missing", func() error { _, err := m.Get(ctx, "nope"); return err }(), errdefs.ErrNotFound},
		{"remove missing", m.Remove(ctx, "nope"), errdefs.ErrNotFound},
		{"bad name", func() error { _, err := m.Create(ctx, Spec{Name: "../x"}); return err }(), errdefs.ErrInvalidArgument},
		{"overlapping subnet", func() error { _, err := m.Create(ctx, Spec{Name: "dup", IPv4: IPAM{Subnet: n.Subnet}}); return err }(), errdefs.ErrConflict},
		{"subnet with host bits", func() error {
			_, err := m.Create(ctx, Spec{Name: "hb", IPv4: IPAM{Subnet: netip.MustParsePrefix("10.231.250.1/24")}})
			return err
		}(), errdefs.ErrInvalidArgument},
		{"connect missing network", func() error {
			_, err := m.Connect(ctx, "nope", uniqueID(t), "/nonexistent", Attachment{})
			return err
		}(), errdefs.ErrNotFound},
	}
	for _, c := range errCases {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, c.err, c.want)
		}
	}

	// A network with an endpoint cannot go.
	id := uniqueID(t)
	sb, err := m.CreateSandbox(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Connect(ctx, "front", id, sb, Attachment{}); err != nil {
		t.Fatal(err)
	}
	if err := m.Remove(ctx, "front"); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("remove with endpoint: %v", err)
	}
	if err := m.Disconnect(ctx, "front", id); err != nil {
		t.Fatal(err)
	}
	if err := m.Disconnect(ctx, "front", id); err != nil {
		t.Errorf("second disconnect: %v", err)
	}
	if err := m.RemoveSandbox(ctx, id); err != nil {
		t.Fatal(err)
	}

	for _, name := range []string{"front", "back"} {
		if err := m.Remove(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := netlink.LinkByName(n.Bridge); err == nil {
		t.Errorf("bridge %s still there", n.Bridge)
	}
	if ok, _ := m.fw.exists(mustConn(t)); ok {
		t.Errorf("table %s still there after last network", m.cfg.Table)
	}
}

func TestSandbox(t *testing.T) {
	t.Parallel()
	m := newTestManager(t)
	ctx := t.Context()
	id := uniqueID(t)
	p1, err := m.CreateSandbox(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	// The new namespace's loopback is up before a second call (which
	// brings it up again from outside).
	checkLoopbackUp(t, p1)
	p2, err := m.CreateSandbox(ctx, id)
	if err != nil || p2 != p1 {
		t.Fatalf("second create: %q %v", p2, err)
	}
	if !isNetnsMount(p1) {
		t.Fatalf("%s is not a netns mount", p1)
	}
	ns, err := netns.GetFromPath(p1)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	self, _ := netns.Get()
	defer self.Close()
	if ns.Equal(self) {
		t.Fatal("sandbox is the host namespace")
	}
	checkLoopbackUp(t, p1)
	for range 2 {
		if err := m.RemoveSandbox(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(p1); !os.IsNotExist(err) {
		t.Errorf("netns file still there: %v", err)
	}
	if _, err := m.CreateSandbox(ctx, "../escape"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("bad id: %v", err)
	}
}

func checkLoopbackUp(t *testing.T, sandbox string) {
	t.Helper()
	ns, err := netns.GetFromPath(sandbox)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil || lo.Attrs().Flags&unix.IFF_UP == 0 {
		t.Errorf("loopback not up: %v", err)
	}
}

// Twenty containers connect at once: distinct addresses, every veth on the
// bridge, and a second network becomes eth1 without a second default route.
func TestConnectConcurrent(t *testing.T) {
	t.Parallel()
	m := newTestManager(t)
	ctx := t.Context()
	n, err := m.Create(ctx, Spec{Name: "many"})
	if err != nil {
		t.Fatal(err)
	}
	n2, err := m.Create(ctx, Spec{Name: "second"})
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, 20)
	sbs := make([]string, 20)
	for i := range ids {
		ids[i] = uniqueID(t)
		if sbs[i], err = m.CreateSandbox(ctx, ids[i]); err != nil {
			t.Fatal(err)
		}
	}
	eps := make([]Endpoint, len(ids))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(20)
	for i := range ids {
		g.Go(func() (err error) {
			eps[i], err = m.Connect(gctx, "many", ids[i], sbs[i], Attachment{Name: fmt.Sprintf("c%d", i)})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	seen := map[netip.Addr]bool{}
	br, _ := netlink.LinkByName(n.Bridge)
	for _, ep := range eps {
		if seen[ep.IP] || !n.Subnet.Contains(ep.IP) || ep.IP == n.Gateway || ep.IfName != "eth0" || len(ep.HostVeth) > 15 {
			t.Errorf("bad endpoint %+v", ep)
		}
		seen[ep.IP] = true
		l, err := netlink.LinkByName(ep.HostVeth)
		if err != nil || l.Attrs().MasterIndex != br.Attrs().Index {
			t.Errorf("veth %s not on bridge: %v", ep.HostVeth, err)
		}
	}
	stored, err := m.Endpoints(ctx, "many")
	if err != nil || len(stored) != 20 || stored[0].Name == "" {
		t.Errorf("stored endpoints %d %v", len(stored), err)
	}

	ep2, err := m.Connect(ctx, "second", ids[0], sbs[0], Attachment{})
	if err != nil {
		t.Fatal(err)
	}
	if ep2.IfName != "eth1" || !n2.Subnet.Contains(ep2.IP) {
		t.Errorf("second network endpoint %+v", ep2)
	}
	ns, _ := netns.GetFromPath(sbs[0])
	defer ns.Close()
	h, _ := netlink.NewHandleAt(ns)
	defer h.Close()
	routes, _ := h.RouteList(nil, netlink.FAMILY_V4)
	defaults := 0
	for _, r := range routes {
		if r.Dst == nil || r.Dst.IP.IsUnspecified() {
			defaults++
			if !r.Gw.Equal(n.Gateway.AsSlice()) {
				t.Errorf("default route via %s, want %s", r.Gw, n.Gateway)
			}
		}
	}
	if defaults != 1 {
		t.Errorf("%d default routes, want 1", defaults)
	}
	if _, err := m.Connect(ctx, "second", ids[0], sbs[0], Attachment{}); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("double connect: %v", err)
	}

	// A freed address is kept for the name that had it (a recreated
	// container gets its address back), and others get fresh ones while
	// there are any.
	if err := m.Disconnect(ctx, "many", ids[3]); err != nil {
		t.Fatal(err)
	}
	if _, err := netlink.LinkByName(eps[3].HostVeth); err == nil {
		t.Errorf("veth %s survived disconnect", eps[3].HostVeth)
	}
	other := uniqueID(t)
	sbOther, err := m.CreateSandbox(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	if ep, err := m.Connect(ctx, "many", other, sbOther, Attachment{Name: "newcomer"}); err != nil || ep.IP == eps[3].IP {
		t.Errorf("newcomer got %s (%v), the address c3 had", ep.IP, err)
	}
	again, err := m.Connect(ctx, "many", ids[3], sbs[3], Attachment{Name: "c3"})
	if err != nil || again.IP != eps[3].IP {
		t.Errorf("reconnect got %s (%v), want %s", again.IP, err, eps[3].IP)
	}
}

// Two processes of one instance (same state dir and table) and a second
// instance create networks at once: subnets never overlap and the table's
// fixed rules exist exactly once.
func TestConcurrentInstances(t *testing.T) {
	t.Parallel()
	a := newTestManager(t)
	a2, err := New(a.cfg) // a second "process" of instance a
	if err != nil {
		t.Fatal(err)
	}
	b := newTestManager(t)
	g, ctx := errgroup.WithContext(t.Context())
	var nets [3][]Network
	for i, m := range []*Manager{a, a2, b} {
		nets[i] = make([]Network, 4)
		for j := range 4 {
			g.Go(func() (err error) {
				nets[i][j], err = m.Create(ctx, Spec{Name: fmt.Sprintf("n%d-%d", i, j)})
				return err
			})
		}
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	var all []Network
	for _, ns := range nets {
		all = append(all, ns...)
	}
	for i, x := range all {
		for _, y := range all[i+1:] {
			if x.Subnet.Overlaps(y.Subnet) || x.Bridge == y.Bridge {
				t.Errorf("%s %s and %s %s collide", x.Name, x.Subnet, y.Name, y.Subnet)
			}
		}
	}
	if l, _ := a.List(t.Context()); len(l) != 8 {
		t.Errorf("instance a lists %d networks, want 8", len(l))
	}
	c := mustConn(t)
	for _, m := range []*Manager{a, b} {
		rules, err := c.GetRules(m.fw.tbl(), &nftables.Chain{Name: chainForward, Table: m.fw.tbl()})
		if err != nil || len(rules) != 4 {
			t.Errorf("table %s forward chain has %d rules (%v), want 4", m.cfg.Table, len(rules), err)
		}
	}
}

// Five hundred networks exist at once: each gets its own subnet from the
// pools, bridge and rules, and they all go again.
func TestFiveHundredNetworks(t *testing.T) {
	if testing.Short() {
		t.Skip("creates 500 bridges")
	}
	m := newTestManager(t)
	ctx := t.Context()
	const n = 500
	m.cfg.Pools = []Pool{{Base: netip.MustParsePrefix("10.232.0.0/15"), Size: 24}}
	start := time.Now()
	seen := map[netip.Prefix]bool{}
	for i := range n {
		nw, err := m.Create(ctx, Spec{Name: fmt.Sprintf("n%03d", i)})
		if err != nil {
			t.Fatalf("network %d: %v", i, err)
		}
		if seen[nw.Subnet] {
			t.Fatalf("subnet %s handed out twice", nw.Subnet)
		}
		seen[nw.Subnet] = true
	}
	t.Logf("created %d networks in %v", n, time.Since(start).Round(time.Millisecond))
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	bridges := 0
	for _, l := range links {
		if _, ok := l.(*netlink.Bridge); ok && strings.HasPrefix(l.Attrs().Name, bridgePrefix) {
			bridges++
		}
	}
	if bridges < n {
		t.Fatalf("%d bridges on the host, want at least %d", bridges, n)
	}
	start = time.Now()
	for i := range n {
		if err := m.Remove(ctx, fmt.Sprintf("n%03d", i)); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("removed them in %v", time.Since(start).Round(time.Millisecond))
}
