package kube

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"
	"github.com/docker/go-units"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// namedVolumes are the project volumes the service mounts.
func namedVolumes(s types.ServiceConfig) []string {
	var out []string
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeVolume && v.Source != "" {
			out = append(out, v.Source)
		}
	}
	return out
}

// mount adds a pod volume (once per name) and mounts it in the container.
func (pd *pod) mount(v corev1.Volume, m corev1.VolumeMount) {
	if !slices.ContainsFunc(pd.spec.Volumes, func(x corev1.Volume) bool { return x.Name == v.Name }) {
		pd.spec.Volumes = append(pd.spec.Volumes, v)
	}
	m.Name = v.Name
	pd.ctr.VolumeMounts = append(pd.ctr.VolumeMounts, m)
}

// volumes maps volumes, tmpfs and shm_size: named volumes become
// PersistentVolumeClaims, anonymous ones and tmpfs emptyDirs, bind mounts
// an error (or hostPath volumes when asked for).
func (c *converter) volumes(pd *pod) error {
	s := pd.s
	for i, v := range s.Volumes {
		where := fmt.Sprintf("volumes[%d] %s", i, v.Target)
		m := corev1.VolumeMount{MountPath: v.Target, ReadOnly: v.ReadOnly}
		switch v.Type {
		case types.VolumeTypeVolume:
			if v.Source == "" {
				pd.mount(corev1.Volume{Name: fmt.Sprintf("anon-%d", i), VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}, m)
				continue
			}
			claim, err := c.claim(v.Source)
			if err != nil {
				return fmt.Errorf("service %q: %s: %w", s.Name, where, err)
			}
			if v.Volume != nil {
				m.SubPath = v.Volume.Subpath
			}
			pd.mount(corev1.Volume{Name: label63("vol-", claim), VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim},
			}}, m)
		case types.VolumeTypeBind:
			if c.o.HostPath {
				pd.mount(corev1.Volume{Name: fmt.Sprintf("bind-%d", i), VolumeSource: corev1.VolumeSource{
					HostPath: &corev1.HostPathVolumeSource{Path: v.Source},
				}}, m)
				continue
			}
			if err := c.bindConfigMap(pd, i, v); err != nil {
				return err
			}
		case types.VolumeTypeTmpfs:
			var size int64
			if v.Tmpfs != nil {
				size = int64(v.Tmpfs.Size)
				if v.Tmpfs.Mode != 0 {
					c.warn(svc(s.Name), "volumes", "tmpfs %s: mode has no equivalent in an emptyDir; dropped", v.Target)
				}
			}
			pd.mount(memoryDir(fmt.Sprintf("tmpfs-%d", i), size), m)
		default:
			c.warn(svc(s.Name), "volumes", "%s volume at %s has no equivalent here; dropped", v.Type, v.Target)
		}
	}
	for i, t := range s.Tmpfs {
		target, opts, _ := strings.Cut(t, ":")
		var size int64
		for _, o := range strings.Split(opts, ",") {
			if k, val, _ := strings.Cut(o, "="); k == "size" {
				n, err := units.RAMInBytes(val)
				if err != nil {
					return fmt.Errorf("service %q: tmpfs %q: size %q: %w", s.Name, t, val, errdefs.ErrInvalidArgument)
				}
				size = n
			}
		}
		pd.mount(memoryDir(fmt.Sprintf("tmpfs-s%d", i), size), corev1.VolumeMount{MountPath: target})
	}
	if s.ShmSize > 0 {
		pd.mount(memoryDir("shm", int64(s.ShmSize)), corev1.VolumeMount{MountPath: "/dev/shm"})
	}
	return nil
}

// memoryDir is a tmpfs: an emptyDir in memory, of size bytes when not 0.
func memoryDir(name string, size int64) corev1.Volume {
	ed := &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}
	if size > 0 {
		ed.SizeLimit = resource.NewQuantity(size, resource.BinarySI)
	}
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: ed}}
}

// xBerthVolume is the x-berth extension of a top-level volume.
type xBerthVolume struct {
	Size         string `json:"size"`
	StorageClass string `json:"storage_class"`
}

// claim makes (once) the PersistentVolumeClaim of a project volume and
// returns its name; an external volume names a claim that must exist.
func (c *converter) claim(key string) (string, error) {
	v, ok := c.p.Volumes[key]
	if !ok {
		return "", fmt.Errorf("volume %q is not declared: %w", key, errdefs.ErrInvalidArgument)
	}
	if v.External {
		name := key
		if v.Name != "" {
			name = v.Name
		}
		return dnsName(name)
	}
	name, err := dnsName(key)
	if err != nil {
		return "", err
	}
	if c.claims[name] {
		return name, nil
	}
	c.claims[name] = true
	var x xBerthVolume
	if raw, ok := v.Extensions["x-berth"]; ok {
		b, _ := json.Marshal(raw)
		if err := json.Unmarshal(b, &x); err != nil {
			return "", fmt.Errorf("volume %q: x-berth: %v: %w", key, err, errdefs.ErrInvalidArgument)
		}
	}
	size := c.size
	if x.Size != "" {
		q, err := resource.ParseQuantity(x.Size)
		if err != nil || q.Sign() <= 0 {
			return "", fmt.Errorf("volume %q: x-berth.size %q: must be a positive quantity such as 5Gi: %w", key, x.Size, errdefs.ErrInvalidArgument)
		}
		size = q
	}
	if v.Driver != "" && v.Driver != "local" || len(v.DriverOpts) > 0 {
		c.warn(fmt.Sprintf("volume %q", key), "driver", "volume drivers have no equivalent here; the claim uses the cluster's storage (x-berth.storage_class chooses a class)")
	}
	meta := c.meta(name, "")
	c.addLabels(fmt.Sprintf("volume %q", key), "labels", meta.Labels, nil, v.Labels)
	pvc := &corev1.PersistentVolumeClaim{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
		ObjectMeta: meta,
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}},
		},
	}
	if x.StorageClass != "" {
		pvc.Spec.StorageClassName = ptr(x.StorageClass)
	}
	c.add(pvc)
	return name, nil
}

// files mounts secrets (as Secrets) and configs (as ConfigMaps) at the
// same paths and with the same modes as Compose.
func (c *converter) files(pd *pod) error {
	for _, ref := range pd.s.Secrets {
		def, ok := c.p.Secrets[ref.Source]
		if !ok {
			return fmt.Errorf("service %q: secrets: %q is not declared: %w", pd.s.Name, ref.Source, errdefs.ErrInvalidArgument)
		}
		target := ref.Target
		if !path.IsAbs(target) {
			target = path.Join("/run/secrets", cmp.Or(target, ref.Source))
		}
		if err := c.file(pd, "secret", types.FileReferenceConfig(ref), types.FileObjectConfig(def), target); err != nil {
			return err
		}
	}
	for _, ref := range pd.s.Configs {
		def, ok := c.p.Configs[ref.Source]
		if !ok {
			return fmt.Errorf("service %q: configs: %q is not declared: %w", pd.s.Name, ref.Source, errdefs.ErrInvalidArgument)
		}
		target := cmp.Or(ref.Target, "/"+ref.Source)
		if !path.IsAbs(target) {
			target = "/" + target
		}
		if err := c.file(pd, "config", types.FileReferenceConfig(ref), types.FileObjectConfig(def), target); err != nil {
			return err
		}
	}
	return nil
}

// file mounts one secret or config: the object holds it under its Compose
// name as key, and a subPath mount puts that one file at target.
func (c *converter) file(pd *pod, kind string, ref types.FileReferenceConfig, def types.FileObjectConfig, target string) error {
	where := fmt.Sprintf("service %q: %ss: %s", pd.s.Name, kind, ref.Source)
	name := ref.Source
	if def.External && def.Name != "" {
		name = def.Name
	}
	objName, err := dnsName(name)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if !def.External {
		if err := c.fileObject(kind, ref.Source, objName, def); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
	}
	if ref.UID != "" || ref.GID != "" {
		c.warn(svc(pd.s.Name), kind+"s", "%s: uid and gid have no equivalent for a mounted file (the pod's fsGroup applies); dropped", ref.Source)
	}
	mode := int32(0o444)
	if ref.Mode != nil {
		mode = int32(*ref.Mode)
	}
	file := path.Base(target)
	items := []corev1.KeyToPath{{Key: ref.Source, Path: file, Mode: ptr(mode)}}
	vol := corev1.Volume{Name: label63(kind+"-", objName)}
	if kind == "secret" {
		vol.Secret = &corev1.SecretVolumeSource{SecretName: objName, Items: items}
	} else {
		vol.ConfigMap = &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: objName}, Items: items}
	}
	// Two mounts of one object under different file names need two pod
	// volumes.
	for i := 2; slices.ContainsFunc(pd.spec.Volumes, func(x corev1.Volume) bool { return x.Name == vol.Name }); i++ {
		vol.Name = label63(fmt.Sprintf("%s%d-", kind, i), objName)
	}
	pd.mount(vol, corev1.VolumeMount{MountPath: target, SubPath: file, ReadOnly: true})
	return nil
}

// fileObject makes (once) the Secret or ConfigMap holding a file's content.
func (c *converter) fileObject(kind, key, objName string, def types.FileObjectConfig) error {
	id := kind + "/" + objName
	if c.secrets[id] {
		return nil
	}
	c.secrets[id] = true
	var data []byte
	switch {
	case def.Content != "":
		data = []byte(def.Content)
	case def.Environment != "":
		v, ok := c.p.Environment[def.Environment]
		if !ok {
			return fmt.Errorf("environment variable %q is not set: %w", def.Environment, errdefs.ErrInvalidArgument)
		}
		data = []byte(v)
	case def.File != "":
		b, err := os.ReadFile(def.File)
		if err != nil {
			return fmt.Errorf("file: %w: %w", err, errdefs.ErrInvalidArgument)
		}
		data = b
	default:
		return fmt.Errorf("no file, environment or content: %w", errdefs.ErrInvalidArgument)
	}
	if def.Driver != "" || def.TemplateDriver != "" {
		c.warn(fmt.Sprintf("%s %q", kind, key), "driver", "drivers have no equivalent here; the content is stored as is")
	}
	meta := c.meta(objName, "")
	c.addLabels(fmt.Sprintf("%s %q", kind, key), "labels", meta.Labels, nil, def.Labels)
	if kind == "secret" {
		c.add(&corev1.Secret{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: meta,
			Type:       corev1.SecretTypeOpaque,
			Data:       map[string][]byte{key: data},
		})
		return nil
	}
	cm := &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}, ObjectMeta: meta}
	if utf8.Valid(data) {
		cm.Data = map[string]string{key: string(data)}
	} else {
		cm.BinaryData = map[string][]byte{key: data}
	}
	c.add(cm)
	return nil
}

// maxConfigMap is what a ConfigMap may hold (the API server refuses
// objects over 1 MiB), with room for the object around the data.
const maxConfigMap = 1000 * 1024

// bindConfigMap ships the files of a read-only bind mount from the project
// directory (configuration, init scripts, static pages: what Compose
// projects bind most) as a ConfigMap mounted at the same place with the
// files' modes. A cluster has no equivalent of any other bind mount.
func (c *converter) bindConfigMap(pd *pod, i int, v types.ServiceVolumeConfig) error {
	s := pd.s
	shown := relTo(c.p.WorkingDir, v.Source)
	fail := func(why string) error {
		return fmt.Errorf("service %q: volumes: bind mount %s:%s %s; use a named volume or a config, or allow hostPath volumes (--hostpath) to mount the node's %s: %w",
			s.Name, shown, v.Target, why, v.Source, errdefs.ErrInvalidArgument)
	}
	if !v.ReadOnly {
		return fail("is writable, which a cluster cannot give (a read-only one, :ro, is shipped as a ConfigMap)")
	}
	if strings.HasPrefix(shown, "/") {
		return fail("is outside the project directory")
	}
	fi, err := os.Stat(v.Source)
	if err != nil {
		return fail(fmt.Sprintf("cannot be read (%v)", err))
	}
	name := label63(c.names[s.Name], fmt.Sprintf("-bind-%d", i))
	cm := &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}, ObjectMeta: c.meta(name, s.Name)}
	var items []corev1.KeyToPath
	total := 0
	add := func(path, rel string, mode fs.FileMode) error {
		b, err := os.ReadFile(path)
		if err != nil {
			return fail(fmt.Sprintf("cannot be read (%v)", err))
		}
		if total += len(b); total > maxConfigMap {
			return fail("holds more than a ConfigMap can (1 MiB)")
		}
		// ConfigMap keys are flat: the path goes into the item.
		key := strings.Map(func(r rune) rune {
			if r == '-' || r == '.' || r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
				return r
			}
			return '_'
		}, rel)
		for n := 2; cm.Data[key] != "" || cm.BinaryData[key] != nil; n++ {
			key = fmt.Sprintf("%s_%d", key, n)
		}
		if utf8.Valid(b) {
			if cm.Data == nil {
				cm.Data = map[string]string{}
			}
			cm.Data[key] = string(b)
		} else {
			if cm.BinaryData == nil {
				cm.BinaryData = map[string][]byte{}
			}
			cm.BinaryData[key] = b
		}
		items = append(items, corev1.KeyToPath{Key: key, Path: rel, Mode: ptr(int32(mode.Perm()))})
		return nil
	}
	m := corev1.VolumeMount{MountPath: v.Target, ReadOnly: true}
	if fi.Mode().IsRegular() {
		if err := add(v.Source, filepath.Base(v.Source), fi.Mode()); err != nil {
			return err
		}
		m.SubPath = filepath.Base(v.Source)
	} else if fi.IsDir() {
		err := filepath.WalkDir(v.Source, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return fail(fmt.Sprintf("cannot be read (%v)", err))
			}
			if d.IsDir() {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(v.Source, path)
			if !info.Mode().IsRegular() {
				return fail(fmt.Sprintf("holds %s, which is not a regular file", rel))
			}
			return add(path, filepath.ToSlash(rel), info.Mode())
		})
		if err != nil {
			return err
		}
	} else {
		return fail("is neither a file nor a directory")
	}
	c.add(cm)
	pd.mount(corev1.Volume{Name: fmt.Sprintf("bind-%d", i), VolumeSource: corev1.VolumeSource{
		ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: name}, Items: items},
	}}, m)
	c.warn(svc(s.Name), "volumes", "%s:%s:ro is shipped as ConfigMap %q, a copy of the files taken now: convert again after changing them", shown, v.Target, name)
	return nil
}

// relTo shows path relative to the project directory, as ./path, when it
// lies inside it.
func relTo(dir, path string) string {
	rel, err := filepath.Rel(dir, path)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return path
	}
	return "./" + rel
}
