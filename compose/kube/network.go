package kube

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// port is a container port and protocol.
type port struct {
	n     int32
	proto corev1.Protocol
}

func protocol(p string) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return corev1.Protocol(strings.ToUpper(p))
}

// claimService reserves a Service name for owner, so that two Compose
// names never map to one Kubernetes Service.
func (c *converter) claimService(name, owner string) error {
	if errs := content.IsDNS1123Label(name); len(errs) > 0 || name[0] < 'a' {
		return fmt.Errorf("%s: Service name %q is not a DNS label of at most 63 characters starting with a letter: %w", owner, name, errdefs.ErrInvalidArgument)
	}
	if other, ok := c.services[name]; ok && other != owner {
		return fmt.Errorf("%s: Service name %q is already taken by %s: %w", owner, name, other, errdefs.ErrInvalidArgument)
	}
	c.services[name] = owner
	return nil
}

// ports maps ports and expose: container ports, the headless Service that
// gives the service its Compose DNS name, and for published ports a Service
// of the publish type with a NetworkPolicy letting outside traffic in.
func (c *converter) ports(pd *pod) error {
	s := pd.s
	name := c.names[s.Name]
	var targets []port
	addTarget := func(p port) {
		if !slices.Contains(targets, p) {
			targets = append(targets, p)
		}
	}
	var published []corev1.ServicePort
	var publishedTargets []port
	for _, p := range s.Ports {
		where := fmt.Sprintf("%s:%d/%s", p.Published, p.Target, cmp.Or(p.Protocol, "tcp"))
		t := port{int32(p.Target), protocol(p.Protocol)}
		if p.Target == 0 || p.Target > 65535 {
			return fmt.Errorf("service %q: ports: %s: container port must be 1 to 65535: %w", s.Name, where, errdefs.ErrInvalidArgument)
		}
		addTarget(t)
		if ip, err := netip.ParseAddr(p.HostIP); err == nil && ip.IsLoopback() {
			c.warn(svc(s.Name), "ports", "%s:%s is published on the host's loopback only: not exposed outside the cluster (kubectl port-forward reaches it)", p.HostIP, where)
			continue
		} else if err == nil && !ip.IsUnspecified() {
			c.warn(svc(s.Name), "ports", "host_ip %s: a Service listens on every address of its load balancer or node", p.HostIP)
		}
		pub := int64(p.Target)
		if p.Published != "" {
			lo, hi, isRange := strings.Cut(p.Published, "-")
			n, err := strconv.ParseInt(lo, 10, 32)
			if err == nil && isRange {
				var m int64
				m, err = strconv.ParseInt(hi, 10, 32)
				if err == nil && m != n {
					return fmt.Errorf("service %q: ports: %s: a range of host ports for one container port cannot be expressed in a Service; publish one port: %w", s.Name, where, errdefs.ErrInvalidArgument)
				}
			}
			if err != nil || n < 1 || n > 65535 {
				return fmt.Errorf("service %q: ports: %s: published port must be 1 to 65535: %w", s.Name, where, errdefs.ErrInvalidArgument)
			}
			pub = n
		}
		sp := corev1.ServicePort{
			Name:       fmt.Sprintf("%s-%d", strings.ToLower(string(t.proto)), pub),
			Protocol:   t.proto,
			Port:       int32(pub),
			TargetPort: intstr.FromInt32(t.n),
		}
		if p.AppProtocol != "" {
			sp.AppProtocol = ptr(p.AppProtocol)
		}
		if slices.ContainsFunc(published, func(x corev1.ServicePort) bool { return x.Port == sp.Port && x.Protocol == sp.Protocol }) {
			continue
		}
		if c.o.PublishType == corev1.ServiceTypeNodePort {
			if pub >= 30000 && pub <= 32767 {
				sp.NodePort = int32(pub)
			} else {
				c.warn(svc(s.Name), "ports", "%s: a NodePort must be in 30000-32767; the cluster picks the node port", where)
			}
		}
		published = append(published, sp)
		if !slices.Contains(publishedTargets, t) {
			publishedTargets = append(publishedTargets, t)
		}
	}
	for _, e := range s.Expose {
		ps, err := exposed(e)
		if err != nil {
			return fmt.Errorf("service %q: expose: %q: %w", s.Name, e, err)
		}
		for _, p := range ps {
			addTarget(p)
		}
	}
	for _, t := range targets {
		pd.ctr.Ports = append(pd.ctr.Ports, corev1.ContainerPort{ContainerPort: t.n, Protocol: t.proto})
	}

	if err := c.claimService(name, svc(s.Name)); err != nil {
		return err
	}
	c.add(c.headless(name, s.Name, servicePorts(targets)))
	if len(published) == 0 {
		return nil
	}
	pubName := label63(name, "-published")
	if err := c.claimService(pubName, svc(s.Name)+" (published ports)"); err != nil {
		return err
	}
	c.add(&corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: c.meta(pubName, s.Name),
		Spec: corev1.ServiceSpec{
			Type:     c.o.PublishType,
			Selector: c.selector(s.Name),
			Ports:    published,
		},
	})
	from := networkingv1.NetworkPolicyIngressRule{}
	for _, t := range publishedTargets {
		from.Ports = append(from.Ports, networkingv1.NetworkPolicyPort{Protocol: ptr(t.proto), Port: ptr(intstr.FromInt32(t.n))})
	}
	c.add(c.policy(pubName, s.Name, networkingv1.NetworkPolicySpec{
		PodSelector: metav1.LabelSelector{MatchLabels: c.selector(s.Name)},
		PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
		Ingress:     []networkingv1.NetworkPolicyIngressRule{from},
	}))
	return nil
}

// headless is a Service with no cluster IP: its name resolves to the ready
// pods' addresses and every port is reachable, as Compose's DNS names do.
func (c *converter) headless(name, service string, ports []corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: c.meta(name, service),
		Spec: corev1.ServiceSpec{
			ClusterIP: corev1.ClusterIPNone,
			Selector:  c.selector(service),
			Ports:     ports,
		},
	}
}

func servicePorts(ps []port) []corev1.ServicePort {
	var out []corev1.ServicePort
	for _, p := range ps {
		out = append(out, corev1.ServicePort{
			Name:       fmt.Sprintf("%s-%d", strings.ToLower(string(p.proto)), p.n),
			Protocol:   p.proto,
			Port:       p.n,
			TargetPort: intstr.FromInt32(p.n),
		})
	}
	return out
}

// exposed parses an expose entry: PORT or RANGE, with an optional /proto.
func exposed(e string) ([]port, error) {
	spec, proto, _ := strings.Cut(e, "/")
	lo, hi, isRange := strings.Cut(spec, "-")
	if !isRange {
		hi = lo
	}
	a, err1 := strconv.ParseUint(lo, 10, 16)
	b, err2 := strconv.ParseUint(hi, 10, 16)
	if err1 != nil || err2 != nil || a == 0 || b < a {
		return nil, fmt.Errorf("not a port or port range: %w", errdefs.ErrInvalidArgument)
	}
	var out []port
	for n := a; n <= b; n++ {
		out = append(out, port{int32(n), protocol(proto)})
	}
	return out, nil
}

// network labels the pods with their Compose networks and makes the extra
// Services of network aliases and link aliases.
func (c *converter) network(pd *pod) error {
	s := pd.s
	switch mode := s.NetworkMode; {
	case mode == "" || mode == "default":
	case mode == "none":
		c.isolated = append(c.isolated, s.Name)
	case mode == "host":
		c.warn(svc(s.Name), "network_mode", "host: pods use the cluster network, not the node's (hostNetwork is not set)")
	default:
		c.warn(svc(s.Name), "network_mode", "%q has no equivalent: containers sharing a network namespace would be one pod; the pods use the cluster network, open to every pod", mode)
	}
	for _, net := range slices.Sorted(maps.Keys(s.Networks)) {
		key := LabelNetworkPrefix + net
		if errs := content.IsLabelKey(key); len(errs) > 0 {
			return fmt.Errorf("service %q: networks: %q cannot name a Kubernetes label: %s: %w", s.Name, net, errs[0], errdefs.ErrInvalidArgument)
		}
		pd.labels[key] = "true"
		c.nets[net] = true
		cfg := s.Networks[net]
		if cfg == nil {
			continue
		}
		for _, a := range cfg.Aliases {
			if err := c.alias(s.Name, a, "networks."+net+".aliases"); err != nil {
				return err
			}
		}
		if cfg.Ipv4Address != "" || cfg.Ipv6Address != "" || len(cfg.LinkLocalIPs) > 0 || cfg.MacAddress != "" {
			c.warn(svc(s.Name), "networks."+net, "fixed addresses have no equivalent: the cluster assigns pod addresses")
		}
		if cfg.InterfaceName != "" || len(cfg.DriverOpts) > 0 {
			c.warn(svc(s.Name), "networks."+net, "interface_name and driver_opts have no equivalent; dropped")
		}
	}
	for _, l := range s.Links {
		target, alias, ok := strings.Cut(l, ":")
		if ok && alias != target {
			if _, exists := c.p.Services[target]; exists {
				if err := c.alias(target, alias, "links"); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// alias adds a headless Service named alias selecting service's pods.
// Compose scopes an alias to one network; a Service name is seen by the
// whole namespace (the NetworkPolicies still decide who can connect).
func (c *converter) alias(service, alias, key string) error {
	name, err := dnsName(alias)
	if err != nil {
		return fmt.Errorf("service %q: %s: %w", service, key, err)
	}
	if name == c.names[service] {
		return nil
	}
	if owner, ok := c.services[name]; ok {
		if owner != svc(service) {
			c.warn(svc(service), key, "alias %q is already the name of %s; dropped", alias, owner)
		}
		return nil
	}
	if err := c.claimService(name, svc(service)); err != nil {
		return err
	}
	c.add(c.headless(name, service, nil))
	return nil
}

// dependsOn adds an init container per dependency: one that waits for the
// dependency's Service to resolve (it has a ready pod), or for its Job to
// complete.
func (c *converter) dependsOn(pd *pod) error {
	s := pd.s
	for _, dep := range slices.Sorted(maps.Keys(s.DependsOn)) {
		if _, ok := c.p.Services[dep]; !ok {
			continue // an optional dependency that is not part of the project
		}
		if c.jobs[dep] {
			c.waiter = true
			pd.spec.ServiceAccountName = c.waiterName()
			pd.spec.AutomountServiceAccountToken = ptr(true)
			pd.spec.InitContainers = append(pd.spec.InitContainers, corev1.Container{
				Name:    label63("wait-for-", c.names[dep]),
				Image:   c.o.KubectlImage,
				Command: []string{"kubectl", "wait", "--for=condition=complete", "--timeout=-1s", "job/" + c.names[dep]},
			})
			if c.internalOnly(s) {
				c.warn(svc(s.Name), "depends_on", "%s: waiting for a Job asks the Kubernetes API, which the internal networks' policy does not let this pod reach", dep)
			}
			continue
		}
		pd.spec.InitContainers = append(pd.spec.InitContainers, corev1.Container{
			Name:  label63("wait-for-", c.names[dep]),
			Image: c.o.WaitImage,
			Env: []corev1.EnvVar{{Name: "NAMESPACE", ValueFrom: &corev1.EnvVarSource{
				FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"},
			}}},
			// $(NAMESPACE) is expanded by the kubelet. The name is
			// absolute: busybox's nslookup ignores search domains.
			Command: []string{"sh", "-c", fmt.Sprintf("until nslookup %s.$(NAMESPACE).svc.%s. >/dev/null 2>&1; do sleep 1; done", c.names[dep], c.o.ClusterDomain)},
		})
	}
	return nil
}

// internalOnly tells whether every network of s is internal.
func (c *converter) internalOnly(s types.ServiceConfig) bool {
	if len(s.Networks) == 0 {
		return false
	}
	for net := range s.Networks {
		if n, ok := c.p.Networks[net]; !ok || !n.Internal {
			return false
		}
	}
	return true
}

func (c *converter) waiterName() string { return c.p.Name + "-job-waiter" }

// waiterAccount lets the pods that wait for Jobs read Jobs, and nothing
// else.
func (c *converter) waiterAccount() {
	name := c.waiterName()
	c.add(&corev1.ServiceAccount{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta: c.meta(name, ""),
	})
	c.add(&rbacv1.Role{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
		ObjectMeta: c.meta(name, ""),
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{"batch"},
			Resources: []string{"jobs"},
			Verbs:     []string{"get", "list", "watch"},
		}},
	})
	c.add(&rbacv1.RoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
		ObjectMeta: c.meta(name, ""),
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: c.o.Namespace}},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name},
	})
}

func (c *converter) policy(name, service string, spec networkingv1.NetworkPolicySpec) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: c.meta(name, service),
		Spec:       spec,
	}
}

// networkPolicies reproduces each Compose network's isolation: a pod
// accepts traffic only from pods that share one of its networks; a pod
// whose networks are all internal reaches only those pods and the
// cluster's DNS; a service with network_mode: none talks to nobody.
func (c *converter) networkPolicies() error {
	nets := slices.Sorted(maps.Keys(c.nets))
	var open []metav1.LabelSelectorRequirement
	for _, net := range nets {
		if !c.p.Networks[net].Internal {
			open = append(open, metav1.LabelSelectorRequirement{Key: LabelNetworkPrefix + net, Operator: metav1.LabelSelectorOpDoesNotExist})
		}
	}
	for _, net := range nets {
		n := c.p.Networks[net]
		subject := fmt.Sprintf("network %q", net)
		if n.External {
			c.warn(subject, "external", "an external network joins containers of other projects; only this project's pods share it in the cluster")
		}
		if n.Driver != "" && n.Driver != "bridge" || len(n.DriverOpts) > 0 || len(n.Ipam.Config) > 0 || n.Ipam.Driver != "" {
			c.warn(subject, "driver", "drivers and ipam have no equivalent: the cluster's network assigns addresses")
		}
		name, err := dnsName(net)
		if err != nil {
			return fmt.Errorf("%s: %w", subject, err)
		}
		members := map[string]string{LabelProject: c.p.Name, LabelNetworkPrefix + net: "true"}
		c.add(c.policy("network-"+name, "", networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: members},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: members}}},
			}},
		}))
		if !n.Internal {
			continue
		}
		dns := []networkingv1.NetworkPolicyPort{
			{Protocol: ptr(corev1.ProtocolUDP), Port: ptr(intstr.FromInt32(53))},
			{Protocol: ptr(corev1.ProtocolTCP), Port: ptr(intstr.FromInt32(53))},
		}
		c.add(c.policy("network-"+name+"-internal", "", networkingv1.NetworkPolicySpec{
			// Only pods with no way out through another network.
			PodSelector: metav1.LabelSelector{MatchLabels: members, MatchExpressions: open},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
			Egress: []networkingv1.NetworkPolicyEgressRule{
				{To: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: members}}}},
				{To: []networkingv1.NetworkPolicyPeer{{
					NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "kube-system"}},
					PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "kube-dns"}},
				}}, Ports: dns},
			},
		}))
	}
	for _, s := range c.isolated {
		c.add(c.policy(c.names[s]+"-no-network", s, networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: c.selector(s)},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
		}))
	}
	return nil
}
