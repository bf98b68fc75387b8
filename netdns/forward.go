package netdns

import (
	"bufio"
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// upstreamTimeout is per upstream, so a dead first resolver still leaves time
// to try the next one within the client's own patience.
const upstreamTimeout = 2 * time.Second

// forwarder is the last link of the chain: it relays the query to the
// client's upstream resolvers in order and answers SERVFAIL when none
// replies, or when the client may not look outside its networks.
type forwarder struct {
	host atomic.Pointer[[]string] // the host's resolvers, re-read on reload
	log  *slog.Logger
}

func (f *forwarder) setHost(l []string) { f.host.Store(&l) }

func (f *forwarder) forward(ctx context.Context, c *client, r *dns.Msg, tcp bool) *dns.Msg {
	var ups []string
	if c != nil && c.forward {
		ups = c.upstreams
		if len(ups) == 0 {
			if p := f.host.Load(); p != nil {
				ups = *p
			}
		}
	}
	network := "udp"
	if tcp {
		network = "tcp"
	}
	for _, up := range ups {
		if ctx.Err() != nil {
			break
		}
		resp, err := exchange(ctx, network, r, up)
		if err == nil && resp.Truncated && !tcp {
			// The client asked over UDP but the full answer may still fit
			// its buffer; the caller truncates again if it does not.
			if full, err := exchange(ctx, "tcp", r, up); err == nil {
				resp = full
			}
		}
		if err != nil {
			f.log.Debug("upstream failed", "upstream", up, "name", r.Question[0].Name, "err", err)
			continue
		}
		resp.Id = r.Id
		return resp
	}
	m := new(dns.Msg).SetRcode(r, dns.RcodeServerFailure)
	m.RecursionAvailable = true
	return m
}

func exchange(ctx context.Context, network string, r *dns.Msg, upstream string) (*dns.Msg, error) {
	c := &dns.Client{Net: network, Timeout: upstreamTimeout}
	ctx, cancel := context.WithTimeout(ctx, upstreamTimeout)
	defer cancel()
	resp, _, err := c.ExchangeContext(ctx, r, upstream)
	return resp, err
}

// NoUpstreams as the only upstream turns forwarding off: names that are
// not in the records get SERVFAIL. Tests use it so that no query leaves the
// machine.
const NoUpstreams = "none"

// Where the host's resolvers are read from. systemd-resolved's stub
// (127.0.0.53) answers only on the host's loopback, so its own list of
// upstreams is used instead, as Docker does.
var (
	hostResolvConf     = "/etc/resolv.conf"
	resolvedResolvConf = "/run/systemd/resolve/resolv.conf"
)

// hostUpstreams returns the resolvers names are forwarded to: configured
// ones, or the host's without loopback addresses, which stand for a resolver
// on the host's loopback that a container could not reach through its own.
func hostUpstreams(configured []string, log *slog.Logger) []string {
	if len(configured) == 1 && configured[0] == NoUpstreams {
		return nil
	}
	if len(configured) > 0 {
		return configured
	}
	data, err := os.ReadFile(hostResolvConf)
	if err != nil {
		log.Warn("no upstream resolvers", "err", err)
	}
	all := parseResolvConf(data)
	out := withoutLoopback(all)
	if len(out) == 0 && len(all) > 0 {
		if data, err := os.ReadFile(resolvedResolvConf); err == nil {
			out = withoutLoopback(parseResolvConf(data))
		}
	}
	if len(out) == 0 && len(all) > 0 {
		log.Warn("the host's resolvers are all on loopback, which containers cannot reach; outside names will not resolve", "resolvers", strings.Join(all, ","))
	}
	return out
}

func withoutLoopback(l []string) []string {
	var out []string
	for _, u := range l {
		if ap, err := netip.ParseAddrPort(u); err == nil && ap.Addr().Unmap().IsLoopback() {
			continue
		}
		out = append(out, u)
	}
	return out
}

// parseResolvConf returns the nameservers of a resolv.conf as "ip:port".
func parseResolvConf(data []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || fields[0] != "nameserver" {
			continue
		}
		ip, err := netip.ParseAddr(strings.Split(fields[1], "%")[0])
		if err != nil {
			continue
		}
		out = append(out, netip.AddrPortFrom(ip, 53).String())
	}
	return out
}
