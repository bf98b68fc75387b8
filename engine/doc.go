// Package engine is Berth's embedded runtime core: a Go API over images,
// snapshots, volumes, networks and containers, with no knowledge of Compose.
package engine
