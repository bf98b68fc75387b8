package engine

import (
	"context"
	"os"
	"os/exec"
	"syscall"

	"github.com/berth-dev/berth/netdns"
)

// syncDNS publishes the current endpoints of every network to the DNS
// server, starting it if needed and waiting until it serves them; with no
// networks left the server is stopped.
func (e *Engine) syncDNS(ctx context.Context) error {
	recs, err := e.dnsRecords(ctx)
	if err != nil {
		return err
	}
	if err := netdns.Ensure(ctx, e.dnsDir(), recs, e.spawnDNS); err != nil {
		return err
	}
	if len(recs.Networks) == 0 {
		return netdns.Stop(ctx, e.dnsDir())
	}
	return nil
}

// dropDNS publishes records after endpoints went away. It does not wait
// for the server: the names it drops belong to containers that are gone.
func (e *Engine) dropDNS(ctx context.Context) error {
	recs, err := e.dnsRecords(ctx)
	if err != nil {
		return err
	}
	return netdns.Update(ctx, e.dnsDir(), recs)
}

func (e *Engine) dnsRecords(ctx context.Context) (netdns.Records, error) {
	nets, err := e.Networks.List(ctx)
	if err != nil {
		return netdns.Records{}, err
	}
	var recs netdns.Records
	for _, n := range nets {
		eps, err := e.Networks.Endpoints(ctx, n.Name)
		if err != nil {
			return netdns.Records{}, err
		}
		rn := netdns.Network{Name: n.Name, Gateway: n.Gateway, Subnet: n.Subnet}
		for _, ep := range eps {
			rn.Endpoints = append(rn.Endpoints, netdns.Endpoint{ContainerID: ep.ContainerID, IP: ep.IP, Names: ep.Aliases})
		}
		recs.Networks = append(recs.Networks, rn)
	}
	return recs, nil
}

// spawnDNS starts "berth dns" in its own session so it outlives this CLI.
func (e *Engine) spawnDNS() error {
	if err := os.MkdirAll(e.dnsDir(), 0o700); err != nil {
		return err
	}
	logf, err := os.OpenFile(e.dnsDir()+"/dns.log", os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(e.opts.Exe, "dns", "--dir", e.dnsDir())
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	go cmd.Wait()
	return nil
}

// DNSDir is where the DNS server of this engine keeps its records.
func (e *Engine) DNSDir() string { return e.dnsDir() }
