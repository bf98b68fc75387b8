package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/template"
	"time"

	"github.com/containerd/errdefs"
	"github.com/docker/go-units"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/cmd/internal/table"
	"github.com/berth-dev/berth/engine/image"
)

func newImageInspectCommand() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect IMAGE...",
		Short: "Show images in detail, as JSON or through a Go template",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine(cmd.Context())
			if err != nil {
				return err
			}
			var objs []map[string]any
			for _, ref := range args {
				img, err := e.Images.Get(cmd.Context(), ref)
				if err != nil {
					return err
				}
				cfg, err := e.Images.ConfigFile(img)
				if err != nil {
					return err
				}
				objs = append(objs, inspectObject(img, cfg))
			}
			return writeInspect(cmd.OutOrStdout(), objs, format)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "json (the default), or a Go template such as '{{.Id}}'")
	return cmd
}

// inspectObject renders an image with docker image inspect's field names.
func inspectObject(img image.Image, cfg *v1.ConfigFile) map[string]any {
	tags := []string{}
	for _, t := range img.Tags {
		tags = append(tags, image.FamiliarName(t))
	}
	digests := []string{}
	for _, d := range img.RepoDigests {
		digests = append(digests, image.FamiliarName(d))
	}
	return map[string]any{
		"Id":           img.ID,
		"RepoTags":     tags,
		"RepoDigests":  digests,
		"Parent":       "",
		"Comment":      "",
		"Created":      cfg.Created.Format(time.RFC3339Nano),
		"Author":       cfg.Author,
		"Config":       cfg.Config,
		"Architecture": cfg.Architecture,
		"Variant":      cfg.Variant,
		"Os":           cfg.OS,
		"Size":         img.Size,
		"RootFS":       map[string]any{"Type": "layers", "Layers": img.DiffIDs},
		"Descriptor":   map[string]any{"mediaType": img.MediaType, "digest": img.Digest},
	}
}

// writeInspect prints objs as a JSON array, or each through a template.
func writeInspect(w io.Writer, objs []map[string]any, format string) error {
	if format == "" || format == "json" {
		b, err := json.MarshalIndent(objs, "", "    ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(w, string(b))
		return err
	}
	t, err := template.New("format").Funcs(table.Funcs).Parse(format)
	if err != nil {
		return fmt.Errorf("--format: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	for _, o := range objs {
		if err := t.Execute(w, o); err != nil {
			return fmt.Errorf("--format: %v: %w", err, errdefs.ErrInvalidArgument)
		}
		fmt.Fprintln(w)
	}
	return nil
}

// historyRow is one line of image history and its --format json object.
type historyRow struct {
	ID           string `json:"ID"`
	CreatedAt    string `json:"CreatedAt"`
	CreatedSince string `json:"CreatedSince"`
	CreatedBy    string `json:"CreatedBy"`
	Size         string `json:"Size"`
	Comment      string `json:"Comment"`
}

// historyList is docker history's output.
var historyList = table.List[historyRow]{
	Table:   "{{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}",
	Headers: map[string]string{"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedBy": "CREATED BY", "Comment": "COMMENT"},
	ID:      func(r historyRow) string { return r.ID },
}

func newImageHistoryCommand() *cobra.Command {
	var noTrunc, quiet bool
	var format string
	cmd := &cobra.Command{
		Use:   "history IMAGE",
		Short: "Show the history of an image",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine(cmd.Context())
			if err != nil {
				return err
			}
			img, err := e.Images.Get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			cfg, err := e.Images.ConfigFile(img)
			if err != nil {
				return err
			}
			return historyList.Write(cmd.OutOrStdout(), quiet, format, historyRows(img, cfg, noTrunc))
		},
	}
	f := cmd.Flags()
	f.BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	f.BoolVarP(&quiet, "quiet", "q", false, "only show image IDs")
	f.StringVar(&format, "format", "", "output format: json, a Go template, or a table by default")
	return cmd
}

// historyRows lists an image's history newest first, giving each entry
// that made a layer that layer's (stored) size; only the newest entry has
// the image's ID, the others are <missing>, as with pulled images in Docker.
func historyRows(img image.Image, cfg *v1.ConfigFile, noTrunc bool) []historyRow {
	var rows []historyRow
	layer := 0
	for _, h := range cfg.History {
		var size int64
		if !h.EmptyLayer && layer < len(img.Layers) {
			size = img.Layers[layer].Size
			layer++
		}
		by := h.CreatedBy
		if !noTrunc && len(by) > 45 {
			by = by[:44] + "…"
		}
		rows = append(rows, historyRow{
			ID: "<missing>", CreatedAt: h.Created.Format(time.RFC3339), CreatedSince: sinceCreated(h.Created.Time),
			CreatedBy: by, Size: units.HumanSize(float64(size)), Comment: h.Comment,
		})
	}
	for ; layer < len(img.Layers); layer++ { // layers no history entry speaks for
		rows = append(rows, historyRow{ID: "<missing>", CreatedSince: "N/A", Size: units.HumanSize(float64(img.Layers[layer].Size))})
	}
	for i, j := 0, len(rows)-1; i < j; i, j = i+1, j-1 {
		rows[i], rows[j] = rows[j], rows[i]
	}
	if len(rows) > 0 {
		rows[0].ID = img.ID
		if !noTrunc {
			rows[0].ID = shortImageID(img.ID)
		}
	}
	return rows
}
