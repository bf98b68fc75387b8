package kube

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/api/validate/content"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	corev1 "k8s.io/api/core/v1"
)

// Labels every object carries; pods are selected by project and service,
// as Compose finds its containers.
const (
	LabelProject = "com.docker.compose.project"
	LabelService = "com.docker.compose.service"
	// LabelNetworkPrefix + network name marks the pods attached to a
	// Compose network; the network's NetworkPolicy selects by it.
	LabelNetworkPrefix = "network.berth.dev/"
)

// Object is one Kubernetes object of the output.
type Object interface {
	metav1.Object
	runtime.Object
}

// Options shape a conversion. The zero value converts with the defaults.
type Options struct {
	// Namespace is set on every object; empty leaves it to kubectl.
	Namespace string
	// PublishType is the Service type of published ports: LoadBalancer
	// (the default) or NodePort.
	PublishType corev1.ServiceType
	// HostPath turns bind mounts into hostPath volumes instead of an error.
	HostPath bool
	// VolumeSize is the storage request of a volume whose x-berth.size is
	// unset; default 1Gi.
	VolumeSize string
	// WaitImage runs the init containers that wait for a dependency's
	// Service to resolve (sh, sleep, nslookup); default busybox:1.37.
	WaitImage string
	// KubectlImage runs the init containers that wait for a Job to
	// complete; default registry.k8s.io/kubectl:v1.37.2.
	KubectlImage string
	// ClusterDomain is the cluster's DNS domain; default cluster.local.
	ClusterDomain string
}

// Warning says that a key was dropped or converted with a difference.
type Warning struct {
	Subject string // `service "web"`, `volume "data"`, ...
	Key     string // the Compose key, as written in the file
	Message string
}

func (w Warning) String() string {
	if w.Key == "" {
		return w.Subject + ": " + w.Message
	}
	return w.Subject + ": " + w.Key + ": " + w.Message
}

// Result is what a conversion produces: objects in the order to apply them,
// and the warnings, sorted.
type Result struct {
	Objects  []Object
	Warnings []Warning
}

// converter holds one conversion's state.
type converter struct {
	p        *types.Project
	o        Options
	size     resource.Quantity
	names    map[string]string // compose service -> Kubernetes name
	jobs     map[string]bool   // services that become Jobs
	objs     []Object
	warns    []Warning
	secrets  map[string]bool // Secret / ConfigMap objects already made
	claims   map[string]bool // PersistentVolumeClaims already made
	services map[string]string
	nets     map[string]bool // Compose networks some pod is on
	isolated []string        // services with network_mode: none
	waiter   bool            // some pod waits for a Job: needs the waiter's account
}

// Convert turns p into Kubernetes objects. It reads nothing but the files
// of secrets, configs and read-only bind mounts, which objects carry. Errors carry errdefs.ErrInvalidArgument
// and name the service and key.
func Convert(p *types.Project, o Options) (*Result, error) {
	c := &converter{p: p, o: o, names: map[string]string{}, jobs: map[string]bool{},
		secrets: map[string]bool{}, claims: map[string]bool{}, services: map[string]string{}, nets: map[string]bool{}}
	if err := c.defaults(); err != nil {
		return nil, err
	}
	if err := c.nameServices(); err != nil {
		return nil, err
	}
	for _, name := range slices.Sorted(maps.Keys(p.Services)) {
		if err := c.service(p.Services[name]); err != nil {
			return nil, err
		}
	}
	if err := c.networkPolicies(); err != nil {
		return nil, err
	}
	if c.waiter {
		c.waiterAccount()
	}
	sortObjects(c.objs)
	slices.SortFunc(c.warns, func(a, b Warning) int { return cmp.Compare(a.String(), b.String()) })
	c.warns = slices.Compact(c.warns)
	return &Result{Objects: c.objs, Warnings: c.warns}, nil
}

func (c *converter) defaults() error {
	o := &c.o
	switch o.PublishType {
	case "":
		o.PublishType = corev1.ServiceTypeLoadBalancer
	case corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeNodePort:
	default:
		return fmt.Errorf("publish type %q: must be LoadBalancer or NodePort: %w", o.PublishType, errdefs.ErrInvalidArgument)
	}
	if o.Namespace != "" {
		if errs := content.IsDNS1123Label(o.Namespace); len(errs) > 0 {
			return fmt.Errorf("namespace %q: %s: %w", o.Namespace, errs[0], errdefs.ErrInvalidArgument)
		}
	}
	o.VolumeSize = cmp.Or(o.VolumeSize, "1Gi")
	q, err := resource.ParseQuantity(o.VolumeSize)
	if err != nil || q.Sign() <= 0 {
		return fmt.Errorf("volume size %q: must be a positive quantity such as 1Gi: %w", o.VolumeSize, errdefs.ErrInvalidArgument)
	}
	c.size = q
	o.WaitImage = cmp.Or(o.WaitImage, "busybox:1.37")
	o.KubectlImage = cmp.Or(o.KubectlImage, "registry.k8s.io/kubectl:v1.37.2")
	o.ClusterDomain = strings.TrimSuffix(cmp.Or(o.ClusterDomain, "cluster.local"), ".")
	if errs := content.IsLabelValue(c.p.Name); len(errs) > 0 {
		return fmt.Errorf("project name %q: not a Kubernetes label value: %s: %w", c.p.Name, errs[0], errdefs.ErrInvalidArgument)
	}
	return nil
}

// nameServices gives every service its Kubernetes name (a DNS label, so
// that the Service named after it resolves as the Compose name does), and
// finds the services that become Jobs: those another service waits on with
// service_completed_successfully.
func (c *converter) nameServices() error {
	taken := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(c.p.Services)) {
		s := c.p.Services[name]
		kn, err := dnsName(name)
		if err != nil {
			return fmt.Errorf("service %q: %w", name, err)
		}
		if other, ok := taken[kn]; ok {
			return fmt.Errorf("services %q and %q both become %q in Kubernetes: rename one: %w", other, name, kn, errdefs.ErrInvalidArgument)
		}
		if kn != name {
			c.warn(svc(name), "", "%q is not a valid Kubernetes name: its objects and DNS name are %q; other services must use that name", name, kn)
		}
		taken[kn] = name
		c.names[name] = kn
		// Claimed before any alias, so that a service's own name always
		// wins over another's alias, whatever the order.
		if err := c.claimService(kn, svc(name)); err != nil {
			return err
		}
		for dep, d := range s.DependsOn {
			if d.Condition == types.ServiceConditionCompletedSuccessfully {
				if _, ok := c.p.Services[dep]; ok {
					c.jobs[dep] = true
				}
			}
		}
	}
	return nil
}

// dnsName turns a Compose name into an RFC 1035 label: lower case,
// '_' and '.' become '-', a leading digit gets a letter in front.
func dnsName(name string) (string, error) {
	n := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			return r
		case r >= 'A' && r <= 'Z':
			return r - 'A' + 'a'
		}
		return '-'
	}, name)
	n = strings.Trim(n, "-")
	if n != "" && n[0] >= '0' && n[0] <= '9' {
		n = "s-" + n
	}
	if n == "" || len(n) > 63 {
		return "", fmt.Errorf("name %q cannot become a Kubernetes name (a DNS label of at most 63 characters): %w", name, errdefs.ErrInvalidArgument)
	}
	return n, nil
}

// label63 fits prefix+name into the 63 characters of a DNS label (the
// names of pod volumes, containers and Services): too long a name keeps
// its start and gains a hash of the whole, so distinct names stay distinct.
func label63(prefix, name string) string {
	n := prefix + name
	if len(n) <= 63 {
		return n
	}
	sum := sha256.Sum256([]byte(n))
	return strings.TrimRight(n[:54], "-") + "-" + hex.EncodeToString(sum[:4])
}

func svc(name string) string { return fmt.Sprintf("service %q", name) }

func (c *converter) warn(subject, key, format string, args ...any) {
	c.warns = append(c.warns, Warning{Subject: subject, Key: key, Message: fmt.Sprintf(format, args...)})
}

// meta is the ObjectMeta of an object of the project (and of service, when
// not empty).
func (c *converter) meta(name, service string) metav1.ObjectMeta {
	m := metav1.ObjectMeta{Name: name, Namespace: c.o.Namespace, Labels: map[string]string{LabelProject: c.p.Name}}
	if service != "" {
		m.Labels[LabelService] = c.names[service]
	}
	return m
}

// selector selects the pods of one service.
func (c *converter) selector(service string) map[string]string {
	return map[string]string{LabelProject: c.p.Name, LabelService: c.names[service]}
}

// kindOrder is the order kubectl should create objects in: what pods
// refer to before the pods.
var kindOrder = []string{"ServiceAccount", "Role", "RoleBinding", "Secret", "ConfigMap",
	"PersistentVolumeClaim", "Service", "NetworkPolicy", "Job", "StatefulSet", "Deployment", "DaemonSet"}

func sortObjects(objs []Object) {
	slices.SortStableFunc(objs, func(a, b Object) int {
		ka := slices.Index(kindOrder, a.GetObjectKind().GroupVersionKind().Kind)
		kb := slices.Index(kindOrder, b.GetObjectKind().GroupVersionKind().Kind)
		return cmp.Or(cmp.Compare(ka, kb), cmp.Compare(a.GetName(), b.GetName()))
	})
}
