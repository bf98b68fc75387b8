// Package table prints the rows of berth's list verbs as docker does: -q,
// --format json, Go templates and the verb's default table. It is shared
// by berth and the lean helper, which serves ps (docs/performance.md).
package table

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"strings"
	"text/tabwriter"
	"text/template"

	"github.com/containerd/errdefs"
)

// headers name table columns after the fields their templates print, as
// docker's formatters do ({{.RunningFor}} is CREATED).
var headers = map[string]string{
	"ID": "CONTAINER ID", "Name": "NAME", "Names": "NAMES", "Image": "IMAGE", "Command": "COMMAND",
	"Project": "PROJECT", "Service": "SERVICE", "RunningFor": "CREATED", "CreatedAt": "CREATED AT",
	"State": "STATE", "Status": "STATUS", "Health": "HEALTH", "ExitCode": "EXIT CODE", "Labels": "LABELS",
	"LocalVolumes": "LOCAL VOLUMES", "Mounts": "MOUNTS", "Networks": "NETWORKS", "Ports": "PORTS", "Size": "SIZE",
	"ConfigFiles": "CONFIG FILES", "Repository": "REPOSITORY", "Tag": "TAG", "Driver": "DRIVER",
	"Mountpoint": "MOUNTPOINT", "Scope": "SCOPE", "ContainerName": "CONTAINER", "Platform": "PLATFORM",
	"Created": "CREATED", "ShortID": "IMAGE ID", "HumanSize": "SIZE",
	// stats
	"Container": "CONTAINER", "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %",
	"NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS",
}

// Funcs are the functions --format templates may call, as docker's.
var Funcs = template.FuncMap{
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"join":  strings.Join,
	"split": strings.Split,
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
	"title": func(s string) string {
		if s == "" {
			return s
		}
		return strings.ToUpper(s[:1]) + s[1:]
	},
	"truncate": func(s string, n int) string {
		if len(s) <= n {
			return s
		}
		return s[:n]
	},
	"pad": func(s string, l, r int) string { return strings.Repeat(" ", l) + s + strings.Repeat(" ", r) },
}

// List is how a list verb prints its rows, docker's -q, --format and
// default table in one place.
type List[T any] struct {
	Table string // the default table's template
	// Headers names the columns whose header differs from the common one
	// (docker network ls calls {{.ID}} NETWORK ID).
	Headers map[string]string
	ID      func(T) string // what -q prints of a row
}

// Write prints rows: their IDs alone when quiet, else as --format says
// (see Rows).
func (l List[T]) Write(w io.Writer, quiet bool, format string, rows []T) error {
	if quiet {
		for _, r := range rows {
			if _, err := fmt.Fprintln(w, l.ID(r)); err != nil {
				return err
			}
		}
		return nil
	}
	hs := headers
	if len(l.Headers) > 0 {
		hs = maps.Clone(headers)
		maps.Copy(hs, l.Headers)
	}
	return writeTable(w, format, l.Table, hs, rows)
}

// Rows prints rows as docker does for --format: "table" (the verb's
// default table), "json" (one object a line), "table TEMPLATE" (a table
// with headers) or a bare Go template (one line a row). The output goes
// out in one write: the table writer writes cell by cell, a system call
// each (300 of them for ps of 20 containers).
func Rows[T any](w io.Writer, format, table string, rows []T) error {
	return writeTable(w, format, table, headers, rows)
}

// writeTable is Rows with the headers hs.
func writeTable[T any](w io.Writer, format, table string, hs map[string]string, rows []T) error {
	bw := bufio.NewWriter(w)
	err := formatRows(bw, format, table, hs, rows)
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	return err
}

func formatRows[T any](w io.Writer, format, table string, headers map[string]string, rows []T) error {
	switch {
	case format == "json":
		enc := json.NewEncoder(w)
		for _, r := range rows {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	case format == "" || format == "table":
		format = "table " + table
	}
	tmpl, withHeader := strings.CutPrefix(format, "table ")
	tmpl = strings.ReplaceAll(tmpl, `\t`, "\t")
	t, err := template.New("format").Funcs(Funcs).Parse(tmpl)
	if err != nil {
		return fmt.Errorf("--format %q: %v: %w", format, err, errdefs.ErrInvalidArgument)
	}
	if !withHeader {
		for _, r := range rows {
			if err := t.Execute(w, r); err != nil {
				return fmt.Errorf("--format %q: %v: %w", format, err, errdefs.ErrInvalidArgument)
			}
			fmt.Fprintln(w)
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	if err := t.Execute(tw, headers); err != nil {
		return fmt.Errorf("--format %q: %v: %w", format, err, errdefs.ErrInvalidArgument)
	}
	fmt.Fprintln(tw)
	for _, r := range rows {
		if err := t.Execute(tw, r); err != nil {
			return fmt.Errorf("--format %q: %v: %w", format, err, errdefs.ErrInvalidArgument)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}
