// Package netdns is Berth's embedded DNS server: it answers container names
// on the networks of the asking container and forwards everything else.
package netdns
