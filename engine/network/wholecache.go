package network

import (
	"sync"
	"time"
)

// wholeFor is how long a network found whole (or restored) by one
// connect is trusted by the next connects of the same manager. The starts
// of one up connect within a fraction of a second, so they check the
// bridge and the firewall once, not once each (an nftables dump, netlink
// reads and firewalld's answer, about 1 ms per start). Long enough for one
// command's starts; short enough that a command that lives on (a
// foreground up, watch) checks again before later starts, so a firewall
// reloaded meanwhile is still repaired. Every new command checks afresh.
const wholeFor = 2 * time.Second

// wholeCache remembers, per bridge, when a network was last seen whole.
// The key is the bridge, not the name: a network removed and created again
// by another command gets another bridge, and so a check of its own.
type wholeCache struct {
	mu   sync.Mutex
	seen map[string]time.Time
	ttl  time.Duration // wholeFor; a test sets another
}

func (c *wholeCache) fresh(bridge string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.seen[bridge]
	return ok && time.Since(at) < c.ttl
}

func (c *wholeCache) mark(bridge string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = map[string]time.Time{}
	}
	c.seen[bridge] = time.Now()
}

func (c *wholeCache) forget(bridge string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.seen, bridge)
}
