package netdns

import (
	"bufio"
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// upstreamTimeout is per upstream, so a dead first resolver still leaves time
// to try the next one within the client's own patience.
const upstreamTimeout = 2 * time.Second

// forwarder is the last link of the chain: it relays the query to the
// upstream resolvers in order and answers SERVFAIL when none replies.
type forwarder struct {
	upstreams atomic.Pointer[[]string]
	log       *slog.Logger
}

func (f *forwarder) setUpstreams(l []string) { f.upstreams.Store(&l) }

func (f *forwarder) serveDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) {
	var ups []string
	if p := f.upstreams.Load(); p != nil {
		ups = *p
	}
	network := "udp"
	if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
		network = "tcp"
	}
	for _, up := range ups {
		if ctx.Err() != nil {
			break
		}
		resp, err := exchange(ctx, network, r, up)
		if err == nil && resp.Truncated && network == "udp" {
			// The client asked over UDP but the full answer may still fit
			// its buffer; reply() truncates again if it does not.
			if full, err := exchange(ctx, "tcp", r, up); err == nil {
				resp = full
			}
		}
		if err != nil {
			if f.log != nil {
				f.log.Debug("upstream failed", "upstream", up, "name", r.Question[0].Name, "err", err)
			}
			continue
		}
		resp.Id = r.Id
		reply(w, r, resp)
		return
	}
	m := new(dns.Msg).SetRcode(r, dns.RcodeServerFailure)
	m.RecursionAvailable = true
	reply(w, r, m)
}

func exchange(ctx context.Context, network string, r *dns.Msg, upstream string) (*dns.Msg, error) {
	c := &dns.Client{Net: network, Timeout: upstreamTimeout}
	ctx, cancel := context.WithTimeout(ctx, upstreamTimeout)
	defer cancel()
	resp, _, err := c.ExchangeContext(ctx, r, upstream)
	return resp, err
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
		ip, err := netip.ParseAddr(fields[1])
		if err != nil {
			continue
		}
		out = append(out, netip.AddrPortFrom(ip, 53).String())
	}
	return out
}
