package network

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/userdata"
)

// firewall is this instance's inet table. Callers hold the instance lock, so
// two processes of one instance never interleave their batches; every batch
// is one netlink transaction, applied whole or not at all.
type firewall struct{ table string }

func (f firewall) tbl() *nftables.Table {
	return &nftables.Table{Name: f.table, Family: nftables.TableFamilyINet}
}

// queueEnsure adds to c the table, its chains and the fixed rules of the
// base chains. The base chains are flushed and refilled in the same
// transaction, so running it any number of times, from any process, leaves
// exactly one copy of each fixed rule and never a moment without them.
func (f firewall) queueEnsure(c *nftables.Conn) {
	t := c.AddTable(f.tbl())
	base, regular := chains(t)
	for _, ch := range regular {
		c.AddChain(ch)
	}
	byName := map[string]*nftables.Chain{}
	for _, ch := range base {
		byName[ch.Name] = c.AddChain(ch)
		c.FlushChain(ch)
	}
	for _, r := range baseRules() {
		f.queueRule(c, byName[r.chain], r)
	}
}

func (f firewall) queueRule(c *nftables.Conn, ch *nftables.Chain, r ruleSpec) {
	if ch == nil {
		ch = &nftables.Chain{Name: r.chain, Table: f.tbl()}
	}
	rule := &nftables.Rule{Table: f.tbl(), Chain: ch, Exprs: r.exprs}
	if r.tag != "" {
		rule.UserData = userdata.AppendString(nil, userdata.TypeComment, r.tag)
	}
	c.AddRule(rule)
}

func (f firewall) apply(rules []ruleSpec) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	f.queueEnsure(c)
	for _, r := range rules {
		f.queueRule(c, nil, r)
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables table %s: %w", f.table, err)
	}
	return nil
}

func (f firewall) addNetwork(ctx context.Context, n Network) error {
	return f.apply(networkRules(n))
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

// removeTagged deletes every rule of the regular chains whose comment is
// tag, or starts with tag when tag ends in a space.
func (f firewall) removeTagged(ctx context.Context, tag string) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	ok, err := f.exists(c)
	if err != nil || !ok {
		return err
	}
	n := 0
	for _, name := range []string{chainNetsForward, chainNetsPost, chainPorts} {
		rules, err := c.GetRules(f.tbl(), &nftables.Chain{Name: name, Table: f.tbl()})
		if err != nil {
			continue // chain missing: nothing of ours in it
		}
		for _, r := range rules {
			s, _ := userdata.GetString(r.UserData, userdata.TypeComment)
			if s == tag || (strings.HasSuffix(tag, " ") && strings.HasPrefix(s, tag)) {
				if err := c.DelRule(r); err != nil {
					return fmt.Errorf("nftables: %w", err)
				}
				n++
			}
		}
	}
	if n == 0 {
		return nil
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables table %s: delete rules: %w", f.table, err)
	}
	return nil
}

func (f firewall) deleteTable(ctx context.Context) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	ok, err := f.exists(c)
	if err != nil || !ok {
		return err
	}
	c.DelTable(f.tbl())
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: delete table %s: %w", f.table, err)
	}
	return nil
}

// publishedPort is a port some Berth table on the host already publishes.
type publishedPort struct {
	table       string
	containerID string
	port        Port
}

// allPublished reads the port rules of every Berth table on the host, not
// just ours, so two instances never publish the same host port.
func allPublished(ctx context.Context) ([]publishedPort, error) {
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
		for _, r := range rules {
			s, _ := userdata.GetString(r.UserData, userdata.TypeComment)
			if id, p, ok := parsePortTag(s); ok {
				out = append(out, publishedPort{table: t.Name, containerID: id, port: p})
			}
		}
	}
	return out, nil
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
