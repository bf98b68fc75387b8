package network

import (
	"context"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/userdata"

	"github.com/berth-dev/berth/internal/netnstest"
)

func TestParseAccept(t *testing.T) {
	for _, c := range []struct {
		line string
		want []string
	}{
		{`-A FORWARD -i berth-+ -m comment --comment "berth berth" -j ACCEPT`, accept("-i", "berth-+", "berth berth")},
		{`-A FORWARD -o br0 -m comment --comment "berth berth-t1 br0" -j ACCEPT`, accept("-o", "br0", "berth berth-t1 br0")},
		{`-A FORWARD -o br0 -m comment --comment solo -j ACCEPT`, accept("-o", "br0", "solo")},
		{`-A FORWARD -j DOCKER-USER`, nil},
		{`-A FORWARD -i br0 -o eth0 -m comment --comment "berth berth" -j ACCEPT`, nil},
		{`-A FORWARD -i br0 -m comment --comment "berth berth" -j DROP`, nil},
		{`-P FORWARD DROP`, nil},
	} {
		got, ok := parseAccept(c.line)
		if ok != (c.want != nil) || !slices.Equal(got, c.want) {
			t.Errorf("parseAccept(%q) = %q, %v; want %q", c.line, got, ok, c.want)
		}
	}
	h := hostFirewall{instance: "berth-t1"}
	for comment, want := range map[string]bool{
		"berth berth-t1": true, "berth berth-t1 br0": true,
		"berth berth-t12": false, "berth berth-t12 br0": false, "berth berth": false, "": false,
	} {
		if h.ours(comment) != want {
			t.Errorf("ours(%q) = %v", comment, !want)
		}
	}
}

// TestHostFirewallCustomBridge: in a namespace whose iptables-nft FORWARD
// drops and that has a native nftables forward chain, a bridge named
// outside berth-* gets accepts of its own next to the instance's, which go
// with it (removeBridge) while the instance's stay, and remove takes every
// rule of the instance and no other's.
func TestHostFirewallCustomBridge(t *testing.T) {
	needRoot(t)
	for _, bin := range []string{"iptables-nft", "nft"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s", bin)
		}
	}
	ns := netnstest.New(t, filepath.Join(t.TempDir(), "host"))
	ctx := context.Background()
	h := hostFirewall{instance: "berth-t1"}
	other := hostFirewall{instance: "berth-t2"}
	err := netnstest.Run(ns, func() error {
		for _, args := range [][]string{
			{"iptables-nft", "-P", "FORWARD", "DROP"},
			{"nft", "add", "table", "inet", "filter"},
			{"nft", "add chain inet filter forward { type filter hook forward priority 0 ; policy drop ; }"},
		} {
			if args[0] == "nft" && len(args) == 2 {
				args = append([]string{"nft"}, strings.Fields(args[1])...)
			}
			if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
				t.Fatalf("%v: %v: %s", args, err, out)
			}
		}
		if err := h.ensure(ctx, "berth-abc", "custom0"); err != nil {
			t.Fatal(err)
		}
		if err := other.ensure(ctx, "custom9"); err != nil {
			t.Fatal(err)
		}
		if !h.present(ctx, "custom0") || !h.present(ctx) || h.present(ctx, "custom1") {
			t.Errorf("present: want the instance's pair and custom0's, not custom1's")
		}
		want := []string{"berth berth-t1", "berth berth-t1 custom0", "berth berth-t2", "berth berth-t2 custom9"}
		if got := hostComments(t); !slices.Equal(got, double(want)) {
			t.Errorf("after ensure: comments %q, want %q", got, double(want))
		}
		fwd, _ := exec.Command("iptables-nft", "-S", "FORWARD").Output()
		if !strings.Contains(string(fwd), "-i custom0 -m comment") || !strings.Contains(string(fwd), "-o berth-+ -m comment") {
			t.Errorf("iptables FORWARD:\n%s", fwd)
		}
		if err := h.ensure(ctx, "custom0"); err != nil { // idempotent
			t.Fatal(err)
		}
		if got := hostComments(t); !slices.Equal(got, double(want)) {
			t.Errorf("after a second ensure: comments %q", got)
		}

		if err := h.removeBridge(ctx, "custom0"); err != nil {
			t.Fatal(err)
		}
		want = []string{"berth berth-t1", "berth berth-t2", "berth berth-t2 custom9"}
		if got := hostComments(t); !slices.Equal(got, double(want)) {
			t.Errorf("after removeBridge: comments %q, want %q", got, double(want))
		}

		// A crash may leave a bridge's pair behind: remove takes it too.
		if err := h.ensure(ctx, "custom1"); err != nil {
			t.Fatal(err)
		}
		if err := h.remove(ctx); err != nil {
			t.Fatal(err)
		}
		want = []string{"berth berth-t2", "berth berth-t2 custom9"}
		if got := hostComments(t); !slices.Equal(got, double(want)) {
			t.Errorf("after remove: comments %q, want %q", got, double(want))
		}
		return other.remove(ctx)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// double lists each comment four times, as hostComments sees a pair.
func double(s []string) []string {
	var out []string
	for _, c := range s {
		out = append(out, c, c, c, c)
	}
	return out
}

// hostComments lists the comments of the Berth rules in the current
// namespace's iptables-nft FORWARD and inet filter forward chains, sorted:
// each pair shows four times (in and out, in both chains).
func hostComments(t *testing.T) []string {
	t.Helper()
	var out []string
	fwd, err := exec.Command("iptables-nft", "-S", "FORWARD").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(fwd), "\n") {
		if a, ok := parseAccept(l); ok {
			out = append(out, a[6])
		}
	}
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	rules, err := c.GetRules(&nftables.Table{Name: "filter", Family: nftables.TableFamilyINet}, &nftables.Chain{Name: "forward"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		if s, _ := userdata.GetString(r.UserData, userdata.TypeComment); s != "" {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// TestHostFirewallFindsTheCallersLegacyTables: the legacy iptables tables
// are looked up in the calling thread's namespace, wherever the process's
// main thread is. Of two namespaces, one with a legacy filter table and one
// without, at most one can be the main thread's, so reading /proc/net (the
// main thread's view) fails one of them.
func TestHostFirewallFindsTheCallersLegacyTables(t *testing.T) {
	needRoot(t)
	if _, err := exec.LookPath("iptables-legacy"); err != nil {
		t.Skip("needs iptables-legacy")
	}
	dir := t.TempDir()
	with, without := netnstest.New(t, filepath.Join(dir, "with")), netnstest.New(t, filepath.Join(dir, "without"))
	h := hostFirewall{instance: "berth-t1"}
	for _, c := range []struct {
		ns   string
		want bool
	}{{with, true}, {without, false}} {
		err := netnstest.Run(c.ns, func() error {
			if c.want {
				if out, err := exec.Command("iptables-legacy", "-w", "5", "-P", "FORWARD", "DROP").CombinedOutput(); err != nil {
					t.Fatalf("iptables-legacy: %v: %s", err, out)
				}
			}
			got := slices.ContainsFunc(h.xtables(), func(x xtable) bool { return filepath.Base(x.bin) == "iptables-legacy" })
			if got != c.want {
				t.Errorf("%s: iptables-legacy listed %v, want %v", filepath.Base(c.ns), got, c.want)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
