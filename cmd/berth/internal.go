package main

import (
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/engine/runtime"
	"github.com/berth-dev/berth/netdns"
)

var (
	_ = register(newShimCommand)
	_ = register(newDNSCommand)
)

// newShimCommand is the per-container monitor the engine starts; users do
// not call it.
func newShimCommand(*projectFlags) *cobra.Command {
	return &cobra.Command{
		Use:    "shim CONFIG",
		Short:  "Supervise one container (internal)",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := runtime.ReadConfig(args[0])
			if err != nil {
				return err
			}
			e, err := openEngine(cmd.Context())
			if err != nil {
				return err
			}
			return e.RunShim(cmd.Context(), cfg)
		},
	}
}

// newDNSCommand is the shared DNS server the engine starts on demand.
func newDNSCommand(*projectFlags) *cobra.Command {
	var (
		dir     string
		readyFD int
	)
	cmd := &cobra.Command{
		Use:    "dns",
		Short:  "Serve DNS for Berth networks (internal)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if dir == "" {
				dir = engine.OptionsFromEnv().Run + "/dns"
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, nil))
			cfg := netdns.Config{Dir: dir, Logger: log}
			if readyFD > 0 {
				// The spawner waits on this pipe for the server to serve.
				cfg.Ready = os.NewFile(uintptr(readyFD), "ready")
			}
			// BERTH_DNS_UPSTREAMS ("ip:port,..." or "none") overrides the
			// host's resolv.conf; tests set "none".
			if v := os.Getenv("BERTH_DNS_UPSTREAMS"); v != "" {
				cfg.Upstreams = strings.Split(v, ",")
			}
			// The server lives as long as the instance has running
			// containers: it also puts the bridges back into firewalld's
			// trusted zone when firewalld reloads or starts.
			if e, err := openEngine(cmd.Context()); err != nil {
				log.Warn("firewalld watch", "err", err)
			} else {
				go e.Networks.WatchFirewalld(cmd.Context(), log)
			}
			return netdns.Serve(cmd.Context(), cfg)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "records directory")
	cmd.Flags().IntVar(&readyFD, "ready-fd", 0, "descriptor to report readiness on")
	return cmd
}
