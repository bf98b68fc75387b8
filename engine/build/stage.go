package build

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"

	"github.com/berth-dev/berth/engine/image"
)

// step is one instruction being run, for progress and errors.
type step struct {
	r     *run
	stage string
	id    int
	index int
	total int
	text  string
	line  int
	start time.Time
}

func (s *step) event(st StepState) Event {
	return Event{Build: s.r.o.Name, Step: s.id, Stage: s.stage, Index: s.index, Total: s.total, Text: s.text, State: st}
}

func (s *step) emit(e Event) {
	if s.r.o.Progress != nil {
		s.r.o.Progress(e)
	}
}

func (s *step) started() { s.start = time.Now(); s.emit(s.event(StepStarted)) }
func (s *step) cached()  { s.emit(s.event(StepCached)) }
func (s *step) done() {
	e := s.event(StepDone)
	e.Duration = time.Since(s.start)
	s.emit(e)
}
func (s *step) log(line string) {
	e := s.event(StepLog)
	e.Line = line
	s.emit(e)
}

// errorf makes a step's error: "<who>: <Dockerfile>:<line>: <message>".
func (s *step) errorf(class error, format string, args ...any) error {
	err := fmt.Errorf("%s:%d: %s: %w", s.r.df.Name, s.line, fmt.Sprintf(format, args...), class)
	return s.failed(err)
}

// failed reports err (already located) as the step's failure.
func (s *step) failed(err error) error {
	e := s.event(StepFailed)
	e.Err = err
	s.emit(e)
	return s.r.fail(err)
}

// countsAsStep says which instructions BuildKit shows as steps of a stage.
func countsAsStep(c instructions.Command) bool {
	switch c.(type) {
	case *instructions.RunCommand, *instructions.CopyCommand, *instructions.AddCommand, *instructions.WorkdirCommand:
		return true
	}
	return false
}

// buildStage runs stage i: its base, its base's ONBUILD triggers, then
// its instructions.
func (r *run) buildStage(ctx context.Context, i int) (*state, error) {
	s := r.df.Stages[i]
	name := s.Name
	if i == len(r.df.Stages)-1 && r.o.Target == "" {
		name = "" // BuildKit leaves the final stage unnamed in progress
	}
	if name == "" && i != len(r.df.Stages)-1 {
		name = fmt.Sprintf("stage-%d", i)
	}
	total := 1
	for _, c := range s.Commands {
		if countsAsStep(c) {
			total++
		}
	}
	from := &step{r: r, stage: name, id: r.stepID(), index: 1, total: total, line: line(s.Location)}
	base, err := r.expand(s.BaseName, r.global)
	if err != nil {
		return nil, from.errorf(errdefs.ErrInvalidArgument, "FROM: %v", err)
	}
	from.text = "FROM " + base
	platform, err := r.expand(s.Platform, r.global)
	if err != nil {
		return nil, from.errorf(errdefs.ErrInvalidArgument, "FROM --platform: %v", err)
	}
	if err := CheckPlatform(platform); err != nil {
		return nil, from.failed(fmt.Errorf("%s:%d: %w", r.df.Name, from.line, err))
	}
	from.started()
	st, err := r.base(ctx, i, base)
	if err != nil {
		return nil, from.failed(fmt.Errorf("%s:%d: FROM %s: %w", r.df.Name, from.line, base, err))
	}
	from.done()

	cmds := s.Commands
	if triggers := st.cfg.Config.OnBuild; len(triggers) > 0 {
		var parsed []instructions.Command
		for _, t := range triggers {
			c, err := parseTrigger(t)
			if err != nil {
				return nil, from.errorf(errdefs.ErrInvalidArgument, "ONBUILD %s of the base image: %v", t, err)
			}
			parsed = append(parsed, c)
		}
		st.cfg.Config.OnBuild = nil
		cmds = append(parsed, cmds...)
	}
	index := 1
	for _, c := range cmds {
		sp := &step{r: r, stage: name, index: index, total: total, text: c.(fmt.Stringer).String(), line: line(c.Location())}
		if sp.line == 0 {
			sp.line = from.line // an ONBUILD trigger: where the stage begins
		}
		if countsAsStep(c) {
			index++
			sp.index = index
			sp.id = r.stepID()
		}
		if err := r.dispatch(ctx, st, c, sp); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// parseTrigger parses an ONBUILD trigger of a base image.
func parseTrigger(t string) (instructions.Command, error) {
	res, err := parser.Parse(strings.NewReader(t))
	if err != nil {
		return nil, err
	}
	if len(res.AST.Children) != 1 {
		return nil, fmt.Errorf("not one instruction")
	}
	v, err := instructions.ParseInstruction(res.AST.Children[0])
	if err != nil {
		return nil, err
	}
	c, ok := v.(instructions.Command)
	switch v.(type) {
	case *instructions.OnbuildCommand, *instructions.MaintainerCommand:
		ok = false
	}
	if !ok {
		return nil, fmt.Errorf("%s is not allowed as an ONBUILD trigger", strings.ToUpper(res.AST.Children[0].Value))
	}
	return c, nil
}

// base starts a stage's state from its FROM: an earlier stage, scratch, a
// named context or an image.
func (r *run) base(ctx context.Context, i int, ref string) (*state, error) {
	if j, ok := r.df.stageIndex(ref); ok && j < i {
		p, err := r.waitStage(ctx, j)
		if err != nil {
			return nil, err
		}
		return p.clone(), nil
	}
	if strings.EqualFold(ref, "scratch") {
		st := &state{cfg: newConfig(), key: key("", "scratch")}
		st.defaultPath()
		return st, nil
	}
	img, err := r.image(ctx, ref)
	if err != nil {
		return nil, err
	}
	cfg, err := r.b.Images.ConfigFile(img)
	if err != nil {
		return nil, err
	}
	st := &state{cfg: *cfg.DeepCopy(), layers: slices.Clone(img.Layers), key: key("", "image", img.ID), created: img.Created}
	st.defaultPath()
	return st, nil
}

// image finds a base image (or a COPY --from one): a named context that
// is an image, or a stored image, pulled when missing or when the build
// asks to pull.
func (r *run) image(ctx context.Context, ref string) (image.Image, error) {
	if c, ok := r.o.Contexts[ref]; ok {
		if img, ok := strings.CutPrefix(c, "docker-image://"); ok {
			ref = img
		}
	}
	img, err := r.b.Images.Get(ctx, ref)
	if err == nil && !r.o.Pull {
		return img, nil
	}
	if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return image.Image{}, err
	}
	if r.b.Pull == nil {
		if err != nil {
			return image.Image{}, fmt.Errorf("image %q not found; import or pull it first: %w", ref, errdefs.ErrNotFound)
		}
		return img, nil
	}
	pulled, perr := r.b.Pull(ctx, ref)
	if perr != nil {
		if err == nil {
			return image.Image{}, perr // --pull asked for a fresh one
		}
		return image.Image{}, fmt.Errorf("image %q is not here and could not be pulled: %w", ref, perr)
	}
	return pulled, nil
}

// dispatch runs one instruction on st.
func (r *run) dispatch(ctx context.Context, st *state, c instructions.Command, sp *step) error {
	env := st.env()
	if e, ok := c.(instructions.SupportsSingleWordExpansion); ok {
		if err := e.Expand(func(w string) (string, error) { return r.expand(w, env) }); err != nil {
			return sp.errorf(errdefs.ErrInvalidArgument, "%s: %v", strings.ToUpper(c.Name()), err)
		}
	}
	if e, ok := c.(instructions.SupportsSingleWordExpansionRaw); ok {
		if err := e.ExpandRaw(func(w string) (string, error) { return r.expand(w, env) }); err != nil {
			return sp.errorf(errdefs.ErrInvalidArgument, "%s: %v", strings.ToUpper(c.Name()), err)
		}
	}
	cfg := &st.cfg.Config
	switch c := c.(type) {
	case *instructions.RunCommand:
		return r.runStep(ctx, st, c, sp)
	case *instructions.CopyCommand:
		return r.copyStep(ctx, st, copyCmd{
			name: "COPY", SourcesAndDest: c.SourcesAndDest, from: c.From, chown: c.Chown, chmod: c.Chmod,
			exclude: c.ExcludePatterns, parents: c.Parents,
		}, sp)
	case *instructions.AddCommand:
		return r.copyStep(ctx, st, copyCmd{
			name: "ADD", SourcesAndDest: c.SourcesAndDest, chown: c.Chown, chmod: c.Chmod,
			exclude: c.ExcludePatterns, checksum: c.Checksum, unpack: c.Unpack, add: true,
		}, sp)
	case *instructions.WorkdirCommand:
		return r.workdirStep(ctx, st, c, sp)
	case *instructions.ArgCommand:
		for _, kv := range c.Args {
			v, given := r.o.Args[kv.Key]
			switch {
			case given:
			case kv.Value != nil:
				v = *kv.Value
			default:
				gv, ok := r.global[kv.Key]
				if !ok {
					if st.args != nil {
						delete(st.args, kv.Key)
					}
					continue
				}
				v = gv
			}
			if st.args == nil {
				st.args = map[string]string{}
			}
			st.args[kv.Key] = v
		}
		st.key = key(st.key, "ARG", st.args)
		return nil // not in the image's history, as with BuildKit
	case *instructions.EnvCommand:
		for _, kv := range c.Env {
			st.setEnv(kv.Key, kv.Value)
		}
	case *instructions.LabelCommand:
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		for _, kv := range c.Labels {
			cfg.Labels[kv.Key] = kv.Value
		}
	case *instructions.MaintainerCommand:
		st.cfg.Author = c.Maintainer
	case *instructions.UserCommand:
		cfg.User = c.User
	case *instructions.ExposeCommand:
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range c.Ports {
			ports, err := exposedPorts(r, env, p)
			if err != nil {
				return sp.errorf(errdefs.ErrInvalidArgument, "EXPOSE %s: %v", p, err)
			}
			for _, port := range ports {
				cfg.ExposedPorts[port] = struct{}{}
			}
		}
	case *instructions.VolumeCommand:
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		for _, v := range c.Volumes {
			if v == "" {
				return sp.errorf(errdefs.ErrInvalidArgument, "VOLUME specified can not be an empty string")
			}
			cfg.Volumes[v] = struct{}{}
		}
	case *instructions.StopSignalCommand:
		cfg.StopSignal = c.Signal
	case *instructions.ShellCommand:
		cfg.Shell = slices.Clone(c.Shell)
	case *instructions.CmdCommand:
		cfg.Cmd = r.withShell(st, c.ShellDependantCmdLine)
		st.cmdSet = true
	case *instructions.EntrypointCommand:
		cfg.Entrypoint = r.withShell(st, c.ShellDependantCmdLine)
		if !st.cmdSet {
			cfg.Cmd = nil // an inherited CMD goes with a new ENTRYPOINT, as in Docker
		}
	case *instructions.HealthCheckCommand:
		h := c.Health
		cfg.Healthcheck = &v1.HealthConfig{
			Test: slices.Clone(h.Test), Interval: h.Interval, Timeout: h.Timeout,
			StartPeriod: h.StartPeriod, Retries: h.Retries,
		}
	case *instructions.OnbuildCommand:
		cfg.OnBuild = append(cfg.OnBuild, c.Expression)
	default:
		return sp.errorf(errdefs.ErrNotImplemented, "instruction %s is not supported", strings.ToUpper(c.Name()))
	}
	text := sp.text
	st.key = key(st.key, "meta", text, c)
	st.addHistory(v1.History{Created: v1.Time{Time: st.created}, CreatedBy: text, Comment: "buildkit.dockerfile.v0", EmptyLayer: true}, nil)
	return nil
}

// withShell gives a shell-form CMD, ENTRYPOINT or RUN its shell.
func (r *run) withShell(st *state, c instructions.ShellDependantCmdLine) []string {
	if !c.PrependShell {
		return slices.Clone(c.CmdLine)
	}
	sh := st.cfg.Config.Shell
	if len(sh) == 0 {
		sh = []string{"/bin/sh", "-c"}
	}
	return append(slices.Clone(sh), strings.Join(c.CmdLine, " "))
}

// exposedPorts expands "80", "80/udp" or "8000-8002" into "80/tcp" keys.
func exposedPorts(r *run, env map[string]string, p string) ([]string, error) {
	p, err := r.expand(p, env)
	if err != nil {
		return nil, err
	}
	port, proto, _ := strings.Cut(p, "/")
	if proto == "" {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return nil, fmt.Errorf("invalid protocol %q", proto)
	}
	lo, hi, isRange := strings.Cut(port, "-")
	var a, b int
	if _, err := fmt.Sscanf(lo, "%d", &a); err != nil || fmt.Sprint(a) != lo || a < 0 || a > 65535 {
		return nil, fmt.Errorf("invalid port %q", port)
	}
	b = a
	if isRange {
		if _, err := fmt.Sscanf(hi, "%d", &b); err != nil || fmt.Sprint(b) != hi || b < a || b > 65535 {
			return nil, fmt.Errorf("invalid port range %q", port)
		}
	}
	var out []string
	for n := a; n <= b; n++ {
		out = append(out, fmt.Sprintf("%d/%s", n, proto))
	}
	return out, nil
}

// workdir resolves a path against the stage's working directory.
func workdir(st *state, p string) string {
	if path.IsAbs(p) {
		return path.Clean(p)
	}
	wd := st.cfg.Config.WorkingDir
	if wd == "" {
		wd = "/"
	}
	return path.Join(wd, p)
}
