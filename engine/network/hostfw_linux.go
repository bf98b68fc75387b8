package network

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
)

// hostFirewall lets Berth's traffic through the host's own firewall. A drop
// in any table, ours aside, drops the packet whatever our table says: Docker
// sets the iptables FORWARD policy to DROP when it turns on forwarding, and
// firewalld and ufw drop forwarded traffic by default. So, for as long as
// the instance has a network, an accept for traffic entering or leaving a
// Berth bridge goes first in each forward chain that could drop it:
//
//   - iptables (legacy, and nft's iptables compatibility tables), through
//     the iptables binaries, so the host's iptables tools keep reading their
//     tables; after Docker's DOCKER-USER jump when there is one, so that the
//     rules users put there apply to Berth's traffic as to Docker's;
//   - every other nftables base chain on the forward hook that has rules or
//     a drop policy (a hand-written `table inet filter`, say);
//
// firewalld, when it runs, is not given rules: each bridge joins its
// trusted zone instead, with the network (see firewalld_linux.go).
//
// The accepts only stop the host's firewall from dropping what Berth's own
// table decides: isolation, internal networks and published ports are all
// enforced there. One pair of accepts matches every bridge Berth names
// (berth-*) and carries the comment "berth <instance>"; a network whose
// bridge is named otherwise (com.docker.network.bridge.name) has a pair of
// its own, "berth <instance> <bridge>", which goes with the network. All
// go with the instance's last network.
type hostFirewall struct{ instance string }

// hostAccept is one pair of accepts (in, out) for the interfaces matched
// by iface, in iptables spelling ("berth-+" or a bridge's name).
type hostAccept struct{ iface, tag string }

// prefix reports whether iface matches a name prefix rather than one name.
func (a hostAccept) prefix() bool { return strings.HasSuffix(a.iface, "+") }

// all is the pair that matches every bridge Berth names.
func (h hostFirewall) all() hostAccept {
	return hostAccept{iface: bridgePrefix + "+", tag: "berth " + h.instance}
}

// accepts are the pairs the bridges' traffic needs: the instance's pair,
// and a bridge's own for each name the instance's pair does not match.
func (h hostFirewall) accepts(bridges ...string) []hostAccept {
	out := []hostAccept{h.all()}
	for _, b := range bridges {
		if own, ok := h.bridgeAccept(b); ok {
			out = append(out, own)
		}
	}
	return out
}

// bridgeAccept is the bridge's own pair, for a name outside berth-*.
func (h hostFirewall) bridgeAccept(bridge string) (hostAccept, bool) {
	if strings.HasPrefix(bridge, bridgePrefix) {
		return hostAccept{}, false
	}
	return hostAccept{iface: bridge, tag: "berth " + h.instance + " " + bridge}, true
}

// ours reports whether a rule's comment is one of the instance's tags.
func (h hostFirewall) ours(comment string) bool {
	t := h.all().tag
	return comment == t || strings.HasPrefix(comment, t+" ")
}

// ensure adds whatever of the accepts the bridges' traffic needs is
// missing.
func (h hostFirewall) ensure(ctx context.Context, bridges ...string) error {
	var errs []error
	acc := h.accepts(bridges...)
	for _, x := range h.xtables() {
		for _, a := range acc {
			if err := x.ensure(ctx, a); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := h.nftEnsure(acc); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("let traffic through the host firewall: %w", err)
	}
	return nil
}

// present reports whether every rule ensure would add is there.
func (h hostFirewall) present(ctx context.Context, bridges ...string) bool {
	acc := h.accepts(bridges...)
	for _, x := range h.xtables() {
		for _, a := range acc {
			if !x.present(ctx, a) {
				return false
			}
		}
	}
	return h.nftPresent(acc)
}

// removeBridge takes the bridge's own accepts out, if it has any.
func (h hostFirewall) removeBridge(ctx context.Context, bridge string) error {
	a, ok := h.bridgeAccept(bridge)
	if !ok {
		return nil
	}
	return h.removeWhere(ctx, func(c string) bool { return c == a.tag })
}

// remove takes every rule of the instance out again, those of bridges a
// crash left behind included.
func (h hostFirewall) remove(ctx context.Context) error {
	return h.removeWhere(ctx, h.ours)
}

// removeWhere takes out the rules whose comment the function accepts.
func (h hostFirewall) removeWhere(ctx context.Context, match func(comment string) bool) error {
	var errs []error
	for _, x := range h.xtables() {
		if err := x.remove(ctx, match); err != nil {
			errs = append(errs, err)
		}
	}
	if err := h.nftRemove(match); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// xtable is one iptables backend of one family, driven by its binary.
type xtable struct {
	bin string // iptables-legacy, ip6tables-nft, ...
}

// xtables lists the backends whose filter table exists on this host (in
// this network namespace) and whose binary is installed. A backend without
// a filter table has no FORWARD chain to drop anything; listing it with its
// binary would create one, so the tables are looked up without it.
//
// The legacy tables are read through /proc/thread-self, never /proc/net:
// that is /proc/self/net, the namespace of the process's main thread, and
// Go runs any goroutine on the main thread, one that switches namespace
// too. A goroutine that ends locked to a thread in a sandbox's namespace
// (mountNewNetns, inSandbox) leaves the main thread parked there for
// good, and /proc/net then showed the sandbox's tables: none, so the
// legacy accepts were judged present and never put back after a reboot or
// a firewall reload. The calling thread is in the host's namespace (or the
// one a caller locked it into), as are the iptables commands it starts.
func (h hostFirewall) xtables() []xtable {
	var out []xtable
	for _, fam := range []struct {
		names  string // /proc file of the legacy tables
		legacy string
		nft    string
		table  nftables.TableFamily
	}{
		{"/proc/thread-self/net/ip_tables_names", "iptables-legacy", "iptables-nft", nftables.TableFamilyIPv4},
		{"/proc/thread-self/net/ip6_tables_names", "ip6tables-legacy", "ip6tables-nft", nftables.TableFamilyIPv6},
	} {
		if b, err := os.ReadFile(fam.names); err == nil && hasLine(b, "filter") {
			if bin, err := exec.LookPath(fam.legacy); err == nil {
				out = append(out, xtable{bin: bin})
			}
		}
		if iptablesNFTTable(fam.table) {
			if bin, err := exec.LookPath(fam.nft); err == nil {
				out = append(out, xtable{bin: bin})
			}
		}
	}
	return out
}

func hasLine(b []byte, s string) bool {
	for _, l := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(l) == s {
			return true
		}
	}
	return false
}

// iptablesNFTTable reports whether iptables-nft's filter table of the family
// exists with its FORWARD chain.
func iptablesNFTTable(fam nftables.TableFamily) bool {
	c, err := nftables.New()
	if err != nil {
		return false
	}
	_, err = c.ListChain(&nftables.Table{Name: "filter", Family: fam}, "FORWARD")
	return err == nil
}

func (x xtable) run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, x.bin, append([]string{"-w", "5"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %v: %s", x.bin, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// specs are the pair's two rules in iptables syntax.
func (x xtable) specs(a hostAccept) [][]string {
	var out [][]string
	for _, dir := range []string{"-i", "-o"} {
		out = append(out, accept(dir, a.iface, a.tag))
	}
	return out
}

func accept(dir, iface, tag string) []string {
	return []string{"FORWARD", dir, iface, "-m", "comment", "--comment", tag, "-j", "ACCEPT"}
}

func (x xtable) has(ctx context.Context, spec []string) bool {
	_, err := x.run(ctx, append([]string{"-C"}, spec...)...)
	return err == nil
}

func (x xtable) present(ctx context.Context, a hostAccept) bool {
	for _, s := range x.specs(a) {
		if !x.has(ctx, s) {
			return false
		}
	}
	return true
}

func (x xtable) ensure(ctx context.Context, a hostAccept) error {
	for i, s := range x.specs(a) {
		if x.has(ctx, s) {
			continue
		}
		pos, err := x.insertPosition(ctx)
		if err != nil {
			return err
		}
		args := append([]string{"-I", "FORWARD", strconv.Itoa(pos + i)}, s[1:]...)
		if _, err := x.run(ctx, args...); err != nil {
			return err
		}
	}
	return nil
}

// insertPosition is the rule number right after the jump to DOCKER-USER,
// or 1 when there is none.
func (x xtable) insertPosition(ctx context.Context) (int, error) {
	out, err := x.run(ctx, "-S", "FORWARD")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(l, "-A FORWARD") {
			continue
		}
		n++
		if strings.TrimSpace(l) == "-A FORWARD -j DOCKER-USER" {
			return n + 1, nil
		}
	}
	return 1, nil
}

// remove deletes the accepts in FORWARD whose comment matches (every
// copy, in case a crash left two).
func (x xtable) remove(ctx context.Context, match func(comment string) bool) error {
	out, err := x.run(ctx, "-S", "FORWARD")
	if err != nil {
		return err
	}
	for _, l := range strings.Split(out, "\n") {
		spec, ok := parseAccept(l)
		if !ok || !match(spec[6]) {
			continue
		}
		if _, err := x.run(ctx, append([]string{"-D"}, spec...)...); err != nil {
			return err
		}
	}
	return nil
}

// parseAccept reads back one of our accepts from a line of iptables -S:
// -A FORWARD -i IFACE -m comment --comment "TAG" -j ACCEPT (the comment
// quoted when it has spaces). Other lines are not ours.
func parseAccept(line string) ([]string, bool) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(line), "-A FORWARD ")
	if !ok {
		return nil, false
	}
	head, tail, ok := strings.Cut(rest, " -m comment --comment ")
	if !ok {
		return nil, false
	}
	f := strings.Fields(head)
	if len(f) != 2 || (f[0] != "-i" && f[0] != "-o") {
		return nil, false
	}
	tag, ok := strings.CutSuffix(tail, " -j ACCEPT")
	if !ok {
		return nil, false
	}
	if uq, err := strconv.Unquote(tag); err == nil {
		tag = uq
	}
	return accept(f[0], f[1], tag), true
}

// foreignChain is a forward base chain of someone else's nftables table.
type foreignChain struct {
	table *nftables.Table
	chain *nftables.Chain
}

// foreignForwardChains lists the nftables forward filter chains that are
// neither Berth's, nor iptables-nft's when its binary handles them, nor
// firewalld's while it runs, and that could drop a packet: they have a drop
// policy or rules.
func (h hostFirewall) foreignForwardChains(c *nftables.Conn) ([]foreignChain, error) {
	chains, err := c.ListChains()
	if err != nil {
		return nil, fmt.Errorf("nftables: list chains: %w", err)
	}
	xt := map[nftables.TableFamily]bool{}
	for _, fam := range []struct {
		f   nftables.TableFamily
		bin string
	}{{nftables.TableFamilyIPv4, "iptables-nft"}, {nftables.TableFamilyIPv6, "ip6tables-nft"}} {
		if _, err := exec.LookPath(fam.bin); err == nil {
			xt[fam.f] = true
		}
	}
	fwd := firewalldRunning()
	var out []foreignChain
	for _, ch := range chains {
		t := ch.Table
		switch {
		case ch.Hooknum == nil || *ch.Hooknum != *nftables.ChainHookForward || ch.Type != nftables.ChainTypeFilter:
			continue
		case t.Family != nftables.TableFamilyINet && t.Family != nftables.TableFamilyIPv4 && t.Family != nftables.TableFamilyIPv6:
			continue
		case strings.HasPrefix(t.Name, "berth"):
			continue
		case xt[t.Family] && isXtablesName(t.Name):
			continue
		case fwd && t.Name == "firewalld":
			continue
		}
		drops := ch.Policy != nil && *ch.Policy == nftables.ChainPolicyDrop
		if !drops {
			rules, err := c.GetRules(t, ch)
			if err != nil || len(rules) == 0 {
				continue
			}
		}
		out = append(out, foreignChain{table: t, chain: ch})
	}
	return out, nil
}

// isXtablesName: the tables iptables-nft makes.
func isXtablesName(name string) bool {
	switch name {
	case "filter", "mangle", "raw", "security", "nat":
		return true
	}
	return false
}

// nftRules are one pair's rules for one foreign chain:
// iifname "berth-*" accept, oifname "berth-*" accept (or the bridge's name).
func (a hostAccept) nftRules(fc foreignChain) []*nftables.Rule {
	name := strings.TrimSuffix(a.iface, "+")
	var out []*nftables.Rule
	for _, key := range []expr.MetaKey{expr.MetaKeyIIFNAME, expr.MetaKeyOIFNAME} {
		out = append(out, &nftables.Rule{
			Table: fc.table, Chain: fc.chain,
			Exprs: []expr.Any{
				&expr.Meta{Key: key, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(name, a.prefix())},
				&expr.Verdict{Kind: expr.VerdictAccept},
			},
			UserData: userdata.AppendString(nil, userdata.TypeComment, a.tag),
		})
	}
	return out
}

// tagged returns the chain's rules whose comment matches.
func tagged(c *nftables.Conn, fc foreignChain, match func(comment string) bool) []*nftables.Rule {
	rules, err := c.GetRules(fc.table, fc.chain)
	if err != nil {
		return nil
	}
	var out []*nftables.Rule
	for _, r := range rules {
		if s, _ := userdata.GetString(r.UserData, userdata.TypeComment); match(s) {
			out = append(out, r)
		}
	}
	return out
}

// is matches exactly the pair's comment.
func (a hostAccept) is(comment string) bool { return comment == a.tag }

func (h hostFirewall) nftPresent(acc []hostAccept) bool {
	c, err := nftables.New()
	if err != nil {
		return false
	}
	fcs, err := h.foreignForwardChains(c)
	if err != nil {
		return false
	}
	for _, fc := range fcs {
		for _, a := range acc {
			if len(tagged(c, fc, a.is)) < 2 {
				return false
			}
		}
	}
	return true
}

func (h hostFirewall) nftEnsure(acc []hostAccept) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	fcs, err := h.foreignForwardChains(c)
	if err != nil {
		return err
	}
	n := 0
	for _, fc := range fcs {
		for _, a := range acc {
			have := tagged(c, fc, a.is)
			if len(have) == 2 {
				continue
			}
			for _, r := range have {
				if err := c.DelRule(r); err != nil {
					return fmt.Errorf("nftables: %w", err)
				}
			}
			// Inserted in reverse, so they end up first and in order.
			rules := a.nftRules(fc)
			for i := len(rules) - 1; i >= 0; i-- {
				c.InsertRule(rules[i])
			}
			n++
		}
	}
	if n == 0 {
		return nil
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: add rules to the host's forward chains: %w", err)
	}
	return nil
}

func (h hostFirewall) nftRemove(match func(comment string) bool) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	chains, err := c.ListChains()
	if err != nil {
		return fmt.Errorf("nftables: list chains: %w", err)
	}
	n := 0
	for _, ch := range chains {
		if ch.Hooknum == nil || *ch.Hooknum != *nftables.ChainHookForward || strings.HasPrefix(ch.Table.Name, "berth") {
			continue
		}
		for _, r := range tagged(c, foreignChain{table: ch.Table, chain: ch}, match) {
			if err := c.DelRule(r); err != nil {
				return fmt.Errorf("nftables: %w", err)
			}
			n++
		}
	}
	if n == 0 {
		return nil
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: remove rules from the host's forward chains: %w", err)
	}
	return nil
}
