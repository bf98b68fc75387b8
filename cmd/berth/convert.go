package main

import (
	"fmt"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"

	"github.com/berth-dev/berth/compose"
	"github.com/berth-dev/berth/compose/files"
	"github.com/berth-dev/berth/compose/kube"
)

var _ = register(newConvertCommand)

// convertOptions are the flags of berth convert.
type convertOptions struct {
	output  string
	format  string
	publish string
	strict  bool
	kube    kube.Options
}

func newConvertCommand(pf *projectFlags) *cobra.Command {
	o := &convertOptions{}
	cmd := &cobra.Command{
		Use:   "convert [OPTIONS] [SERVICE...]",
		Short: "Write Kubernetes manifests for the project",
		Long: `Write Kubernetes manifests for the project: a Deployment, StatefulSet or Job
per service, Services for its DNS name and published ports, a NetworkPolicy
per network, PersistentVolumeClaims, Secrets and ConfigMaps. Keys with no
faithful equivalent are named in a warning; --strict makes them errors.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runConvert(cmd, pf, o, args)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&o.output, "output", "o", "", "write one file per object into this directory (default: standard output)")
	fl.StringVar(&o.format, "format", "yaml", "output format: yaml or json")
	fl.StringVarP(&o.kube.Namespace, "namespace", "n", "", "namespace of every object (default: kubectl's current namespace)")
	fl.StringVar(&o.publish, "publish", "loadbalancer", "Service type of published ports: loadbalancer or nodeport")
	fl.BoolVar(&o.kube.HostPath, "hostpath", false, "turn bind mounts into hostPath volumes (the node's paths) instead of refusing them")
	fl.StringVar(&o.kube.VolumeSize, "volume-size", "1Gi", "storage request of a named volume without x-berth.size")
	fl.StringVar(&o.kube.WaitImage, "wait-image", "busybox:1.37", "image of the init containers that wait for a dependency's Service")
	fl.StringVar(&o.kube.KubectlImage, "kubectl-image", "registry.k8s.io/kubectl:v1.37.2", "image of the init containers that wait for a Job")
	fl.StringVar(&o.kube.ClusterDomain, "cluster-domain", "cluster.local", "the cluster's DNS domain")
	fl.BoolVar(&o.strict, "strict", false, "fail when a key has no faithful equivalent, instead of warning")
	return cmd
}

func runConvert(cmd *cobra.Command, pf *projectFlags, o *convertOptions, args []string) error {
	format, err := kube.ParseFormat(o.format)
	if err != nil {
		return err
	}
	switch strings.ToLower(o.publish) {
	case "loadbalancer":
		o.kube.PublishType = corev1.ServiceTypeLoadBalancer
	case "nodeport":
		o.kube.PublishType = corev1.ServiceTypeNodePort
	default:
		return fmt.Errorf("--publish %q: must be loadbalancer or nodeport: %w", o.publish, errdefs.ErrInvalidArgument)
	}
	// Not loadProject: its warnings are about what berth up runs, and the
	// conversion reads keys that up does not support yet.
	p, _, err := files.Load(cmd.Context(), pf.loadOptions(), compose.Unsupported)
	if err != nil {
		return err
	}
	if len(args) > 0 {
		if p, err = p.WithSelectedServices(args); err != nil {
			return fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
		}
	}
	res, err := kube.Convert(p, o.kube)
	if err != nil {
		return err
	}
	level := "WARN"
	if o.strict {
		level = "ERROR"
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(cmd.ErrOrStderr(), level, w)
	}
	if o.strict && len(res.Warnings) > 0 {
		return fmt.Errorf("--strict: %d warnings (keys with no faithful equivalent in Kubernetes); nothing written: %w", len(res.Warnings), errdefs.ErrInvalidArgument)
	}
	if o.output != "" {
		return kube.WriteDir(o.output, res.Objects, format)
	}
	b, err := kube.Marshal(res.Objects, format)
	if err != nil {
		return err
	}
	_, err = cmd.OutOrStdout().Write(b)
	return err
}
