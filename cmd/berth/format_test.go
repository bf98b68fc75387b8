package main

import (
	"strings"
	"testing"

	"github.com/berth-dev/berth/compose"
)

// countingWriter counts the writes it gets.
type countingWriter struct {
	strings.Builder
	writes int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.writes++
	return c.Builder.Write(p)
}

// A table goes out in one write (the table writer alone writes each cell
// apart), aligned as before.
func TestWriteRowsWritesOnce(t *testing.T) {
	type row struct{ Name, Status string }
	rows := []row{{"web-1", "Up 2 seconds"}, {"database-1", "Exited (0)"}}
	var w countingWriter
	if err := writeRows(&w, "", "{{.Name}}\t{{.Status}}", rows); err != nil {
		t.Fatal(err)
	}
	want := "NAME         STATUS\nweb-1        Up 2 seconds\ndatabase-1   Exited (0)\n"
	if w.String() != want || w.writes != 1 {
		t.Fatalf("%d writes of:\n%q\nwant one of:\n%q", w.writes, w.String(), want)
	}
	w = countingWriter{}
	if err := writeRows(&w, "{{.Name", "", rows); err == nil || w.writes != 0 {
		t.Fatalf("bad template: err %v, %d writes", err, w.writes)
	}
}

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
		if err := networkList.write(&b, tc.quiet, tc.format, rows); err != nil || b.String() != tc.want {
			t.Errorf("-q=%v --format %q: %v\n%q\nwant\n%q", tc.quiet, tc.format, err, b.String(), tc.want)
		}
	}
	// The override is the verb's own: ps still calls {{.ID}} CONTAINER ID.
	var b strings.Builder
	if err := psList.write(&b, false, "table {{.ID}}", []compose.ContainerSummary{{ID: "c1"}}); err != nil || b.String() != "CONTAINER ID\nc1\n" {
		t.Errorf("ps table {{.ID}}: %v %q", err, b.String())
	}
}
