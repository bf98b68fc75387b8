package network

import (
	"net"
	"testing"
	"time"
)

// TestConnectChecksANetworkOncePerCommand: the connects of one command
// (one manager) check a network's bridge and rules once, not once each;
// the next command, and a command that lives on once its check is stale,
// still repair rules wiped meanwhile (a firewall reload), and traffic
// flows.
func TestConnectChecksANetworkOncePerCommand(t *testing.T) {
	m := newTestManager(t)
	ctx := t.Context()
	n, err := m.Create(ctx, Spec{Name: "once"})
	if err != nil {
		t.Fatal(err)
	}
	wipe := func() {
		t.Helper()
		if err := m.fw.removeTagged(netTag(n.ID)); err != nil {
			t.Fatal(err)
		}
		if m.whole(ctx, n) {
			t.Fatal("a network without its rules reads as whole")
		}
	}
	connected(t, m, "once")
	wipe()
	connected(t, m, "once")
	if m.whole(ctx, n) {
		t.Fatal("the second connect of one command checked the network again")
	}

	next, err := New(m.cfg)
	if err != nil {
		t.Fatal(err)
	}
	sbA, _ := connected(t, next, "once")
	if !next.whole(ctx, n) {
		t.Fatal("the next command's connect did not repair the network's rules")
	}
	wipe()
	next.checked.ttl = 0 // its check is stale
	sbB, epB := connected(t, next, "once")
	if !next.whole(ctx, n) {
		t.Fatal("a connect after the check went stale did not repair the network's rules")
	}
	serveIn(t, sbB, net.JoinHostPort(epB.IP.String(), "8080"), "repaired")
	if got, err := fetchFrom(sbA, net.JoinHostPort(epB.IP.String(), "8080"), 3*time.Second); err != nil || got != "repaired" {
		t.Fatalf("traffic after repair: %q %v", got, err)
	}
}
