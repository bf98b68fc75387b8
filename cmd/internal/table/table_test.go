package table

import (
	"strings"
	"testing"
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
	if err := Rows(&w, "", "{{.Name}}\t{{.Status}}", rows); err != nil {
		t.Fatal(err)
	}
	want := "NAME         STATUS\nweb-1        Up 2 seconds\ndatabase-1   Exited (0)\n"
	if w.String() != want || w.writes != 1 {
		t.Fatalf("%d writes of:\n%q\nwant one of:\n%q", w.writes, w.String(), want)
	}
	w = countingWriter{}
	if err := Rows(&w, "{{.Name", "", rows); err == nil || w.writes != 0 {
		t.Fatalf("bad template: err %v, %d writes", err, w.writes)
	}
}
