// Package e2e drives the built berth binary against real containers,
// bridges, nftables rules and the DNS server, and checks that nothing of
// Berth is left on the host afterwards.
package e2e
