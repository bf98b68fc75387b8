package build

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// Dockerfile is a parsed Dockerfile: its stages in order and the ARGs
// declared before the first FROM.
type Dockerfile struct {
	Name     string // as the user named it, for messages
	Stages   []instructions.Stage
	MetaArgs []instructions.ArgCommand
	escape   rune
}

// maxDockerfile bounds what Parse reads: Docker's own limit is far below.
const maxDockerfile = 10 << 20

// Parse reads a Dockerfile. A syntax error or an unknown instruction is an
// InvalidArgument naming the file and line.
func Parse(name string, src []byte) (*Dockerfile, error) {
	if len(src) > maxDockerfile {
		return nil, fmt.Errorf("%s: larger than %d bytes: %w", name, maxDockerfile, errdefs.ErrInvalidArgument)
	}
	res, err := parser.Parse(bytes.NewReader(src))
	if err != nil {
		return nil, located(name, err)
	}
	stages, meta, err := instructions.Parse(res.AST, linter.New(&linter.Config{}))
	if err != nil {
		return nil, located(name, err)
	}
	if len(stages) == 0 {
		return nil, fmt.Errorf("%s: no FROM instruction: %w", name, errdefs.ErrInvalidArgument)
	}
	seen := map[string]int{}
	for i, s := range stages {
		if s.Name == "" {
			continue
		}
		n := strings.ToLower(s.Name)
		if j, ok := seen[n]; ok {
			return nil, fmt.Errorf("%s:%d: stage name %q is also used on line %d: %w", name, line(s.Location), s.Name, line(stages[j].Location), errdefs.ErrInvalidArgument)
		}
		seen[n] = i
	}
	return &Dockerfile{Name: name, Stages: stages, MetaArgs: meta, escape: res.EscapeToken}, nil
}

// located turns buildkit's errors into "<file>:<line>: <message>".
func located(name string, err error) error {
	msg := err.Error()
	var unknown *instructions.UnknownInstructionError
	if errors.As(err, &unknown) {
		msg = fmt.Sprintf("unknown instruction: %s", strings.ToUpper(unknown.Instruction))
	}
	var le *parser.LocationError
	if errors.As(err, &le) && len(le.Locations) > 0 && len(le.Locations[0]) > 0 {
		return fmt.Errorf("%s:%d: %s: %w", name, le.Locations[0][0].Start.Line, trimLocation(msg), errdefs.ErrInvalidArgument)
	}
	return fmt.Errorf("%s: %s: %w", name, msg, errdefs.ErrInvalidArgument)
}

// trimLocation drops the "dockerfile parse error on line N: " prefix
// buildkit puts in some messages, since ours names the line already.
func trimLocation(msg string) string {
	if _, rest, ok := strings.Cut(msg, "parse error on line "); ok {
		if _, after, ok := strings.Cut(rest, ": "); ok {
			return after
		}
	}
	return msg
}

// line is the first line of an instruction's location.
func line(loc []parser.Range) int {
	if len(loc) == 0 {
		return 0
	}
	return loc[0].Start.Line
}

// stageIndex finds a stage by name (case-insensitive) or index.
func (d *Dockerfile) stageIndex(ref string) (int, bool) {
	if i, ok := instructions.HasStage(d.Stages, ref); ok {
		return i, true
	}
	var n int
	if _, err := fmt.Sscanf(ref, "%d", &n); err == nil && fmt.Sprint(n) == ref && n >= 0 && n < len(d.Stages) {
		return n, true
	}
	return 0, false
}

// Target returns the index of the stage a build ends with: the named one,
// or the last.
func (d *Dockerfile) Target(name string) (int, error) {
	if name == "" {
		return len(d.Stages) - 1, nil
	}
	i, ok := instructions.HasStage(d.Stages, name)
	if !ok {
		return 0, fmt.Errorf("%s: target stage %q could not be found: %w", d.Name, name, errdefs.ErrNotFound)
	}
	return i, nil
}
