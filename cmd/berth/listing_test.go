package main

import (
	"strings"
	"testing"

	"github.com/berth-dev/berth/compose"
)

// A list verb prints -q, its default table (with its own headers),
// "table TEMPLATE" under the same headers, json and a bare template.
func TestListingWrite(t *testing.T) {
	rows := []compose.NetworkSummary{
		{ID: "0123456789ab", Name: "p_default", Driver: "bridge", Scope: "local"},
		{ID: "ba9876543210", Name: "host", Driver: "host", Scope: "local"},
	}
	for _, tc := range []struct {
		quiet  bool
		format string
		want   string
	}{
		{true, "table", "0123456789ab\nba9876543210\n"},
		{false, "table", "NETWORK ID     NAME        DRIVER   SCOPE\n0123456789ab   p_default   bridge   local\nba9876543210   host        host     local\n"},
		{false, "table {{.ID}}\t{{.Driver}}", "NETWORK ID     DRIVER\n0123456789ab   bridge\nba9876543210   host\n"},
		{false, "{{.Name}}", "p_default\nhost\n"},
		{false, "json", `{"ID":"0123456789ab","Name":"p_default","Driver":"bridge","Scope":"local","IPv6":false,"Internal":false,"Labels":"","CreatedAt":""}` + "\n" +
			`{"ID":"ba9876543210","Name":"host","Driver":"host","Scope":"local","IPv6":false,"Internal":false,"Labels":"","CreatedAt":""}` + "\n"},
	} {
		var b strings.Builder
		if err := networkList.Write(&b, tc.quiet, tc.format, rows); err != nil || b.String() != tc.want {
			t.Errorf("-q=%v --format %q: %v\n%q\nwant\n%q", tc.quiet, tc.format, err, b.String(), tc.want)
		}
	}
}
