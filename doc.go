// Package berth holds repository-wide checks; the code lives in cmd/berth,
// compose, engine and netdns.
package berth
