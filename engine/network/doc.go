// Package network gives Compose networks Linux bridges, containers network
// namespaces with veths, subnets from a pool, and one nftables table for
// masquerade, port publishing and isolation.
package network
