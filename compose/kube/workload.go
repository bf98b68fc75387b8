package kube

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/api/validate/content"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// pod is one service's pod template while it is being built.
type pod struct {
	s      types.ServiceConfig
	spec   corev1.PodSpec
	ctr    corev1.Container
	labels map[string]string
	annots map[string]string
}

// service converts one service: its workload, its Services and the
// objects its pods refer to.
func (c *converter) service(s types.ServiceConfig) error {
	if s.Image == "" && s.Build == nil {
		return fmt.Errorf("service %q: image: an image or a build section is required: %w", s.Name, errdefs.ErrInvalidArgument)
	}
	pd := &pod{s: s, labels: c.selector(s.Name), annots: map[string]string{}}
	pd.ctr = corev1.Container{Name: c.names[s.Name], Image: s.Image}
	if s.Image == "" {
		// Compose names the image it builds <project>-<service>.
		pd.ctr.Image = c.p.Name + "-" + s.Name
		c.warn(svc(s.Name), "build", "has no image reference: the pods run image %q, which must be built and pushed where the cluster can pull it (set image: to choose the name)", pd.ctr.Image)
	}
	// Compose containers get no Kubernetes API credentials and no
	// environment variables describing other Services.
	pd.spec.EnableServiceLinks = ptr(false)
	pd.spec.AutomountServiceAccountToken = ptr(false)
	steps := []func(*pod) error{
		c.process, c.security, c.resources, c.healthcheck, c.restart,
		c.volumes, c.files, c.network, c.ports, c.dependsOn, c.metadata, c.misc,
	}
	for _, step := range steps {
		if err := step(pd); err != nil {
			return err
		}
	}
	c.dropped(s)
	pd.spec.Containers = []corev1.Container{pd.ctr}
	tmpl := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: pd.labels, Annotations: nilIfEmpty(pd.annots)},
		Spec:       pd.spec,
	}
	c.workload(pd, tmpl)
	return nil
}

// kind is the controller a service becomes.
func (c *converter) kind(s types.ServiceConfig) string {
	switch {
	case c.jobs[s.Name]:
		return "Job"
	case s.Deploy != nil && s.Deploy.Mode == "global":
		return "DaemonSet"
	case len(namedVolumes(s)) > 0:
		return "StatefulSet"
	}
	return "Deployment"
}

// workload wraps the pod template in the controller the service needs.
func (c *converter) workload(pd *pod, tmpl corev1.PodTemplateSpec) {
	s := pd.s
	name := c.names[s.Name]
	replicas := int32(s.GetScale())
	meta := c.meta(name, s.Name)
	if s.Deploy != nil {
		c.addLabels(svc(s.Name), "deploy.labels", meta.Labels, meta.Annotations, s.Deploy.Labels)
	}
	sel := &metav1.LabelSelector{MatchLabels: c.selector(s.Name)}
	switch c.kind(s) {
	case "Job":
		tmpl.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
		c.add(&batchv1.Job{
			TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
			ObjectMeta: meta,
			Spec: batchv1.JobSpec{
				Completions:  ptr(replicas),
				Parallelism:  ptr(replicas),
				BackoffLimit: jobBackoff(restartPolicy(s)),
				Template:     tmpl,
			},
		})
	case "DaemonSet":
		// One pod per node, as Swarm's global mode runs one task per node.
		c.add(&appsv1.DaemonSet{
			TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DaemonSet"},
			ObjectMeta: meta,
			Spec:       appsv1.DaemonSetSpec{Selector: sel, Template: tmpl},
		})
	case "StatefulSet":
		c.add(&appsv1.StatefulSet{
			TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
			ObjectMeta: meta,
			Spec: appsv1.StatefulSetSpec{
				Replicas:    ptr(replicas),
				Selector:    sel,
				ServiceName: name,
				// Compose starts every replica at once.
				PodManagementPolicy: appsv1.ParallelPodManagement,
				Template:            tmpl,
			},
		})
	default:
		c.add(&appsv1.Deployment{
			TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
			ObjectMeta: meta,
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr(replicas),
				Selector: sel,
				Template: tmpl,
			},
		})
	}
}

func (c *converter) add(o Object) { c.objs = append(c.objs, o) }

// process maps what runs: command, entrypoint, environment, working_dir,
// tty and stdin_open.
func (c *converter) process(pd *pod) error {
	s := pd.s
	// Kubernetes expands $(VAR) in command, args and env values, and Compose
	// has already interpolated the file: escape every '$' so the process
	// sees exactly what docker compose would give it.
	pd.ctr.Command = escapeAll(s.Entrypoint)
	pd.ctr.Args = escapeAll(s.Command)
	for _, k := range slices.Sorted(maps.Keys(s.Environment)) {
		if v := s.Environment[k]; v != nil {
			pd.ctr.Env = append(pd.ctr.Env, corev1.EnvVar{Name: k, Value: escape(*v)})
		}
	}
	pd.ctr.WorkingDir = s.WorkingDir
	pd.ctr.TTY = s.Tty
	pd.ctr.Stdin = s.StdinOpen
	return nil
}

func escape(s string) string { return strings.ReplaceAll(s, "$", "$$") }

func escapeAll(in []string) []string {
	if in == nil {
		return nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = escape(s)
	}
	return out
}

// security maps user, group_add, cap_add/cap_drop, privileged, read_only
// and security_opt. Docker gives every container its default seccomp
// profile; RuntimeDefault is the same promise in Kubernetes.
func (c *converter) security(pd *pod) error {
	s := pd.s
	sc := &corev1.SecurityContext{}
	if s.User != "" {
		uid, gid, ok := strings.Cut(s.User, ":")
		if n, err := strconv.ParseInt(uid, 10, 64); err == nil {
			sc.RunAsUser = ptr(n)
		} else {
			c.warn(svc(s.Name), "user", "%q: Kubernetes takes a numeric uid only; the image's user applies", s.User)
		}
		if ok {
			if n, err := strconv.ParseInt(gid, 10, 64); err == nil {
				sc.RunAsGroup = ptr(n)
			} else {
				c.warn(svc(s.Name), "user", "group %q: Kubernetes takes a numeric gid only; the image's group applies", gid)
			}
		}
	}
	for _, g := range s.GroupAdd {
		if n, err := strconv.ParseInt(g, 10, 64); err == nil {
			if pd.spec.SecurityContext == nil {
				pd.spec.SecurityContext = &corev1.PodSecurityContext{}
			}
			pd.spec.SecurityContext.SupplementalGroups = append(pd.spec.SecurityContext.SupplementalGroups, n)
		} else {
			c.warn(svc(s.Name), "group_add", "%q: Kubernetes takes numeric group ids only; dropped", g)
		}
	}
	if len(s.CapAdd)+len(s.CapDrop) > 0 {
		sc.Capabilities = &corev1.Capabilities{Add: capabilities(s.CapAdd), Drop: capabilities(s.CapDrop)}
	}
	if s.Privileged {
		sc.Privileged = ptr(true)
	}
	if s.ReadOnly {
		sc.ReadOnlyRootFilesystem = ptr(true)
	}
	seccomp := !s.Privileged
	for _, opt := range s.SecurityOpt {
		k, v, _ := strings.Cut(opt, "=")
		if !strings.Contains(opt, "=") {
			k, v, _ = strings.Cut(opt, ":")
		}
		switch {
		case k == "no-new-privileges" && (v == "" || v == "true"):
			sc.AllowPrivilegeEscalation = ptr(false)
		case k == "seccomp" && v == "unconfined":
			seccomp = false
			sc.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}
		default:
			c.warn(svc(s.Name), "security_opt", "%q has no equivalent here; dropped", opt)
		}
	}
	if seccomp {
		sc.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}
	}
	pd.ctr.SecurityContext = sc
	return nil
}

// capabilities spells capabilities as Kubernetes does: no CAP_ prefix.
func capabilities(in []string) []corev1.Capability {
	var out []corev1.Capability
	for _, c := range in {
		out = append(out, corev1.Capability(strings.TrimPrefix(strings.ToUpper(c), "CAP_")))
	}
	return out
}

// resources maps deploy.resources, mem_limit, mem_reservation and cpus to
// limits and requests.
func (c *converter) resources(pd *pod) error {
	s := pd.s
	lim, req := corev1.ResourceList{}, corev1.ResourceList{}
	cpus, mem := float64(s.CPUS), int64(s.MemLimit)
	rcpus, rmem := 0.0, int64(s.MemReservation)
	if s.Deploy != nil {
		if l := s.Deploy.Resources.Limits; l != nil {
			cpus, mem = orF(float64(l.NanoCPUs), cpus), orI(int64(l.MemoryBytes), mem)
			if l.Pids > 0 {
				c.warn(svc(s.Name), "deploy.resources.limits.pids", "Kubernetes sets pid limits per node, not per pod; dropped")
			}
			if len(l.Devices)+len(l.GenericResources) > 0 {
				c.warn(svc(s.Name), "deploy.resources.limits", "devices and generic resources have no equivalent here; dropped")
			}
		}
		if r := s.Deploy.Resources.Reservations; r != nil {
			rcpus, rmem = float64(r.NanoCPUs), orI(int64(r.MemoryBytes), rmem)
			if len(r.Devices)+len(r.GenericResources) > 0 {
				c.warn(svc(s.Name), "deploy.resources.reservations", "devices and generic resources have no equivalent here; dropped")
			}
		}
	}
	if s.PidsLimit > 0 {
		c.warn(svc(s.Name), "pids_limit", "Kubernetes sets pid limits per node, not per pod; dropped")
	}
	setCPU(lim, cpus)
	setCPU(req, rcpus)
	setMem(lim, mem)
	setMem(req, rmem)
	if len(lim) > 0 {
		pd.ctr.Resources.Limits = lim
	}
	if len(req) > 0 {
		pd.ctr.Resources.Requests = req
	}
	return nil
}

func setCPU(l corev1.ResourceList, cpus float64) {
	if cpus > 0 {
		l[corev1.ResourceCPU] = *resource.NewMilliQuantity(int64(math.Ceil(cpus*1000)), resource.DecimalSI)
	}
}

func setMem(l corev1.ResourceList, bytes int64) {
	if bytes > 0 {
		l[corev1.ResourceMemory] = *resource.NewQuantity(bytes, resource.BinarySI)
	}
}

func orF(a, b float64) float64 {
	if a > 0 {
		return a
	}
	return b
}

func orI(a, b int64) int64 {
	if a > 0 {
		return a
	}
	return b
}

// Docker's healthcheck defaults.
const (
	defaultInterval      = 30 * time.Second
	defaultTimeout       = 30 * time.Second
	defaultRetries       = 3
	defaultStartInterval = 5 * time.Second
)

// healthcheck maps healthcheck to readiness and liveness probes, and
// start_period to a startup probe that holds them off as Docker's start
// period does.
func (c *converter) healthcheck(pd *pod) error {
	h := pd.s.HealthCheck
	if h == nil || h.Disable || len(h.Test) == 0 || h.Test[0] == "NONE" {
		return nil
	}
	var cmd []string
	switch h.Test[0] {
	case "CMD":
		cmd = h.Test[1:]
	case "CMD-SHELL":
		cmd = []string{"/bin/sh", "-c", strings.Join(h.Test[1:], " ")}
	default:
		return fmt.Errorf("service %q: healthcheck.test: %q must start with CMD, CMD-SHELL or NONE: %w", pd.s.Name, h.Test[0], errdefs.ErrInvalidArgument)
	}
	interval, timeout, retries := defaultInterval, defaultTimeout, uint64(defaultRetries)
	if h.Interval != nil && *h.Interval > 0 {
		interval = time.Duration(*h.Interval)
	}
	if h.Timeout != nil && *h.Timeout > 0 {
		timeout = time.Duration(*h.Timeout)
	}
	if h.Retries != nil && *h.Retries > 0 {
		retries = *h.Retries
	}
	probe := &corev1.Probe{
		ProbeHandler:     corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: cmd}},
		PeriodSeconds:    seconds(interval),
		TimeoutSeconds:   seconds(timeout),
		FailureThreshold: int32(min(retries, math.MaxInt32)),
	}
	pd.ctr.ReadinessProbe = probe
	pd.ctr.LivenessProbe = probe.DeepCopy()
	if h.StartPeriod != nil && *h.StartPeriod > 0 {
		every := defaultStartInterval
		if h.StartInterval != nil && *h.StartInterval > 0 {
			every = time.Duration(*h.StartInterval)
		}
		start := probe.DeepCopy()
		start.PeriodSeconds = seconds(every)
		// Failures inside the start period do not count; after it, the
		// usual retries apply, as with Docker.
		start.FailureThreshold = int32(min(
			int64(math.Ceil(float64(*h.StartPeriod)/float64(time.Duration(start.PeriodSeconds)*time.Second)))+int64(probe.FailureThreshold),
			math.MaxInt32))
		pd.ctr.StartupProbe = start
	}
	return nil
}

// seconds rounds d up to whole seconds, at least one.
func seconds(d time.Duration) int32 {
	return int32(max(1, min(int64(math.Ceil(d.Seconds())), math.MaxInt32)))
}

// restartPolicy is the service's restart policy in `restart:` spelling,
// from restart or deploy.restart_policy.
func restartPolicy(s types.ServiceConfig) string {
	if s.Deploy != nil && s.Deploy.RestartPolicy != nil && s.Restart == "" {
		rp := s.Deploy.RestartPolicy
		switch rp.Condition {
		case "none":
			return types.RestartPolicyNo
		case "on-failure":
			if rp.MaxAttempts != nil {
				return fmt.Sprintf("on-failure:%d", *rp.MaxAttempts)
			}
			return types.RestartPolicyOnFailure
		case "any", "":
			return types.RestartPolicyAlways
		}
	}
	return s.Restart
}

// restart checks what restart means for the service's controller: Jobs
// retry failures only, the other controllers always restart their pods.
func (c *converter) restart(pd *pod) error {
	r := restartPolicy(pd.s)
	if c.jobs[pd.s.Name] || r == "" {
		return nil
	}
	if r == types.RestartPolicyNo || strings.HasPrefix(r, types.RestartPolicyOnFailure) {
		c.warn(svc(pd.s.Name), "restart", "%q: a %s restarts its pods whenever they exit", r, c.kind(pd.s))
	}
	return nil
}

// jobBackoff is a Job's backoffLimit for a restart policy: a job that
// Compose would not restart is not retried.
func jobBackoff(r string) *int32 {
	switch {
	case r == "" || r == types.RestartPolicyNo:
		return ptr(int32(0))
	case strings.HasPrefix(r, types.RestartPolicyOnFailure+":"):
		if n, err := strconv.ParseInt(strings.TrimPrefix(r, types.RestartPolicyOnFailure+":"), 10, 32); err == nil {
			return ptr(int32(n))
		}
	}
	return nil
}

// metadata maps labels and annotations onto the pods: labels that are
// valid Kubernetes labels stay labels, the others become annotations.
func (c *converter) metadata(pd *pod) error {
	c.addLabels(svc(pd.s.Name), "labels", pd.labels, pd.annots, pd.s.Labels)
	maps.Copy(pd.annots, pd.s.Annotations)
	return nil
}

// addLabels copies Compose labels into labels, or into annots (with a
// warning) when Kubernetes does not take them as labels.
func (c *converter) addLabels(subject, key string, labels, annots map[string]string, in map[string]string) {
	for _, k := range slices.Sorted(maps.Keys(in)) {
		v := in[k]
		if k == LabelProject || k == LabelService {
			continue
		}
		if len(content.IsLabelKey(k))+len(content.IsLabelValue(v)) == 0 {
			labels[k] = v
			continue
		}
		if annots != nil {
			annots[k] = v
			c.warn(subject, key, "%q is not a valid Kubernetes label; it becomes an annotation", k)
		} else {
			c.warn(subject, key, "%q is not a valid Kubernetes label; dropped", k)
		}
	}
}

// misc maps the remaining keys of the pod: stop_grace_period, hostname,
// extra_hosts, platform, pull_policy, sysctls, dns_search and dns_opt.
func (c *converter) misc(pd *pod) error {
	s := pd.s
	if s.StopGracePeriod != nil {
		pd.spec.TerminationGracePeriodSeconds = ptr(int64(seconds(time.Duration(*s.StopGracePeriod))))
	}
	if s.Hostname != "" {
		if len(content.IsDNS1123Label(s.Hostname)) == 0 {
			pd.spec.Hostname = s.Hostname
		} else {
			c.warn(svc(s.Name), "hostname", "%q is not a DNS label, which Kubernetes requires; dropped", s.Hostname)
		}
	}
	byIP := map[string][]string{}
	for _, host := range slices.Sorted(maps.Keys(s.ExtraHosts)) {
		for _, ip := range s.ExtraHosts[host] {
			if ip == "host-gateway" {
				c.warn(svc(s.Name), "extra_hosts", "%s:host-gateway: a pod has no host gateway address; dropped", host)
				continue
			}
			byIP[ip] = append(byIP[ip], host)
		}
	}
	for _, ip := range slices.Sorted(maps.Keys(byIP)) {
		pd.spec.HostAliases = append(pd.spec.HostAliases, corev1.HostAlias{IP: ip, Hostnames: byIP[ip]})
	}
	if s.Platform != "" {
		parts := strings.Split(s.Platform, "/")
		pd.spec.NodeSelector = map[string]string{"kubernetes.io/os": parts[0]}
		if len(parts) > 1 {
			pd.spec.NodeSelector["kubernetes.io/arch"] = parts[1]
		}
	}
	switch s.PullPolicy {
	case "":
	case types.PullPolicyAlways, types.PullPolicyRefresh:
		pd.ctr.ImagePullPolicy = corev1.PullAlways
	case types.PullPolicyNever:
		pd.ctr.ImagePullPolicy = corev1.PullNever
	case types.PullPolicyMissing, types.PullPolicyIfNotPresent:
		pd.ctr.ImagePullPolicy = corev1.PullIfNotPresent
	default:
		c.warn(svc(s.Name), "pull_policy", "%q has no equivalent here; the cluster's default applies", s.PullPolicy)
	}
	for _, k := range slices.Sorted(maps.Keys(s.Sysctls)) {
		if pd.spec.SecurityContext == nil {
			pd.spec.SecurityContext = &corev1.PodSecurityContext{}
		}
		pd.spec.SecurityContext.Sysctls = append(pd.spec.SecurityContext.Sysctls, corev1.Sysctl{Name: k, Value: s.Sysctls[k]})
	}
	if len(s.DNSSearch)+len(s.DNSOpts) > 0 {
		dc := &corev1.PodDNSConfig{Searches: s.DNSSearch}
		for _, o := range s.DNSOpts {
			name, val, ok := strings.Cut(o, ":")
			opt := corev1.PodDNSConfigOption{Name: name}
			if ok {
				opt.Value = ptr(val)
			}
			dc.Options = append(dc.Options, opt)
		}
		pd.spec.DNSConfig = dc
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

func nilIfEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}
