package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/containerd/errdefs"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/compose"
	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/engine/image"
)

var _ = register(newPsCommand)

// psEntry is one row of ps --format json, with docker compose's field names.
type psEntry struct {
	ID         string `json:"ID"`
	Name       string `json:"Name"`
	Image      string `json:"Image"`
	Command    string `json:"Command"`
	Project    string `json:"Project"`
	Service    string `json:"Service"`
	Created    int64  `json:"CreatedAt"`
	State      string `json:"State"`
	Status     string `json:"Status"`
	ExitCode   int    `json:"ExitCode"`
	Publishers []struct {
		URL           string `json:"URL"`
		TargetPort    uint16 `json:"TargetPort"`
		PublishedPort uint16 `json:"PublishedPort"`
		Protocol      string `json:"Protocol"`
	} `json:"Publishers"`
	Ports string `json:"Ports"`
}

func newPsCommand(pf *projectFlags) *cobra.Command {
	var (
		all, quiet bool
		format     string
	)
	cmd := &cobra.Command{
		Use:   "ps [SERVICE...]",
		Short: "List containers",
		RunE: func(cmd *cobra.Command, args []string) error {
			p, _, err := loadProjectOrName(cmd, pf)
			if err != nil {
				return err
			}
			e, err := openEngine(cmd.Context())
			if err != nil {
				return err
			}
			infos, err := e.ListContainers(cmd.Context())
			if err != nil {
				return err
			}
			var rows []psEntry
			for _, i := range infos {
				l := i.Config.Labels
				if l[compose.LabelProject] != p.Name || (len(args) > 0 && !slices.Contains(args, l[compose.LabelService])) {
					continue
				}
				if !all && !i.Running() {
					continue
				}
				rows = append(rows, toPsEntry(i, p.Name))
			}
			slices.SortFunc(rows, func(a, b psEntry) int { return strings.Compare(a.Name, b.Name) })
			out := cmd.OutOrStdout()
			switch {
			case quiet:
				for _, r := range rows {
					fmt.Fprintln(out, r.ID)
				}
			case format == "json":
				enc := json.NewEncoder(out)
				for _, r := range rows {
					if err := enc.Encode(r); err != nil {
						return err
					}
				}
			case format == "table" || format == "":
				tw := tabwriter.NewWriter(out, 0, 4, 3, ' ', 0)
				fmt.Fprintln(tw, "NAME\tIMAGE\tCOMMAND\tSERVICE\tCREATED\tSTATUS\tPORTS")
				for _, r := range rows {
					fmt.Fprintf(tw, "%s\t%s\t%q\t%s\t%s\t%s\t%s\n", r.Name, r.Image, truncate(r.Command, 20), r.Service,
						ago(time.Unix(r.Created, 0)), r.Status, r.Ports)
				}
				return tw.Flush()
			default:
				return fmt.Errorf("ps --format %q: use table or json: %w", format, errdefs.ErrInvalidArgument)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "show all stopped containers")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only display IDs")
	cmd.Flags().StringVar(&format, "format", "table", "format the output: table or json")
	return cmd
}

func toPsEntry(i engine.Info, project string) psEntry {
	l := i.Config.Labels
	r := psEntry{
		ID: i.ID, Name: i.Name, Image: image.FamiliarName(i.Config.Image),
		Command: strings.Join(append(append([]string(nil), i.Config.Entrypoint...), i.Config.Cmd...), " "),
		Project: project, Service: l[compose.LabelService], Created: i.Created.Unix(),
		State: i.Status.State, ExitCode: i.Status.ExitCode,
	}
	switch i.Status.State {
	case "running":
		r.Status = "Up " + duration(time.Since(i.Status.StartedAt))
	case "restarting":
		r.Status = fmt.Sprintf("Restarting (%d) %s ago", i.Status.ExitCode, duration(time.Since(i.Status.FinishedAt)))
	case "exited":
		r.Status = fmt.Sprintf("Exited (%d) %s ago", i.Status.ExitCode, duration(time.Since(i.Status.FinishedAt)))
	default:
		r.Status = "Created"
	}
	var ports []string
	for _, p := range i.Config.Ports {
		host := p.HostIP
		if host == "" {
			host = "0.0.0.0"
		}
		proto := p.Protocol
		if proto == "" {
			proto = "tcp"
		}
		r.Publishers = append(r.Publishers, struct {
			URL           string `json:"URL"`
			TargetPort    uint16 `json:"TargetPort"`
			PublishedPort uint16 `json:"PublishedPort"`
			Protocol      string `json:"Protocol"`
		}{host, p.ContainerPort, p.HostPort, proto})
		ports = append(ports, fmt.Sprintf("%s:%d->%d/%s", host, p.HostPort, p.ContainerPort, proto))
	}
	r.Ports = strings.Join(ports, ", ")
	return r
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

func ago(t time.Time) string { return duration(time.Since(t)) + " ago" }

// duration prints a rough, human duration as docker does.
func duration(d time.Duration) string {
	switch {
	case d < time.Second:
		return "Less than a second"
	case d < 2*time.Second:
		return "1 second"
	case d < time.Minute:
		return fmt.Sprintf("%d seconds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d minutes", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d hours", int(d.Hours()))
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}
