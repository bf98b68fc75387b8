package network

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// firewall is this instance's inet table. Callers hold the instance lock, so
// two processes of one instance never interleave their batches; every batch
// is one netlink transaction, applied whole or not at all.
type firewall struct{ table string }

func (f firewall) tbl() *nftables.Table {
	return &nftables.Table{Name: f.table, Family: nftables.TableFamilyINet}
}

// queueEnsure adds to c the table, its sets, its chains and the fixed rules
// of the base chains. The base chains are flushed and refilled in the same
// transaction, so running it any number of times, from any process, leaves
// exactly one copy of each fixed rule and never a moment without them.
func (f firewall) queueEnsure(c *nftables.Conn) (map[string]*nftables.Set, error) {
	t := c.AddTable(f.tbl())
	byName := map[string]*nftables.Set{}
	for _, s := range sets(t) {
		if err := c.AddSet(s, nil); err != nil {
			return nil, fmt.Errorf("nftables set %s: %w", s.Name, err)
		}
		byName[s.Name] = s
	}
	base, regular := chains(t)
	for _, ch := range regular {
		c.AddChain(ch)
	}
	chainByName := map[string]*nftables.Chain{}
	for _, ch := range base {
		chainByName[ch.Name] = c.AddChain(ch)
		c.FlushChain(ch)
	}
	for _, r := range baseRules() {
		f.queueRule(c, chainByName[r.chain], r, byName)
	}
	return byName, nil
}

func (f firewall) queueRule(c *nftables.Conn, ch *nftables.Chain, r ruleSpec, sets map[string]*nftables.Set) {
	if ch == nil {
		ch = &nftables.Chain{Name: r.chain, Table: f.tbl()}
	}
	exprs := r.exprs
	for i, e := range exprs {
		// Lookups name their set; within the transaction that (re)declares
		// it, the kernel wants its ID too.
		if l, ok := e.(*expr.Lookup); ok && sets[l.SetName] != nil {
			cp := *l
			cp.SetID = sets[l.SetName].ID
			exprs = append(exprs[:i:i], append([]expr.Any{&cp}, exprs[i+1:]...)...)
		}
	}
	rule := &nftables.Rule{Table: f.tbl(), Chain: ch, Exprs: exprs}
	if r.tag != "" {
		rule.UserData = userdata.AppendString(nil, userdata.TypeComment, r.tag)
	}
	c.AddRule(rule)
}

func (f firewall) flush(c *nftables.Conn, what string) error {
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables table %s: %s: %w", f.table, what, err)
	}
	return nil
}

// apply ensures the table and adds rules, in one transaction.
func (f firewall) apply(rules []ruleSpec) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	sets, err := f.queueEnsure(c)
	if err != nil {
		return err
	}
	for _, r := range rules {
		f.queueRule(c, nil, r, sets)
	}
	return f.flush(c, "add rules")
}

func elem(name string, v *expr.Verdict) nftables.SetElement {
	return nftables.SetElement{Key: ifname(name, false), VerdictData: v}
}

// addNetwork adds the network's bridge to the sets and maps, its chain in
// the forward path and its source NAT rules, in one transaction.
func (f firewall) addNetwork(n Network) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	sets, err := f.queueEnsure(c)
	if err != nil {
		return err
	}
	into := c.AddChain(&nftables.Chain{Name: intoChain(n), Table: f.tbl()})
	c.FlushChain(into)
	for _, r := range intoRules(n) {
		f.queueRule(c, into, r, sets)
	}
	if err := c.SetAddElements(sets[setBridges], []nftables.SetElement{{Key: ifname(n.Bridge, false)}}); err != nil {
		return err
	}
	if err := c.SetAddElements(sets[mapInto], []nftables.SetElement{elem(n.Bridge, &expr.Verdict{Kind: expr.VerdictJump, Chain: intoChain(n)})}); err != nil {
		return err
	}
	if n.Internal {
		if err := c.SetAddElements(sets[mapOutOf], []nftables.SetElement{elem(n.Bridge, &expr.Verdict{Kind: expr.VerdictDrop})}); err != nil {
			return err
		}
	}
	for _, r := range postRules(n) {
		f.queueRule(c, nil, r, sets)
	}
	return f.flush(c, "add network "+n.Name)
}

// removeNetwork takes out everything addNetwork put in; what is already
// gone is fine.
func (f firewall) removeNetwork(n Network) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	ok, err := f.exists(c)
	if err != nil || !ok {
		return err
	}
	t := f.tbl()
	queued := false
	for _, name := range []string{setBridges, mapInto, mapOutOf} {
		s, err := c.GetSetByName(t, name)
		if err != nil {
			continue
		}
		els, err := c.GetSetElements(s)
		if err != nil {
			return fmt.Errorf("nftables: %w", err)
		}
		key := ifname(n.Bridge, false)
		for _, e := range els {
			if bytes.Equal(e.Key, key) {
				if err := c.SetDeleteElements(s, []nftables.SetElement{{Key: key}}); err != nil {
					return fmt.Errorf("nftables: %w", err)
				}
				queued = true
			}
		}
	}
	if ch, err := c.ListChain(t, intoChain(n)); err == nil {
		c.FlushChain(ch)
		c.DelChain(ch)
		queued = true
	}
	del, err := f.queueDelTagged(c, netTag(n.ID))
	if err != nil {
		return err
	}
	if !queued && del == 0 {
		return nil
	}
	return f.flush(c, "remove network "+n.Name)
}

// hasNetwork reports whether the network's forward chain is mapped and its
// source NAT rules are there.
func (f firewall) hasNetwork(n Network) bool {
	c, err := nftables.New()
	if err != nil {
		return false
	}
	s, err := c.GetSetByName(f.tbl(), mapInto)
	if err != nil {
		return false
	}
	els, err := c.GetSetElements(s)
	if err != nil {
		return false
	}
	mapped := false
	for _, e := range els {
		mapped = mapped || bytes.Equal(e.Key, ifname(n.Bridge, false))
	}
	return mapped && f.hasTagged(chainNetsPost, netTag(n.ID))
}

// exists reports whether the table is there; listing first avoids relying
// on error text to tell "missing" from real failures.
func (f firewall) exists(c *nftables.Conn) (bool, error) {
	ts, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return false, fmt.Errorf("nftables: list tables: %w", err)
	}
	for _, t := range ts {
		if t.Name == f.table {
			return true, nil
		}
	}
	return false, nil
}

// queueDelTagged queues the deletion of every rule of the regular chains
// whose comment is tag, or starts with tag when tag ends in a space.
func (f firewall) queueDelTagged(c *nftables.Conn, tag string) (int, error) {
	n := 0
	for _, name := range []string{chainNetsPost, chainPorts} {
		rules, err := c.GetRules(f.tbl(), &nftables.Chain{Name: name, Table: f.tbl()})
		if err != nil {
			continue // chain missing: nothing of ours in it
		}
		for _, r := range rules {
			s, _ := userdata.GetString(r.UserData, userdata.TypeComment)
			if s == tag || (strings.HasSuffix(tag, " ") && strings.HasPrefix(s, tag)) {
				if err := c.DelRule(r); err != nil {
					return 0, fmt.Errorf("nftables: %w", err)
				}
				n++
			}
		}
	}
	return n, nil
}

// removeTagged deletes the rules queueDelTagged finds.
func (f firewall) removeTagged(tag string) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	ok, err := f.exists(c)
	if err != nil || !ok {
		return err
	}
	n, err := f.queueDelTagged(c, tag)
	if err != nil || n == 0 {
		return err
	}
	return f.flush(c, "delete rules")
}

func (f firewall) deleteTable() error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	ok, err := f.exists(c)
	if err != nil || !ok {
		return err
	}
	c.DelTable(f.tbl())
	return f.flush(c, "delete table")
}

// publishedPort is a port some Berth table on the host already publishes.
type publishedPort struct {
	table       string
	containerID string
	port        Port
	v4, v6      bool       // the families it has a rule for
	to4, to6    netip.Addr // the container addresses its rules DNAT to
}

// allPublished reads the port rules of every Berth table on the host, not
// just ours, so two instances never publish the same host port.
func allPublished() ([]publishedPort, error) {
	c, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	ts, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("nftables: list tables: %w", err)
	}
	var out []publishedPort
	for _, t := range ts {
		if !strings.HasPrefix(t.Name, "berth") {
			continue
		}
		rules, err := c.GetRules(t, &nftables.Chain{Name: chainPorts, Table: t})
		if err != nil {
			continue // a table without a ports chain publishes nothing
		}
		seen := map[string]int{}
		for _, r := range rules {
			s, _ := userdata.GetString(r.UserData, userdata.TypeComment)
			id, p, ok := parsePortTag(s)
			if !ok {
				continue
			}
			// One tag covers the IPv4 and IPv6 rules of a port.
			i, dup := seen[s]
			if !dup {
				i, seen[s] = len(out), len(out)
				out = append(out, publishedPort{table: t.Name, containerID: id, port: p})
			}
			if ruleFamily(r) == unix.NFPROTO_IPV6 {
				out[i].v6, out[i].to6 = true, natTarget(r)
			} else {
				out[i].v4, out[i].to4 = true, natTarget(r)
			}
		}
	}
	return out, nil
}

// ruleFamily is the family a port rule matches (its first comparison).
func ruleFamily(r *nftables.Rule) byte {
	for _, e := range r.Exprs {
		if c, ok := e.(*expr.Cmp); ok && len(c.Data) == 1 {
			return c.Data[0]
		}
	}
	return 0
}

// natTarget is the address a port rule DNATs to (the immediate loaded into
// its address register), or none.
func natTarget(r *nftables.Rule) netip.Addr {
	for _, e := range r.Exprs {
		if im, ok := e.(*expr.Immediate); ok && im.Register == 1 {
			if a, ok := netip.AddrFromSlice(im.Data); ok {
				return a
			}
		}
	}
	return netip.Addr{}
}

// hasTagged reports whether the table holds a rule tagged tag in chain.
func (f firewall) hasTagged(chain, tag string) bool {
	c, err := nftables.New()
	if err != nil {
		return false
	}
	rules, err := c.GetRules(f.tbl(), &nftables.Chain{Name: chain, Table: f.tbl()})
	if err != nil {
		return false
	}
	for _, r := range rules {
		if s, _ := userdata.GetString(r.UserData, userdata.TypeComment); s == tag {
			return true
		}
	}
	return false
}
