package netdns

import (
	"fmt"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/vishvananda/netlink"
)

// A gateway address is often assigned just before the records naming it are
// written; the server must wait for it rather than fail the load.
func TestServeBindsGatewayAssignedLater(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("creating a bridge needs root")
	}
	t.Parallel()
	y := byte(loopbackY.Add(1))
	name := fmt.Sprintf("bdns%d%d", os.Getpid()%10000, y)
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}
	if err := netlink.LinkAdd(br); err != nil {
		t.Fatalf("add bridge %s: %v", name, err)
	}
	t.Cleanup(func() { netlink.LinkDel(br) })
	if err := netlink.LinkSetUp(br); err != nil {
		t.Fatal(err)
	}
	// 10.233.Y.0/24 lives only on this test's bridge; engine/network's
	// tests, which may run at the same time, use 10.231.0.0/16.
	gw := netip.AddrFrom4([4]byte{10, 233, y, 1})
	client := netip.AddrFrom4([4]byte{10, 233, y, 2})
	addAddr := func(a netip.Addr) {
		t.Helper()
		nl, err := netlink.ParseAddr(a.String() + "/24")
		if err != nil {
			t.Fatal(err)
		}
		if err := netlink.AddrAdd(br, nl); err != nil {
			t.Fatalf("add %s: %v", a, err)
		}
	}
	addAddr(client)

	dir := t.TempDir()
	r := Records{Networks: []Network{{Name: "late", Gateway: gw, Subnet: netip.MustParsePrefix("10.233.0.0/16"), Endpoints: []Endpoint{
		{ContainerID: "c1", IP: client, Names: []string{"late-client"}},
	}}}}
	if err := WriteRecords(t.Context(), dir, r); err != nil {
		t.Fatal(err)
	}
	startServe(t, Config{Dir: dir, Port: testPort, Upstreams: []string{deadUpstream(t)}})
	// Longer than one load's bind patience, so a server that gave up and
	// reported the generation anyway would be caught.
	time.Sleep(bindPatience + 300*time.Millisecond)
	if g := loadedGeneration(dir); g != 0 {
		t.Fatalf("generation %d reported loaded before its gateway exists", g)
	}
	addAddr(gw)
	waitLoaded(t, dir, 1)
	m, err := query(client, gw, "udp", "late-client", dns.TypeA)
	if err != nil {
		t.Fatal(err)
	}
	if got := answerAddrs(m); len(got) != 1 || got[0] != client.String() {
		t.Fatalf("answer %v", got)
	}
}
