package build

import (
	"maps"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-dev/berth/engine/image"
)

// state is a stage's image as it is being built: its config (history
// included), its layers and the cache key of its last step.
type state struct {
	cfg     v1.ConfigFile
	layers  []image.Layer
	key     string
	created time.Time // of the last step that made a layer, or the base's
	// ARGs this stage declared, with their values (unset ones absent).
	args   map[string]string
	cmdSet bool // CMD was given in this stage (ENTRYPOINT keeps it)
}

// clone copies st for a stage that starts FROM it.
func (st *state) clone() *state {
	c := *st
	c.cfg = *st.cfg.DeepCopy()
	c.layers = slices.Clone(st.layers)
	c.args = nil
	c.cmdSet = false
	return &c
}

// chainIDs names the stage's unpacked layers.
func (st *state) chainIDs() []string {
	ids := make([]string, len(st.layers))
	for i, l := range st.layers {
		ids[i] = l.DiffID
	}
	return image.ChainIDs(ids)
}

// config is the image config to store.
func (st *state) config() *v1.ConfigFile {
	c := st.cfg.DeepCopy()
	c.Created = v1.Time{Time: st.created}
	c.RootFS = v1.RootFS{Type: "layers", DiffIDs: nil}
	for _, l := range st.layers {
		c.RootFS.DiffIDs = append(c.RootFS.DiffIDs, mustHash(l.DiffID))
	}
	return c
}

func mustHash(s string) v1.Hash {
	h, err := v1.NewHash(s)
	if err != nil {
		panic("build: bad digest " + s)
	}
	return h
}

// env is what words are expanded with: the ARGs in scope, overridden by
// the image's environment.
func (st *state) env() map[string]string {
	out := maps.Clone(st.args)
	if out == nil {
		out = map[string]string{}
	}
	for _, kv := range st.cfg.Config.Env {
		k, v, _ := strings.Cut(kv, "=")
		out[k] = v
	}
	return out
}

// setEnv sets one variable of the image's environment.
func (st *state) setEnv(k, v string) {
	for i, kv := range st.cfg.Config.Env {
		if name, _, _ := strings.Cut(kv, "="); name == k {
			st.cfg.Config.Env[i] = k + "=" + v
			return
		}
	}
	st.cfg.Config.Env = append(st.cfg.Config.Env, k+"="+v)
}

// addHistory records a step; a step without a layer is an empty layer.
func (st *state) addHistory(h v1.History, layer *image.Layer) {
	st.cfg.History = append(st.cfg.History, h)
	if layer != nil {
		st.layers = append(st.layers, *layer)
		st.created = h.Created.Time
	}
}

// defaultPath gives a base without PATH the usual one, as BuildKit does.
func (st *state) defaultPath() {
	if _, ok := st.env()["PATH"]; !ok {
		st.setEnv("PATH", defaultPath)
	}
}

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
