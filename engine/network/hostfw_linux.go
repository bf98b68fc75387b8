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
// enforced there. Each rule carries the comment "berth <instance>", and all
// go with the instance's last network.
type hostFirewall struct{ instance string }

// hostBridgePattern matches every bridge Berth names (iptables spelling).
const hostBridgePattern = bridgePrefix + "+"

func (h hostFirewall) tag() string { return "berth " + h.instance }

// ensure adds whatever of the rules is missing.
func (h hostFirewall) ensure(ctx context.Context) error {
	var errs []error
	for _, x := range h.xtables() {
		if err := x.ensure(ctx, h.tag()); err != nil {
			errs = append(errs, err)
		}
	}
	if err := h.nftEnsure(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("let traffic through the host firewall: %w", err)
	}
	return nil
}

// present reports whether every rule ensure would add is there.
func (h hostFirewall) present(ctx context.Context) bool {
	for _, x := range h.xtables() {
		if !x.present(ctx, h.tag()) {
			return false
		}
	}
	return h.nftPresent()
}

// remove takes every rule of the instance out again.
func (h hostFirewall) remove(ctx context.Context) error {
	var errs []error
	for _, x := range h.xtables() {
		if err := x.remove(ctx, h.tag()); err != nil {
			errs = append(errs, err)
		}
	}
	if err := h.nftRemove(); err != nil {
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
func (h hostFirewall) xtables() []xtable {
	var out []xtable
	for _, fam := range []struct {
		names  string // /proc file of the legacy tables
		legacy string
		nft    string
		table  nftables.TableFamily
	}{
		{"/proc/net/ip_tables_names", "iptables-legacy", "iptables-nft", nftables.TableFamilyIPv4},
		{"/proc/net/ip6_tables_names", "ip6tables-legacy", "ip6tables-nft", nftables.TableFamilyIPv6},
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

// specs are the instance's two rules in iptables syntax.
func (x xtable) specs(tag string) [][]string {
	var out [][]string
	for _, dir := range []string{"-i", "-o"} {
		out = append(out, []string{"FORWARD", dir, hostBridgePattern, "-m", "comment", "--comment", tag, "-j", "ACCEPT"})
	}
	return out
}

func (x xtable) has(ctx context.Context, spec []string) bool {
	_, err := x.run(ctx, append([]string{"-C"}, spec...)...)
	return err == nil
}

func (x xtable) present(ctx context.Context, tag string) bool {
	for _, s := range x.specs(tag) {
		if !x.has(ctx, s) {
			return false
		}
	}
	return true
}

func (x xtable) ensure(ctx context.Context, tag string) error {
	for i, s := range x.specs(tag) {
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

func (x xtable) remove(ctx context.Context, tag string) error {
	for _, s := range x.specs(tag) {
		// -D removes one copy; loop in case a crash left two.
		for x.has(ctx, s) {
			if _, err := x.run(ctx, append([]string{"-D"}, s...)...); err != nil {
				return err
			}
		}
	}
	return nil
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

// nftRules are the instance's rules for one foreign chain:
// iifname "berth-*" accept, oifname "berth-*" accept.
func (h hostFirewall) nftRules(fc foreignChain) []*nftables.Rule {
	var out []*nftables.Rule
	for _, key := range []expr.MetaKey{expr.MetaKeyIIFNAME, expr.MetaKeyOIFNAME} {
		out = append(out, &nftables.Rule{
			Table: fc.table, Chain: fc.chain,
			Exprs: []expr.Any{
				&expr.Meta{Key: key, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(bridgePrefix, true)},
				&expr.Verdict{Kind: expr.VerdictAccept},
			},
			UserData: userdata.AppendString(nil, userdata.TypeComment, h.tag()),
		})
	}
	return out
}

// tagged returns the chain's rules carrying the instance's comment.
func (h hostFirewall) tagged(c *nftables.Conn, fc foreignChain) []*nftables.Rule {
	rules, err := c.GetRules(fc.table, fc.chain)
	if err != nil {
		return nil
	}
	var out []*nftables.Rule
	for _, r := range rules {
		if s, _ := userdata.GetString(r.UserData, userdata.TypeComment); s == h.tag() {
			out = append(out, r)
		}
	}
	return out
}

func (h hostFirewall) nftPresent() bool {
	c, err := nftables.New()
	if err != nil {
		return false
	}
	fcs, err := h.foreignForwardChains(c)
	if err != nil {
		return false
	}
	for _, fc := range fcs {
		if len(h.tagged(c, fc)) < 2 {
			return false
		}
	}
	return true
}

func (h hostFirewall) nftEnsure() error {
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
		have := h.tagged(c, fc)
		if len(have) == 2 {
			continue
		}
		for _, r := range have {
			if err := c.DelRule(r); err != nil {
				return fmt.Errorf("nftables: %w", err)
			}
		}
		// Inserted in reverse, so they end up first and in order.
		rules := h.nftRules(fc)
		for i := len(rules) - 1; i >= 0; i-- {
			c.InsertRule(rules[i])
		}
		n++
	}
	if n == 0 {
		return nil
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: add rules to the host's forward chains: %w", err)
	}
	return nil
}

func (h hostFirewall) nftRemove() error {
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
		for _, r := range h.tagged(c, foreignChain{table: ch.Table, chain: ch}) {
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
