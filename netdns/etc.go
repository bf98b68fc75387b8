package netdns

import (
	"bufio"
	"bytes"
	"net/netip"
	"slices"
	"strings"
)

// Resolver is a container's resolver configuration as the service sets it:
// dns, dns_search and dns_opt. Empty fields take the host's.
type Resolver struct {
	Nameservers []netip.Addr
	Search      []string
	Options     []string
}

// ResolvConf returns a container's /etc/resolv.conf. With embedded set, its
// only nameserver is ServerAddr (which forwards to r.Nameservers or the
// host's) and, as Docker does, ndots is 0 unless an option says otherwise;
// otherwise (host or no network) the nameservers are r's or the host's.
// Search and options are r's when set, else the host's.
func ResolvConf(host []byte, r Resolver, embedded bool) []byte {
	var hostNS []string
	var hostSearch, hostOpts []string
	sc := bufio.NewScanner(bytes.NewReader(host))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || strings.HasPrefix(fields[0], "#") || strings.HasPrefix(fields[0], ";") {
			continue
		}
		switch fields[0] {
		case "nameserver":
			hostNS = append(hostNS, fields[1])
		case "search", "domain":
			// The last of search and domain wins, as in the resolver.
			hostSearch = fields[1:]
		case "options":
			hostOpts = append(hostOpts, fields[1:]...)
		}
	}
	var b bytes.Buffer
	switch {
	case embedded:
		b.WriteString("nameserver " + ServerAddr.String() + "\n")
	case len(r.Nameservers) > 0:
		for _, ns := range r.Nameservers {
			b.WriteString("nameserver " + ns.String() + "\n")
		}
	default:
		for _, ns := range hostNS {
			b.WriteString("nameserver " + ns + "\n")
		}
	}
	search := hostSearch
	if len(r.Search) > 0 {
		search = r.Search
	}
	if len(search) > 0 && !(len(search) == 1 && search[0] == ".") {
		b.WriteString("search " + strings.Join(search, " ") + "\n")
	}
	opts := mergeOptions(hostOpts, r.Options)
	if embedded && !slices.ContainsFunc(opts, func(o string) bool { return strings.HasPrefix(o, "ndots:") }) {
		opts = append(opts, "ndots:0")
	}
	if len(opts) > 0 {
		b.WriteString("options " + strings.Join(opts, " ") + "\n")
	}
	return b.Bytes()
}

// mergeOptions returns base with each option of over replacing the one of
// the same name ("ndots:2" replaces "ndots:1").
func mergeOptions(base, over []string) []string {
	name := func(o string) string { n, _, _ := strings.Cut(o, ":"); return n }
	var out []string
	for _, o := range base {
		if !slices.ContainsFunc(over, func(x string) bool { return name(x) == name(o) }) && !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	for _, o := range over {
		if !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	return out
}

// HostsEntry is one line of /etc/hosts.
type HostsEntry struct {
	IP    netip.Addr
	Names []string
}

// Hosts returns a container's /etc/hosts: the loopback names, then each of
// the container's own addresses with its names, then the extra entries
// (extra_hosts), as Docker writes it.
func Hosts(own []netip.Addr, names []string, extra []HostsEntry) []byte {
	b := []byte("127.0.0.1\tlocalhost\n" +
		"::1\tlocalhost ip6-localhost ip6-loopback\n" +
		"fe00::0\tip6-localnet\n" +
		"ff00::0\tip6-mcastprefix\n" +
		"ff02::1\tip6-allnodes\n" +
		"ff02::2\tip6-allrouters\n")
	for _, ip := range own {
		b = AppendHosts(b, HostsEntry{IP: ip, Names: names})
	}
	return AppendHosts(b, extra...)
}

// AppendHosts appends a hosts line per entry to b; names that could not be
// read back (empty, with blanks or a comment sign) are left out.
func AppendHosts(b []byte, entries ...HostsEntry) []byte {
	for _, e := range entries {
		var ok []string
		for _, n := range e.Names {
			n = strings.TrimSpace(n)
			if n != "" && !strings.ContainsAny(n, " \t\n#") && !slices.Contains(ok, n) {
				ok = append(ok, n)
			}
		}
		if e.IP.IsValid() && len(ok) > 0 {
			b = append(b, e.IP.String()+"\t"+strings.Join(ok, " ")+"\n"...)
		}
	}
	return b
}
