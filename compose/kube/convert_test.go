package kube

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/berth-dev/berth/compose/files"
)

// convert loads a compose file (plus extra files beside it) the way berth
// does and converts it.
func convert(t *testing.T, yaml string, o Options, files ...string) (*Result, error) {
	t.Helper()
	dir := t.TempDir()
	for i := 0; i+1 < len(files); i += 2 {
		if err := os.WriteFile(filepath.Join(dir, files[i]), []byte(files[i+1]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return convertIn(t, dir, yaml, o)
}

// convertIn writes compose.yaml into dir, loads it and converts it.
func convertIn(t *testing.T, dir, yaml string, o Options) (*Result, error) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	p, _, err := files.Load(t.Context(), files.Options{ConfigPaths: []string{filepath.Join(dir, "compose.yaml")}, WorkingDir: dir}, nil)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return Convert(p, o)
}

func mustConvert(t *testing.T, yaml string, files ...string) *Result {
	t.Helper()
	r, err := convert(t, yaml, Options{}, files...)
	if err != nil {
		t.Fatalf("convert: %v", err)
	}
	return r
}

// get finds the object of type T named name.
func get[T Object](t *testing.T, r *Result, name string) T {
	t.Helper()
	for _, o := range r.Objects {
		if x, ok := o.(T); ok && o.GetName() == name {
			return x
		}
	}
	var zero T
	t.Fatalf("no %T named %q among %v", zero, name, names(r))
	return zero
}

func has[T Object](r *Result, name string) bool {
	for _, o := range r.Objects {
		if _, ok := o.(T); ok && o.GetName() == name {
			return true
		}
	}
	return false
}

func names(r *Result) []string {
	var out []string
	for _, o := range r.Objects {
		out = append(out, o.GetObjectKind().GroupVersionKind().Kind+"/"+o.GetName())
	}
	return out
}

// warned tells whether a warning mentions all of parts.
func warned(r *Result, parts ...string) bool {
	return slices.ContainsFunc(r.Warnings, func(w Warning) bool {
		for _, p := range parts {
			if !strings.Contains(w.String(), p) {
				return false
			}
		}
		return true
	})
}

func deployment(t *testing.T, r *Result, name string) (*corev1.PodSpec, *corev1.Container) {
	t.Helper()
	d := get[*appsv1.Deployment](t, r, name)
	return &d.Spec.Template.Spec, &d.Spec.Template.Spec.Containers[0]
}

func TestWorkloadKinds(t *testing.T) {
	t.Parallel()
	r := mustConvert(t, `name: kinds
services:
  web:
    image: nginx
    deploy: {replicas: 3}
    depends_on:
      migrate: {condition: service_completed_successfully}
  worker:
    image: worker
    scale: 2
  db:
    image: postgres
    volumes: [data:/var/lib/postgresql/data]
  migrate:
    image: migrate
    restart: on-failure:2
  agent:
    image: agent
    deploy: {mode: global}
volumes:
  data: {}
`)
	if ds := get[*appsv1.DaemonSet](t, r, "agent"); ds.Spec.Selector.MatchLabels[LabelService] != "agent" || has[*appsv1.Deployment](r, "agent") {
		t.Errorf("deploy.mode global: %+v", ds.Spec.Selector)
	}
	if warned(r, "deploy.mode") {
		t.Errorf("deploy.mode is warned about: %v", r.Warnings)
	}
	if d := get[*appsv1.Deployment](t, r, "web"); *d.Spec.Replicas != 3 {
		t.Errorf("web replicas = %d, want 3 (deploy.replicas)", *d.Spec.Replicas)
	}
	if d := get[*appsv1.Deployment](t, r, "worker"); *d.Spec.Replicas != 2 {
		t.Errorf("worker replicas = %d, want 2 (scale)", *d.Spec.Replicas)
	}
	ss := get[*appsv1.StatefulSet](t, r, "db")
	if ss.Spec.ServiceName != "db" || ss.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
		t.Errorf("db statefulset: serviceName %q, policy %q", ss.Spec.ServiceName, ss.Spec.PodManagementPolicy)
	}
	if has[*appsv1.Deployment](r, "db") {
		t.Error("db is also a Deployment")
	}
	job := get[*batchv1.Job](t, r, "migrate")
	if job.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyOnFailure || *job.Spec.BackoffLimit != 2 {
		t.Errorf("migrate job: restartPolicy %q, backoffLimit %d; want OnFailure, 2", job.Spec.Template.Spec.RestartPolicy, *job.Spec.BackoffLimit)
	}
	if has[*appsv1.Deployment](r, "migrate") {
		t.Error("migrate is also a Deployment")
	}
	// Objects come in the order kubectl should create them.
	var kinds []string
	for _, o := range r.Objects {
		kinds = append(kinds, o.GetObjectKind().GroupVersionKind().Kind)
	}
	if !slices.IsSortedFunc(kinds, func(a, b string) int { return slices.Index(kindOrder, a) - slices.Index(kindOrder, b) }) {
		t.Errorf("objects out of order: %v", kinds)
	}
}

func TestProcess(t *testing.T) {
	t.Parallel()
	r := mustConvert(t, `name: proc
services:
  app:
    image: app:1
    entrypoint: ["/entry", "$$(not a var)"]
    command: sh -c 'echo $$HOME'
    environment:
      A: "1"
      PRICE: "$$5"
      EMPTY: ""
      UNSET:
    env_file: app.env
    working_dir: /srv
    tty: true
    stdin_open: true
`, "app.env", "FROM_FILE=yes\n")
	_, c := deployment(t, r, "app")
	if c.Image != "app:1" {
		t.Errorf("image = %q", c.Image)
	}
	// Kubernetes expands $(VAR) and reduces $$: every $ is doubled.
	if want := []string{"/entry", "$$(not a var)"}; !slices.Equal(c.Command, want) {
		t.Errorf("command = %q, want %q", c.Command, want)
	}
	if want := []string{"sh", "-c", "echo $$HOME"}; !slices.Equal(c.Args, want) {
		t.Errorf("args = %q, want %q", c.Args, want)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	want := map[string]string{"A": "1", "PRICE": "$$5", "EMPTY": "", "FROM_FILE": "yes"}
	for k, v := range want {
		if got, ok := env[k]; !ok || got != v {
			t.Errorf("env %s = %q (set %v), want %q", k, got, ok, v)
		}
	}
	if _, ok := env["UNSET"]; ok {
		t.Error("a variable without a value is set")
	}
	if !slices.IsSortedFunc(c.Env, func(a, b corev1.EnvVar) int { return strings.Compare(a.Name, b.Name) }) {
		t.Error("env is not sorted")
	}
	if c.WorkingDir != "/srv" || !c.TTY || !c.Stdin {
		t.Errorf("workingDir %q tty %v stdin %v", c.WorkingDir, c.TTY, c.Stdin)
	}
}

func TestSecurity(t *testing.T) {
	t.Parallel()
	r := mustConvert(t, `name: sec
services:
  app:
    image: app
    user: "1000:2000"
    group_add: ["3000", "audio"]
    cap_add: [NET_ADMIN, CAP_SYS_TIME]
    cap_drop: [ALL]
    read_only: true
    security_opt: ["no-new-privileges:true", "apparmor=x"]
  root:
    image: root
    privileged: true
  named:
    image: named
    user: postgres
`)
	pod, c := deployment(t, r, "app")
	sc := c.SecurityContext
	if *sc.RunAsUser != 1000 || *sc.RunAsGroup != 2000 {
		t.Errorf("runAsUser/Group = %d/%d", *sc.RunAsUser, *sc.RunAsGroup)
	}
	if !slices.Equal(pod.SecurityContext.SupplementalGroups, []int64{3000}) || !warned(r, `"app"`, "group_add", "audio") {
		t.Errorf("supplementalGroups = %v; warnings %v", pod.SecurityContext.SupplementalGroups, r.Warnings)
	}
	if !slices.Equal(sc.Capabilities.Add, []corev1.Capability{"NET_ADMIN", "SYS_TIME"}) || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("capabilities = %+v", sc.Capabilities)
	}
	if !*sc.ReadOnlyRootFilesystem || *sc.AllowPrivilegeEscalation {
		t.Error("read_only or no-new-privileges not mapped")
	}
	if sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("seccomp = %+v, want RuntimeDefault (Docker's default profile)", sc.SeccompProfile)
	}
	if !warned(r, "security_opt", "apparmor=x") {
		t.Errorf("no warning for an unknown security_opt: %v", r.Warnings)
	}
	if _, c := deployment(t, r, "root"); c.SecurityContext.Privileged == nil || !*c.SecurityContext.Privileged || c.SecurityContext.SeccompProfile != nil {
		t.Errorf("privileged: %+v", c.SecurityContext)
	}
	if _, c := deployment(t, r, "named"); c.SecurityContext.RunAsUser != nil || !warned(r, `"named"`, "user", "postgres") {
		t.Errorf("user name: runAsUser %v, warnings %v", c.SecurityContext.RunAsUser, r.Warnings)
	}
}

func TestResourcesAndRestart(t *testing.T) {
	t.Parallel()
	r := mustConvert(t, `name: res
services:
  a:
    image: a
    deploy:
      resources:
        limits: {cpus: "0.5", memory: 256M}
        reservations: {cpus: "0.25", memory: 64M}
  b:
    image: b
    mem_limit: 1g
    mem_reservation: 512m
    cpus: 1.5
    restart: "no"
    stop_grace_period: 1m30s
`)
	_, a := deployment(t, r, "a")
	check := func(l corev1.ResourceList, name corev1.ResourceName, want string) {
		t.Helper()
		q := l[name]
		if q.Cmp(resource.MustParse(want)) != 0 {
			t.Errorf("%s = %s, want %s", name, q.String(), want)
		}
	}
	check(a.Resources.Limits, corev1.ResourceCPU, "500m")
	check(a.Resources.Limits, corev1.ResourceMemory, "256Mi")
	check(a.Resources.Requests, corev1.ResourceCPU, "250m")
	check(a.Resources.Requests, corev1.ResourceMemory, "64Mi")
	pod, b := deployment(t, r, "b")
	check(b.Resources.Limits, corev1.ResourceCPU, "1500m")
	check(b.Resources.Limits, corev1.ResourceMemory, "1Gi")
	check(b.Resources.Requests, corev1.ResourceMemory, "512Mi")
	if pod.TerminationGracePeriodSeconds == nil || *pod.TerminationGracePeriodSeconds != 90 {
		t.Errorf("terminationGracePeriodSeconds = %v, want 90", pod.TerminationGracePeriodSeconds)
	}
	if !warned(r, `"b"`, "restart", `"no"`, "Deployment") {
		t.Errorf("restart: no on a Deployment is not warned about: %v", r.Warnings)
	}
}

func TestHealthcheck(t *testing.T) {
	t.Parallel()
	r := mustConvert(t, `name: hc
services:
  a:
    image: a
    healthcheck:
      test: ["CMD", "curl", "-f", "http://localhost/"]
      interval: 10s
      timeout: 2500ms
      retries: 5
      start_period: 30s
      start_interval: 2s
  b:
    image: b
    healthcheck:
      test: pg_isready
  c:
    image: c
    healthcheck:
      disable: true
`)
	_, a := deployment(t, r, "a")
	for _, p := range []*corev1.Probe{a.ReadinessProbe, a.LivenessProbe} {
		if p == nil || !slices.Equal(p.Exec.Command, []string{"curl", "-f", "http://localhost/"}) || p.PeriodSeconds != 10 || p.TimeoutSeconds != 3 || p.FailureThreshold != 5 {
			t.Errorf("probe = %+v", p)
		}
	}
	// 30 s of start period at 2 s, then the usual 5 retries.
	if s := a.StartupProbe; s == nil || s.PeriodSeconds != 2 || s.FailureThreshold != 15+5 {
		t.Errorf("startupProbe = %+v", s)
	}
	_, b := deployment(t, r, "b")
	if p := b.ReadinessProbe; p == nil || !slices.Equal(p.Exec.Command, []string{"/bin/sh", "-c", "pg_isready"}) || p.PeriodSeconds != 30 || p.FailureThreshold != 3 || b.StartupProbe != nil {
		t.Errorf("CMD-SHELL probe with Docker's defaults = %+v", p)
	}
	if _, c := deployment(t, r, "c"); c.ReadinessProbe != nil || c.LivenessProbe != nil {
		t.Error("a disabled healthcheck makes probes")
	}
}

func TestPorts(t *testing.T) {
	t.Parallel()
	const file = `name: ports
services:
  web:
    image: web
    ports:
      - "8080:80"
      - "31000:81"
      - "127.0.0.1:9000:9000"
      - "53:53/udp"
      - "443"
    expose: ["3000", "4000-4001/udp"]
  quiet:
    image: quiet
`
	r := mustConvert(t, file)
	hs := get[*corev1.Service](t, r, "web")
	if hs.Spec.ClusterIP != corev1.ClusterIPNone || hs.Spec.Selector[LabelService] != "web" {
		t.Errorf("web Service is not headless on the web pods: %+v", hs.Spec)
	}
	var got []string
	for _, p := range hs.Spec.Ports {
		got = append(got, p.Name)
	}
	if want := []string{"tcp-80", "tcp-81", "tcp-9000", "udp-53", "tcp-443", "tcp-3000", "udp-4000", "udp-4001"}; !slices.Equal(got, want) {
		t.Errorf("headless ports = %v, want %v", got, want)
	}
	_, c := deployment(t, r, "web")
	if len(c.Ports) != 8 {
		t.Errorf("container ports = %v", c.Ports)
	}
	pub := get[*corev1.Service](t, r, "web-published")
	if pub.Spec.Type != corev1.ServiceTypeLoadBalancer {
		t.Errorf("published type = %q", pub.Spec.Type)
	}
	got = nil
	for _, p := range pub.Spec.Ports {
		got = append(got, p.Name+">"+p.TargetPort.String())
	}
	if want := []string{"tcp-8080>80", "tcp-31000>81", "udp-53>53", "tcp-443>443"}; !slices.Equal(got, want) {
		t.Errorf("published ports = %v, want %v (loopback-only ports stay inside)", got, want)
	}
	if !warned(r, "127.0.0.1:9000", "loopback") {
		t.Errorf("no warning for a loopback-only port: %v", r.Warnings)
	}
	np := get[*networkingv1.NetworkPolicy](t, r, "web-published")
	if len(np.Spec.Ingress) != 1 || len(np.Spec.Ingress[0].From) != 0 || len(np.Spec.Ingress[0].Ports) != 4 {
		t.Errorf("published ports policy = %+v", np.Spec)
	}
	if hs := get[*corev1.Service](t, r, "quiet"); len(hs.Spec.Ports) != 0 || has[*corev1.Service](r, "quiet-published") {
		t.Error("a service without ports has ports")
	}

	r, err := convert(t, file, Options{PublishType: corev1.ServiceTypeNodePort})
	if err != nil {
		t.Fatal(err)
	}
	pub = get[*corev1.Service](t, r, "web-published")
	if pub.Spec.Type != corev1.ServiceTypeNodePort || pub.Spec.Ports[1].NodePort != 31000 || pub.Spec.Ports[0].NodePort != 0 {
		t.Errorf("NodePort service = %+v", pub.Spec)
	}
	if !warned(r, "8080:80", "30000-32767") {
		t.Errorf("no warning for a node port outside the range: %v", r.Warnings)
	}
}

func TestNames(t *testing.T) {
	t.Parallel()
	r := mustConvert(t, `name: names
services:
  my_db:
    image: db
    networks:
      default:
        aliases: [database, my_db]
  client:
    image: c
    links: ["my_db:legacy"]
`)
	if hs := get[*corev1.Service](t, r, "client"); hs.Spec.Selector[LabelService] != "client" {
		t.Errorf("Service client selects %v", hs.Spec.Selector)
	}
	get[*appsv1.Deployment](t, r, "my-db")
	if !warned(r, `"my_db"`, `"my-db"`) {
		t.Errorf("renaming is not warned about: %v", r.Warnings)
	}
	for _, alias := range []string{"database", "legacy"} {
		if s := get[*corev1.Service](t, r, alias); s.Spec.Selector[LabelService] != "my-db" || s.Spec.ClusterIP != corev1.ClusterIPNone {
			t.Errorf("alias %s: %+v", alias, s.Spec)
		}
	}

	// An alias that is another service's name loses, whatever the order.
	r = mustConvert(t, "services:\n  a:\n    image: x\n    networks: {default: {aliases: [z]}}\n  z: {image: y}\n")
	if s := get[*corev1.Service](t, r, "z"); s.Spec.Selector[LabelService] != "z" || !warned(r, `"a"`, "alias \"z\"") {
		t.Errorf("alias z took service z's name: %+v, warnings %v", s.Spec.Selector, r.Warnings)
	}

	// Names Kubernetes caps at 63 characters stay valid and distinct.
	long := strings.Repeat("x", 60)
	r = mustConvert(t, "services:\n  "+long+":\n    image: x\n    ports: ['80:80']\n  b:\n    image: y\n    depends_on: ["+long+"]\n")
	for _, o := range r.Objects {
		if s, ok := o.(*corev1.Service); ok && s.Spec.Type == corev1.ServiceTypeLoadBalancer {
			if len(s.Name) > 63 || !strings.HasPrefix(s.Name, long[:50]) || s.Name == long {
				t.Errorf("published Service name %q: want a distinct name of at most 63 characters", s.Name)
			}
		}
	}
	if pod, _ := deployment(t, r, "b"); len(pod.InitContainers[0].Name) > 63 {
		t.Errorf("init container name %q is longer than 63", pod.InitContainers[0].Name)
	}

	_, err := convert(t, "services:\n  a_b: {image: x}\n  a-b: {image: y}\n", Options{})
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), `"a-b"`) {
		t.Errorf("two services with one Kubernetes name: err = %v", err)
	}
	_, err = convert(t, "services:\n  web: {image: x, ports: ['80:80']}\n  web-published: {image: y}\n", Options{})
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "web-published") {
		t.Errorf("a service named like another's published Service: err = %v", err)
	}
}

func TestNetworks(t *testing.T) {
	t.Parallel()
	r := mustConvert(t, `name: nets
services:
  proxy:
    image: p
    networks: [front, back]
  app:
    image: a
    networks: [back]
  box:
    image: b
    network_mode: none
  hostnet:
    image: h
    network_mode: host
    pid: host
networks:
  front: {}
  back: {internal: true}
`)
	back := LabelNetworkPrefix + "back"
	front := LabelNetworkPrefix + "front"
	app := get[*appsv1.Deployment](t, r, "app").Spec.Template.Labels
	proxy := get[*appsv1.Deployment](t, r, "proxy").Spec.Template.Labels
	if app[back] != "true" || app[front] != "" || proxy[back] != "true" || proxy[front] != "true" {
		t.Errorf("network labels: app %v, proxy %v", app, proxy)
	}
	np := get[*networkingv1.NetworkPolicy](t, r, "network-back")
	if np.Spec.PodSelector.MatchLabels[back] != "true" || len(np.Spec.Ingress) != 1 ||
		np.Spec.Ingress[0].From[0].PodSelector.MatchLabels[back] != "true" ||
		!slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) {
		t.Errorf("network-back policy = %+v", np.Spec)
	}
	// back is internal: its pods with no other network reach only back and DNS.
	in := get[*networkingv1.NetworkPolicy](t, r, "network-back-internal")
	if len(in.Spec.PodSelector.MatchExpressions) != 1 || in.Spec.PodSelector.MatchExpressions[0].Key != front ||
		!slices.Equal(in.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}) || len(in.Spec.Egress) != 2 ||
		in.Spec.Egress[1].Ports[0].Port.IntValue() != 53 {
		t.Errorf("internal policy = %+v", in.Spec)
	}
	if has[*networkingv1.NetworkPolicy](r, "network-front-internal") {
		t.Error("a non-internal network restricts egress")
	}
	none := get[*networkingv1.NetworkPolicy](t, r, "box-no-network")
	if len(none.Spec.PolicyTypes) != 2 || len(none.Spec.Ingress)+len(none.Spec.Egress) != 0 {
		t.Errorf("network_mode none policy = %+v", none.Spec)
	}
	if !warned(r, `"hostnet"`, "network_mode") || !warned(r, `"hostnet"`, "pid", "host") {
		t.Errorf("host namespaces not warned about: %v", r.Warnings)
	}
}

func TestVolumes(t *testing.T) {
	t.Parallel()
	r := mustConvert(t, `name: vols
services:
  db:
    image: db
    volumes:
      - data:/data
      - type: volume
        source: data
        target: /backup
        read_only: true
        volume: {subpath: b}
      - /anon
      - type: tmpfs
        target: /scratch
        tmpfs: {size: 1m}
      - shared:/shared
    tmpfs: ["/run:size=64m", /tmp]
    shm_size: 128m
volumes:
  data:
    x-berth: {size: 5Gi, storage_class: fast}
    labels: {backup: daily}
  shared:
    external: true
    name: team-share
`)
	ss := get[*appsv1.StatefulSet](t, r, "db")
	pvc := get[*corev1.PersistentVolumeClaim](t, r, "data")
	if q := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; q.String() != "5Gi" || *pvc.Spec.StorageClassName != "fast" || pvc.Labels["backup"] != "daily" {
		t.Errorf("claim = %+v", pvc)
	}
	if has[*corev1.PersistentVolumeClaim](r, "shared") || has[*corev1.PersistentVolumeClaim](r, "team-share") {
		t.Error("an external volume got a claim")
	}
	vols := map[string]corev1.Volume{}
	for _, v := range ss.Spec.Template.Spec.Volumes {
		vols[v.Name] = v
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range ss.Spec.Template.Spec.Containers[0].VolumeMounts {
		mounts[m.MountPath] = m
	}
	claim := func(path string) string {
		v := vols[mounts[path].Name]
		if v.PersistentVolumeClaim == nil {
			return ""
		}
		return v.PersistentVolumeClaim.ClaimName
	}
	if claim("/data") != "data" || claim("/backup") != "data" || claim("/shared") != "team-share" {
		t.Errorf("claims: /data %q /backup %q /shared %q", claim("/data"), claim("/backup"), claim("/shared"))
	}
	if m := mounts["/backup"]; !m.ReadOnly || m.SubPath != "b" {
		t.Errorf("/backup mount = %+v", m)
	}
	memory := func(path string, size string) {
		t.Helper()
		ed := vols[mounts[path].Name].EmptyDir
		if ed == nil || ed.Medium != corev1.StorageMediumMemory {
			t.Errorf("%s is not a memory emptyDir: %+v", path, vols[mounts[path].Name])
			return
		}
		if got := ""; ed.SizeLimit != nil {
			got = ed.SizeLimit.String()
			if got != size {
				t.Errorf("%s size = %s, want %s", path, got, size)
			}
		} else if size != "" {
			t.Errorf("%s has no size, want %s", path, size)
		}
	}
	memory("/scratch", "1Mi")
	memory("/run", "64Mi")
	memory("/tmp", "")
	memory("/dev/shm", "128Mi")
	if ed := vols[mounts["/anon"].Name].EmptyDir; ed == nil || ed.Medium != "" {
		t.Errorf("anonymous volume = %+v", vols[mounts["/anon"].Name])
	}

	r = mustConvert(t, "services:\n  a:\n    image: a\n    volumes: [data:/d]\nvolumes:\n  data: {}\n")
	if q := get[*corev1.PersistentVolumeClaim](t, r, "data").Spec.Resources.Requests[corev1.ResourceStorage]; q.String() != "1Gi" {
		t.Errorf("default size = %s, want 1Gi", q.String())
	}
}

func TestBindMounts(t *testing.T) {
	t.Parallel()
	const file = `services:
  web:
    image: web
    volumes:
      - ./site:/usr/share/nginx/html:ro
      - ./init.sh:/docker-entrypoint.d/init.sh:ro
`
	files := []string{"site/index.html", "<h1>hi</h1>", "site/css/a b.css", "body{}", "init.sh", "#!/bin/sh\n"}
	mk := func(t *testing.T) string {
		dir := t.TempDir()
		for i := 0; i < len(files); i += 2 {
			p := filepath.Join(dir, files[i])
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, []byte(files[i+1]), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		os.Chmod(filepath.Join(dir, "init.sh"), 0o755)
		return dir
	}

	// Read-only binds of the project's files ship as ConfigMaps.
	r, err := convertIn(t, mk(t), file, Options{})
	if err != nil {
		t.Fatal(err)
	}
	site := get[*corev1.ConfigMap](t, r, "web-bind-0")
	if site.Data["index.html"] != "<h1>hi</h1>" || site.Data["css_a_b.css"] != "body{}" {
		t.Errorf("directory ConfigMap = %v", site.Data)
	}
	script := get[*corev1.ConfigMap](t, r, "web-bind-1")
	pod, c := deployment(t, r, "web")
	if pod.Volumes[0].ConfigMap == nil || len(pod.Volumes[0].ConfigMap.Items) != 2 || c.VolumeMounts[0].SubPath != "" || !c.VolumeMounts[0].ReadOnly {
		t.Errorf("directory volume %+v, mount %+v", pod.Volumes[0], c.VolumeMounts[0])
	}
	var paths []string
	for _, it := range pod.Volumes[0].ConfigMap.Items {
		paths = append(paths, it.Path)
	}
	if !slices.Contains(paths, "css/a b.css") {
		t.Errorf("item paths = %v, want the file's own path", paths)
	}
	if it := pod.Volumes[1].ConfigMap.Items; script.Data["init.sh"] == "" || len(it) != 1 || *it[0].Mode != 0o755 || c.VolumeMounts[1].SubPath != "init.sh" || c.VolumeMounts[1].MountPath != "/docker-entrypoint.d/init.sh" {
		t.Errorf("file ConfigMap %v, items %+v, mount %+v", script.Data, it, c.VolumeMounts[1])
	}
	if !warned(r, `"web"`, "./site:/usr/share/nginx/html:ro", "copy") {
		t.Errorf("the copy is not warned about: %v", r.Warnings)
	}

	for _, tc := range []struct{ name, volume, want string }{
		{"writable", "./site:/srv", "is writable"},
		{"outside the project", "/etc:/etc:ro", "outside the project directory"},
		{"missing", "./nope:/nope:ro", "cannot be read"},
	} {
		_, err := convertIn(t, mk(t), "services:\n  web:\n    image: web\n    volumes: ['"+tc.volume+"']\n", Options{})
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), `service "web": volumes: bind mount`) ||
			!strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "--hostpath") {
			t.Errorf("%s: err = %v", tc.name, err)
		}
	}

	// --hostpath mounts the node's paths instead, writable or not.
	r, err = convertIn(t, mk(t), "services:\n  web:\n    image: web\n    volumes: ['./site:/srv']\n", Options{HostPath: true})
	if err != nil {
		t.Fatal(err)
	}
	pod, _ = deployment(t, r, "web")
	if hp := pod.Volumes[0].HostPath; hp == nil || !strings.HasSuffix(hp.Path, "/site") {
		t.Errorf("hostPath volume = %+v", pod.Volumes[0])
	}
}

func TestSecretsAndConfigs(t *testing.T) {
	t.Parallel()
	r := mustConvert(t, `name: files
services:
  api:
    image: api
    secrets:
      - db_password
      - source: api_key
        target: /etc/api/key
        mode: 0400
        uid: "100"
    configs:
      - source: conf
        target: /etc/app.conf
        mode: 0440
      - inline
secrets:
  db_password: {file: ./pw.txt}
  api_key: {environment: API_KEY}
configs:
  conf: {file: ./app.conf}
  inline: {content: "x=1"}
`, "pw.txt", "s3cret\n", "app.conf", "a=b\n", ".env", "API_KEY=k3y\n")
	if s := get[*corev1.Secret](t, r, "db-password"); string(s.Data["db_password"]) != "s3cret\n" {
		t.Errorf("secret from file = %q", s.Data)
	}
	if s := get[*corev1.Secret](t, r, "api-key"); string(s.Data["api_key"]) != "k3y" {
		t.Errorf("secret from environment = %q", s.Data)
	}
	if cm := get[*corev1.ConfigMap](t, r, "conf"); cm.Data["conf"] != "a=b\n" {
		t.Errorf("config from file = %q", cm.Data)
	}
	if cm := get[*corev1.ConfigMap](t, r, "inline"); cm.Data["inline"] != "x=1" {
		t.Errorf("config from content = %q", cm.Data)
	}
	pod, c := deployment(t, r, "api")
	vols := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		vols[v.Name] = v
	}
	for _, tc := range []struct {
		path, object, file string
		mode               int32
	}{
		{"/run/secrets/db_password", "db-password", "db_password", 0o444},
		{"/etc/api/key", "api-key", "key", 0o400},
		{"/etc/app.conf", "conf", "app.conf", 0o440},
		{"/inline", "inline", "inline", 0o444},
	} {
		i := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == tc.path })
		if i < 0 {
			t.Errorf("nothing mounted at %s: %+v", tc.path, c.VolumeMounts)
			continue
		}
		m := c.VolumeMounts[i]
		v := vols[m.Name]
		var items []corev1.KeyToPath
		var object string
		if v.Secret != nil {
			object, items = v.Secret.SecretName, v.Secret.Items
		} else if v.ConfigMap != nil {
			object, items = v.ConfigMap.Name, v.ConfigMap.Items
		}
		if object != tc.object || len(items) != 1 || items[0].Path != tc.file || *items[0].Mode != tc.mode || m.SubPath != tc.file || !m.ReadOnly {
			t.Errorf("%s: volume %+v, mount %+v", tc.path, v, m)
		}
	}
	if !warned(r, `"api"`, "secrets", "uid and gid") {
		t.Errorf("uid not warned about: %v", r.Warnings)
	}

	_, err := convert(t, "services:\n  a:\n    image: a\n    secrets: [s]\nsecrets:\n  s: {environment: NOPE_NOT_SET}\n", Options{})
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), `service "a": secrets: s`) {
		t.Errorf("secret from a missing variable: err = %v", err)
	}
}

func TestDependsOn(t *testing.T) {
	t.Parallel()
	r := mustConvert(t, `name: deps
services:
  web:
    image: web
    depends_on:
      db: {condition: service_healthy}
      migrate: {condition: service_completed_successfully}
  db:
    image: db
  migrate:
    image: migrate
`)
	pod, _ := deployment(t, r, "web")
	if len(pod.InitContainers) != 2 {
		t.Fatalf("init containers = %+v", pod.InitContainers)
	}
	db, mig := pod.InitContainers[0], pod.InitContainers[1]
	if db.Name != "wait-for-db" || db.Image != "busybox:1.37" || !strings.Contains(db.Command[2], "nslookup db.$(NAMESPACE).svc.cluster.local.") {
		t.Errorf("service wait = %+v", db)
	}
	if mig.Name != "wait-for-migrate" || !slices.Contains(mig.Command, "job/migrate") || !slices.Contains(mig.Command, "--for=condition=complete") {
		t.Errorf("job wait = %+v", mig)
	}
	if pod.ServiceAccountName != "deps-job-waiter" || !*pod.AutomountServiceAccountToken {
		t.Errorf("job waiter account: %q, automount %v", pod.ServiceAccountName, *pod.AutomountServiceAccountToken)
	}
	if other, _ := deployment(t, r, "db"); *other.AutomountServiceAccountToken || other.ServiceAccountName != "" {
		t.Error("a pod that waits for no Job gets API credentials")
	}
	get[*corev1.ServiceAccount](t, r, "deps-job-waiter")
	role := get[*rbacv1.Role](t, r, "deps-job-waiter")
	if len(role.Rules) != 1 || !slices.Equal(role.Rules[0].Resources, []string{"jobs"}) || slices.Contains(role.Rules[0].Verbs, "create") {
		t.Errorf("waiter role = %+v", role.Rules)
	}
	get[*rbacv1.RoleBinding](t, r, "deps-job-waiter")
}

func TestMetadataAndPod(t *testing.T) {
	t.Parallel()
	r := mustConvert(t, `name: meta
services:
  web:
    image: web
    labels:
      com.example.team: web
      com.example.description: "The front door"
    annotations:
      example.com/owner: alice
    deploy:
      labels: {tier: frontend}
    hostname: frontdoor
    extra_hosts:
      - "a.local=10.0.0.1"
      - "b.local=10.0.0.1"
      - "c.local=10.0.0.2"
      - "host.docker.internal=host-gateway"
    platform: linux/arm64
    pull_policy: always
    sysctls: {net.core.somaxconn: "1024"}
    dns_search: [example.com]
    dns_opt: ["ndots:2"]
`)
	d := get[*appsv1.Deployment](t, r, "web")
	pod := d.Spec.Template
	if pod.Labels["com.example.team"] != "web" || pod.Annotations["com.example.description"] != "The front door" || pod.Annotations["example.com/owner"] != "alice" {
		t.Errorf("pod labels %v, annotations %v", pod.Labels, pod.Annotations)
	}
	if d.Labels["tier"] != "frontend" || pod.Labels["tier"] != "" {
		t.Errorf("deploy.labels: workload %v, pod %v", d.Labels, pod.Labels)
	}
	if !warned(r, "com.example.description", "annotation") {
		t.Errorf("label moved to annotations without a warning: %v", r.Warnings)
	}
	if pod.Spec.Hostname != "frontdoor" {
		t.Errorf("hostname = %q", pod.Spec.Hostname)
	}
	if got := pod.Spec.HostAliases; len(got) != 2 || got[0].IP != "10.0.0.1" || !slices.Equal(got[0].Hostnames, []string{"a.local", "b.local"}) || got[1].IP != "10.0.0.2" {
		t.Errorf("hostAliases = %+v", got)
	}
	if !warned(r, "extra_hosts", "host-gateway") {
		t.Errorf("host-gateway not warned about: %v", r.Warnings)
	}
	if pod.Spec.NodeSelector["kubernetes.io/arch"] != "arm64" || pod.Spec.Containers[0].ImagePullPolicy != corev1.PullAlways {
		t.Errorf("platform / pull_policy: %v %q", pod.Spec.NodeSelector, pod.Spec.Containers[0].ImagePullPolicy)
	}
	if s := pod.Spec.SecurityContext.Sysctls; len(s) != 1 || s[0].Value != "1024" {
		t.Errorf("sysctls = %+v", s)
	}
	if dc := pod.Spec.DNSConfig; dc == nil || dc.Searches[0] != "example.com" || dc.Options[0].Name != "ndots" || *dc.Options[0].Value != "2" {
		t.Errorf("dnsConfig = %+v", dc)
	}
	if *pod.Spec.EnableServiceLinks {
		t.Error("service links are enabled: Compose injects no such variables")
	}
}

func TestWarnings(t *testing.T) {
	t.Parallel()
	r := mustConvert(t, `name: warn
services:
  app:
    build: ./app
    devices: ["/dev/fuse"]
    ulimits: {nofile: 1024}
    container_name: the-app
    stop_signal: SIGQUIT
    init: true
    deploy:
      placement: {constraints: ["node.role==manager"]}
`)
	for _, key := range []string{"build", "devices", "ulimits", "container_name", "stop_signal", "init", "deploy.placement"} {
		if !warned(r, `service "app": `+key+": ") {
			t.Errorf("no warning for %s: %v", key, r.Warnings)
		}
	}
	if _, c := deployment(t, r, "app"); c.Image != "warn-app" {
		t.Errorf("image of a build without image = %q, want warn-app", c.Image)
	}
	// Each warning once.
	if len(slices.Compact(slices.Clone(r.Warnings))) != len(r.Warnings) {
		t.Errorf("duplicate warnings: %v", r.Warnings)
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, file, want string
	}{
		{"host port range", "services:\n  web: {image: x, ports: ['8000-8010:80']}\n", `service "web": ports: 8000-8010:80/tcp: a range of host ports`},
		{"bad size", "services:\n  a: {image: x, volumes: ['dd:/d']}\nvolumes:\n  dd: {x-berth: {size: lots}}\n", `volume "dd": x-berth.size "lots"`},
		{"bad expose", "services:\n  a: {image: x, expose: ['9-1']}\n", `service "a": expose: "9-1"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := convert(t, tc.file, Options{})
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("err = %v, want one line containing %q", err, tc.want)
			}
		})
	}
	for _, o := range []Options{{PublishType: "ClusterIP"}, {VolumeSize: "-1"}, {Namespace: "Bad_NS"}} {
		if _, err := convert(t, "services:\n  a: {image: x}\n", o); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("options %+v: err = %v", o, err)
		}
	}
}

func TestNamespace(t *testing.T) {
	t.Parallel()
	r, err := convert(t, "name: ns\nservices:\n  a: {image: x, depends_on: {b: {condition: service_completed_successfully}}}\n  b: {image: y}\n", Options{Namespace: "team"})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range r.Objects {
		if o.GetNamespace() != "team" {
			t.Errorf("%s/%s in namespace %q", o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), o.GetNamespace())
		}
	}
	if rb := get[*rbacv1.RoleBinding](t, r, "ns-job-waiter"); rb.Subjects[0].Namespace != "team" {
		t.Errorf("role binding subject namespace = %q", rb.Subjects[0].Namespace)
	}
}
