package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/containerd/errdefs"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/cmd/internal/table"
	"github.com/berth-dev/berth/compose"
	"github.com/berth-dev/berth/engine/image"
)

var _ = register(newImageCommand)

func newImageCommand(pf *projectFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "image", Short: "Manage images"}
	cmd.AddCommand(
		newImageImportCommand(), newImageLsCommand(), newImageRmCommand(),
		newImageTagCommand(), newImagePruneCommand(), newImageInspectCommand(),
		newImageHistoryCommand(), newImagePullCommand(pf), newImagePushCommand(pf),
		newImageSaveCommand(), newImageLoadCommand(), newImageBuildCommand(pf),
	)
	return cmd
}

func newImageImportCommand() *cobra.Command {
	var changes []string
	cmd := &cobra.Command{
		Use:   "import [--change INSTRUCTION]... FILE REF",
		Short: "Import a root filesystem tarball, docker save or OCI archive as REF",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine(cmd.Context())
			if err != nil {
				return err
			}
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			img, err := e.Images.Import(cmd.Context(), f, args[1], changes...)
			if err != nil {
				return fmt.Errorf("import %s: %w", args[0], err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), img.ID)
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&changes, "change", "c", nil, "apply a Dockerfile instruction to the image (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR)")
	return cmd
}

// imageRow is one line of image ls, and its --format json object (Docker's
// field names).
type imageRow struct {
	ID           string `json:"ID"`
	Repository   string `json:"Repository"`
	Tag          string `json:"Tag"`
	Digest       string `json:"Digest"`
	CreatedAt    string `json:"CreatedAt"`
	CreatedSince string `json:"CreatedSince"`
	Size         string `json:"Size"`
}

func newImageLsCommand() *cobra.Command {
	var digests, quiet, noTrunc bool
	var filters []string
	var format string
	cmd := &cobra.Command{
		Use:     "ls [REPOSITORY[:TAG]]",
		Aliases: []string{"list"},
		Short:   "List images",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			match, err := imageFilter(filters, args)
			if err != nil {
				return err
			}
			e, err := openEngine(cmd.Context())
			if err != nil {
				return err
			}
			imgs, err := e.Images.List(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			var rows []imageRow
			seen := map[string]bool{}
			for _, i := range imgs {
				if !match(i) {
					continue
				}
				id := i.ID
				if !noTrunc {
					id = shortImageID(id)
				}
				if quiet {
					if !seen[id] {
						fmt.Fprintln(out, id)
					}
					seen[id] = true
					continue
				}
				repo, tag := "<none>", "<none>"
				if i.Ref != "" {
					repo, tag = image.Split(i.Ref)
				}
				rows = append(rows, imageRow{
					ID: id, Repository: repo, Tag: tag, Digest: repoDigest(i),
					CreatedAt: i.Created.Format("2006-01-02 15:04:05 -0700 MST"), CreatedSince: sinceCreated(i.Created),
					Size: units.HumanSize(float64(i.Size)),
				})
			}
			if quiet {
				return nil
			}
			if format != "" && format != "table" {
				return table.Rows(out, format, "", rows)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 3, ' ', 0)
			if digests {
				fmt.Fprintln(tw, "REPOSITORY\tTAG\tDIGEST\tIMAGE ID\tCREATED\tSIZE")
			} else {
				fmt.Fprintln(tw, "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE")
			}
			for _, r := range rows {
				if digests {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Repository, r.Tag, r.Digest, r.ID, r.CreatedSince, r.Size)
				} else {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Repository, r.Tag, r.ID, r.CreatedSince, r.Size)
				}
			}
			return tw.Flush()
		},
	}
	f := cmd.Flags()
	f.BoolVar(&digests, "digests", false, "show digests")
	f.BoolVarP(&quiet, "quiet", "q", false, "only show image IDs")
	f.BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	f.StringArrayVarP(&filters, "filter", "f", nil, "filter output: dangling=true|false, reference=PATTERN")
	f.StringVar(&format, "format", "", "output format: json, a Go template such as '{{.Repository}}:{{.Tag}}', or a table by default")
	return cmd
}

// repoDigest is the registry digest image ls --digests shows: the one of
// the listed repository, else <none>.
func repoDigest(i image.Image) string {
	repo, err := image.Repository(i.Ref)
	if err != nil {
		return "<none>"
	}
	for _, d := range i.RepoDigests {
		if r, dg, ok := strings.Cut(d, "@"); ok && r == repo {
			return dg
		}
	}
	return "<none>"
}

// imageFilter builds the predicate of image ls's --filter flags and its
// optional REPOSITORY[:TAG] argument, as Docker matches them.
func imageFilter(filters, args []string) (func(image.Image) bool, error) {
	var preds []func(image.Image) bool
	refMatch := func(pattern string) func(image.Image) bool {
		return func(i image.Image) bool {
			if i.Ref == "" {
				return false
			}
			repo, tag := image.Split(i.Ref)
			for _, s := range []string{repo, repo + ":" + tag} {
				if ok, _ := path.Match(pattern, s); ok {
					return true
				}
			}
			return false
		}
	}
	for _, a := range args {
		preds = append(preds, refMatch(a))
	}
	for _, f := range filters {
		k, v, ok := strings.Cut(f, "=")
		switch {
		case ok && k == "dangling" && (v == "true" || v == "false"):
			want := v == "true"
			preds = append(preds, func(i image.Image) bool { return (i.Ref == "") == want })
		case ok && k == "reference":
			if _, err := path.Match(v, ""); err != nil {
				return nil, fmt.Errorf("--filter %s: bad pattern: %w", f, errdefs.ErrInvalidArgument)
			}
			preds = append(preds, refMatch(v))
		default:
			return nil, fmt.Errorf("--filter %q: want dangling=true|false or reference=PATTERN: %w", f, errdefs.ErrInvalidArgument)
		}
	}
	return func(i image.Image) bool {
		for _, p := range preds {
			if !p(i) {
				return false
			}
		}
		return true
	}, nil
}

func newImageRmCommand() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm IMAGE...",
		Aliases: []string{"remove", "rmi"},
		Short:   "Remove images",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine(cmd.Context())
			if err != nil {
				return err
			}
			var errs []error
			for _, ref := range args {
				out, err := e.RemoveImage(cmd.Context(), ref, force)
				printRemoved(cmd.OutOrStdout(), out)
				if err != nil {
					errs = append(errs, err)
				}
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "remove a reference containers use (the image stays until they are gone), or every tag of an image ID")
	return cmd
}

func printRemoved(w io.Writer, r image.Removed) {
	for _, u := range r.Untagged {
		fmt.Fprintln(w, "Untagged:", u)
	}
	for _, d := range r.Deleted {
		fmt.Fprintln(w, "Deleted:", d)
	}
}

func newImageTagCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE_IMAGE TARGET_IMAGE",
		Short: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine(cmd.Context())
			if err != nil {
				return err
			}
			return e.Images.Tag(cmd.Context(), args[0], args[1])
		},
	}
}

func newImagePruneCommand() *cobra.Command {
	var all, force bool
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Remove unused images, and blobs and layers no image needs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_ = force // Berth never asks: -f is there for docker's muscle memory
			e, err := openEngine(cmd.Context())
			if err != nil {
				return err
			}
			out, layers, err := e.PruneImages(cmd.Context(), all)
			printPrunedImages(cmd.OutOrStdout(), out, layers)
			return err
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "remove all images no container uses, not just untagged ones")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	return cmd
}

// printPrunedImages is docker image prune's report, with Berth's count of
// blobs and unpacked layers.
func printPrunedImages(w io.Writer, out image.Removed, layers int) {
	if len(out.Untagged)+len(out.Deleted) > 0 {
		fmt.Fprintln(w, "Deleted Images:")
		for _, u := range out.Untagged {
			fmt.Fprintln(w, "untagged:", u)
		}
		for _, d := range out.Deleted {
			fmt.Fprintln(w, "deleted:", d)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "Total reclaimed space: %s (%d blobs, %d unpacked layers)\n", units.HumanSize(float64(out.Bytes)), out.Blobs, layers)
}

func shortImageID(id string) string {
	if len(id) > 19 {
		return id[7:19]
	}
	return id
}

// sinceCreated is Docker's "CREATED" column, "N/A" for an unknown time.
func sinceCreated(t time.Time) string {
	if t.IsZero() || t.Unix() <= 0 {
		return "N/A"
	}
	return compose.HumanDuration(time.Since(t)) + " ago"
}
