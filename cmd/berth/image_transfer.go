package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/compose"
	"github.com/berth-dev/berth/engine/image"
)

var (
	_ = register(newLoginCommand)
	_ = register(newLogoutCommand)
)

func newImagePullCommand(pf *projectFlags) *cobra.Command {
	var platform string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "pull IMAGE...",
		Short: "Download images from their registries",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine(cmd.Context())
			if err != nil {
				return err
			}
			ctx, done, err := withProgress(cmd, pf, quiet)
			if err != nil {
				return err
			}
			err = compose.PullImages(ctx, e, args, platform)
			done()
			if err != nil {
				return err
			}
			for _, ref := range args {
				if n, err := image.Normalize(ref); err == nil {
					fmt.Fprintln(cmd.OutOrStdout(), n)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&platform, "platform", "", "platform of a multi-platform image, e.g. linux/arm64")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "suppress progress output")
	return cmd
}

func newImagePushCommand(pf *projectFlags) *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:   "push IMAGE",
		Short: "Upload an image to its registry",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine(cmd.Context())
			if err != nil {
				return err
			}
			ctx, done, err := withProgress(cmd, pf, quiet)
			if err != nil {
				return err
			}
			digest, err := compose.PushImage(ctx, e, args[0])
			done()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: digest: %s\n", image.FamiliarName(args[0]), digest)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "suppress progress output")
	return cmd
}

func newImageSaveCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "save [-o FILE] IMAGE...",
		Short: "Write images to a tar archive (docker save and OCI layout in one)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine(cmd.Context())
			if err != nil {
				return err
			}
			var w io.Writer = cmd.OutOrStdout()
			if output == "" {
				if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
					return fmt.Errorf("refusing to write an archive to a terminal: use -o FILE or a redirect: %w", errdefs.ErrInvalidArgument)
				}
				return e.Images.Save(cmd.Context(), w, args)
			}
			// Written aside and renamed, so a failed save leaves no
			// archive that looks whole.
			f, err := os.CreateTemp(dirOf(output), ".berth-save-")
			if err != nil {
				return err
			}
			defer os.Remove(f.Name())
			bw := bufio.NewWriterSize(f, 1<<20)
			if err := e.Images.Save(cmd.Context(), bw, args); err != nil {
				f.Close()
				return err
			}
			if err := bw.Flush(); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			return os.Rename(f.Name(), output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to a file instead of standard output")
	return cmd
}

func dirOf(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i+1]
	}
	return "."
}

func newImageLoadCommand() *cobra.Command {
	var input string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "load [-i FILE]",
		Short: "Load images from a docker save or OCI archive",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine(cmd.Context())
			if err != nil {
				return err
			}
			var r io.Reader = cmd.InOrStdin()
			if input != "" {
				f, err := os.Open(input)
				if err != nil {
					return err
				}
				defer f.Close()
				r = f
			}
			imgs, err := e.Images.Load(cmd.Context(), r)
			if err != nil {
				return err
			}
			for _, i := range imgs {
				if quiet {
					continue
				}
				if i.Ref != "" {
					fmt.Fprintln(cmd.OutOrStdout(), "Loaded image:", image.FamiliarName(i.Ref))
				} else {
					fmt.Fprintln(cmd.OutOrStdout(), "Loaded image ID:", i.ID)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&input, "input", "i", "", "read from a file instead of standard input")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "suppress the load output")
	return cmd
}

func newLoginCommand(*projectFlags) *cobra.Command {
	var user, password string
	var stdin bool
	cmd := &cobra.Command{
		Use:   "login [SERVER]",
		Short: "Log in to a registry (Docker Hub by default)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := ""
			if len(args) == 1 {
				server = args[0]
			}
			if stdin {
				if password != "" {
					return fmt.Errorf("--password and --password-stdin are mutually exclusive: %w", errdefs.ErrInvalidArgument)
				}
				b, err := io.ReadAll(cmd.InOrStdin())
				if err != nil {
					return err
				}
				password = strings.TrimRight(string(b), "\r\n")
			} else if password != "" {
				fmt.Fprintln(cmd.ErrOrStderr(), "WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
			}
			e, err := openEngine(cmd.Context())
			if err != nil {
				return err
			}
			r, err := e.Registries()
			if err != nil {
				return err
			}
			if err := image.Login(cmd.Context(), r, server, user, password); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "Login Succeeded")
			return nil
		},
	}
	cmd.Flags().StringVarP(&user, "username", "u", "", "username")
	cmd.Flags().StringVarP(&password, "password", "p", "", "password (prefer --password-stdin)")
	cmd.Flags().BoolVar(&stdin, "password-stdin", false, "take the password from standard input")
	return cmd
}

func newLogoutCommand(*projectFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "logout [SERVER]",
		Short: "Log out from a registry (Docker Hub by default)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := ""
			if len(args) == 1 {
				server = args[0]
			}
			key, err := image.Logout(server)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "Removing login credentials for", key)
			return nil
		},
	}
}
