package netdns

import (
	"bufio"
	"bytes"
	"net/netip"
	"slices"
	"strings"
)

// ResolvConf returns a container's /etc/resolv.conf: the Berth DNS server at
// nameserver, plus the search, domain and options lines of the host's file so
// that names resolve inside as they do outside. The host's own nameservers
// are dropped: the server forwards to them.
func ResolvConf(nameserver netip.Addr, hostResolv []byte) []byte {
	var b bytes.Buffer
	b.WriteString("nameserver " + nameserver.String() + "\n")
	sc := bufio.NewScanner(bytes.NewReader(hostResolv))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		switch fields[0] {
		case "search", "domain", "options":
			b.WriteString(strings.Join(fields, " ") + "\n")
		}
	}
	return b.Bytes()
}

// Hosts returns a container's /etc/hosts: the loopback names, then ip with
// hostname and the extra names. Without a valid ip (no network) only the
// loopback names are written, as Docker does.
func Hosts(ip netip.Addr, hostname string, extra ...string) []byte {
	var b bytes.Buffer
	b.WriteString("127.0.0.1\tlocalhost\n" +
		"::1\tlocalhost ip6-localhost ip6-loopback\n" +
		"fe00::0\tip6-localnet\n" +
		"ff00::0\tip6-mcastprefix\n" +
		"ff02::1\tip6-allnodes\n" +
		"ff02::2\tip6-allrouters\n")
	var names []string
	for _, n := range append([]string{hostname}, extra...) {
		n = strings.TrimSpace(n)
		if n != "" && !strings.ContainsAny(n, " \t\n#") && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	if ip.IsValid() && len(names) > 0 {
		b.WriteString(ip.String() + "\t" + strings.Join(names, " ") + "\n")
	}
	return b.Bytes()
}
