package engine

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
)

// ParsePool reads an address pool as BERTH_NETWORK_POOL spells it:
// comma-separated IPv4 prefixes, optionally followed by "/size" for the
// prefix length of the subnets handed out ("10.89.0.0/16,10.90.0.0/16/26").
// Empty means the default pool.
func ParsePool(s string) (pool []netip.Prefix, size int, err error) {
	if strings.TrimSpace(s) == "" {
		return nil, 0, nil
	}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		base, sub := part, ""
		if strings.Count(part, "/") == 2 {
			i := strings.LastIndexByte(part, '/')
			base, sub = part[:i], part[i+1:]
		}
		p, perr := netip.ParsePrefix(base)
		if perr != nil || !p.Addr().Is4() {
			return nil, 0, fmt.Errorf("BERTH_NETWORK_POOL: %q is not an IPv4 prefix: %w", part, errdefs.ErrInvalidArgument)
		}
		if sub != "" {
			n, serr := strconv.Atoi(sub)
			if serr != nil || n < p.Bits() || n > 30 || (size != 0 && n != size) {
				return nil, 0, fmt.Errorf("BERTH_NETWORK_POOL: subnet size %q in %q must be one length between the prefix's and 30: %w", sub, part, errdefs.ErrInvalidArgument)
			}
			size = n
		}
		pool = append(pool, p.Masked())
	}
	return pool, size, nil
}
