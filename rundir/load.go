package rundir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/fit"
	"github.com/ifa-toolkit/ifa/internal/catch"
	"github.com/ifa-toolkit/ifa/internal/nn"
)

// Run is a run directory and what its config.json says.
type Run struct {
	// Dir is the run directory; Config its config.json.
	Dir, Config string
	// Params are config.json's command and model record.
	Params Params
}

// Open reads the run directory dir: its config.json must exist and record a valid model.
func Open(dir string) (*Run, error) {
	params, err := ReadParams(dir)
	cfg := filepath.Join(dir, fit.ConfigFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: not an ifa run directory (no %s)", dir, fit.ConfigFile)
	}
	if err != nil {
		return nil, err
	}
	if err := params.Model.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg, err)
	}
	return &Run{Dir: dir, Config: cfg, Params: params}, nil
}

// LatestCheckpoint is the run's newest checkpoint ("" when it has none).
func (r *Run) LatestCheckpoint() (string, error) { return fit.LatestCheckpoint(r.Dir) }

// Resolve turns path — a checkpoint file, or a run directory for its newest checkpoint — into a
// checkpoint file and the run it belongs to: the directory holding config.json next to the
// checkpoints/ folder, or beside the file. run is nil when no config.json is found (a checkpoint
// copied out of its run).
func Resolve(path string) (file string, run *Run, err error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return "", nil, fmt.Errorf("%s: no such checkpoint file or run directory", path)
	}
	file, err = fit.ResolveCheckpoint(path)
	if err != nil {
		return "", nil, err
	}
	candidates := []string{filepath.Dir(file)}
	if filepath.Base(filepath.Dir(file)) == "checkpoints" {
		candidates = []string{filepath.Dir(filepath.Dir(file)), filepath.Dir(file)}
	}
	for _, dir := range candidates {
		run, err := Open(dir)
		if err == nil {
			return file, run, nil
		}
		if _, serr := ReadParams(dir); !errors.Is(serr, fs.ErrNotExist) {
			return "", nil, err
		}
	}
	return file, nil, nil
}

// Want is what a loader expects of the model in a checkpoint.
type Want struct {
	// Flag names the flag that gave the path, e.g. "--teacher", in messages.
	Flag string
	// Family, when set, is the model family required (FamilyCNN, FamilyViT).
	Family string
	// Classifier requires a model with a classifier (logits).
	Classifier bool
	// Model, when set, is the very model required (family, name, configuration, classes and input
	// shape; the scope and the data section aside).
	Model *Model
	// What describes the requirement in messages, e.g. "a CNN classifier (an 'ifa train' run)".
	What string
}

// Loaded is a verified checkpoint and the model it holds.
type Loaded struct {
	// File is the checkpoint file; Run its run (nil when the file has no config.json beside it).
	File string
	Run  *Run
	// Model is the model the checkpoint holds (from config.json, or from the checkpoint's header
	// record without one).
	Model Model
	// Checkpoint is the file's content.
	Checkpoint *fit.Checkpoint
	// Warnings are what the caller should log (e.g. a checkpoint without a model record).
	Warnings []string
}

// Load resolves path (a checkpoint file or a run directory), reads and verifies the checkpoint and
// checks the model it holds: the header's record against the run's config.json, both against want,
// and the checkpoint's variables against the ones the model declares (built on backend, without
// compiling). Every refusal is one line naming the file, what it holds and what was expected.
func Load(backend backends.Backend, path string, want Want) (*Loaded, error) {
	flag := want.Flag
	if flag != "" {
		flag += " "
	}
	file, run, err := Resolve(path)
	if err != nil {
		return nil, fmt.Errorf("%s%w", flag, err)
	}
	ck, err := fit.LoadCheckpoint(file)
	if err != nil {
		return nil, fmt.Errorf("%s%w", flag, err)
	}
	l := &Loaded{File: file, Run: run, Checkpoint: ck}
	info := ck.Info()
	if run != nil {
		l.Model = run.Params.Model
		if err := CheckFile(backend, info, l.Model, run.Config+" records"); err != nil {
			return nil, fmt.Errorf("%s%w", flag, err)
		}
		if _, ok := info.Model(l.Model.Scope); !ok {
			l.Warnings = append(l.Warnings, fmt.Sprintf("%s has no model record (written by an older ifa): its variables match %s, which %s records",
				file, l.Model.Record("").String(), run.Config))
		}
	} else {
		// No config.json: the checkpoint's own record, when it has exactly one model.
		if len(ck.Models) == 0 {
			return nil, fmt.Errorf("%s%s: no %s beside it and no model record in it (ifa writes both): cannot tell which model it holds",
				flag, file, fit.ConfigFile)
		}
		rec := ck.Models[0]
		if len(ck.Models) > 1 {
			for _, m := range ck.Models {
				if m.Role != "teacher" {
					rec = m
					break
				}
			}
		}
		if l.Model, err = FromRecord(rec); err != nil {
			return nil, fmt.Errorf("%s%s: %w", flag, file, err)
		}
		if err := CheckFile(backend, info, l.Model, "its header records"); err != nil {
			return nil, fmt.Errorf("%s%w", flag, err)
		}
	}
	if err := want.check(file, l.Model); err != nil {
		return nil, fmt.Errorf("%s%w", flag, err)
	}
	return l, nil
}

// check compares the loaded model with the requirement.
func (w Want) check(file string, m Model) error {
	what := w.What
	rec := m.Record("")
	switch {
	case w.Family != "" && m.Family != w.Family, w.Classifier && m.Classes() == 0:
		if what == "" {
			what = "a " + w.Family + " model"
			if w.Classifier {
				what += " with a classifier"
			}
		}
		return fmt.Errorf("%s holds %s, want %s", file, rec, what)
	case w.Model != nil && !w.Model.Record("").SameModel(rec):
		if what == "" {
			what = w.Model.Record("").String()
		}
		return fmt.Errorf("%s holds %s, want %s", file, rec, what)
	}
	return nil
}

// Context returns a new context holding the model's variables at its root (the record's scope
// stripped), ready for m.Features.
func (l *Loaded) Context() (*context.Context, error) {
	ctx := context.New()
	if _, err := l.Checkpoint.Apply(ctx, fit.LoadOptions{From: l.Model.Scope}); err != nil {
		return nil, err
	}
	return ctx, nil
}

// Into loads the model's variables into ctx under scope (e.g. a teacher under "/teacher"). frozen
// marks them non-trainable and sets nn.FrozenParam in that scope, so its batch norms run in
// evaluation mode and the optimiser leaves them alone.
func (l *Loaded) Into(ctx *context.Context, scope string, frozen bool) error {
	if _, err := l.Checkpoint.Apply(ctx, fit.LoadOptions{From: l.Model.Scope, To: scope, Frozen: frozen}); err != nil {
		return err
	}
	if frozen {
		ctx.InAbsPath(scope).SetParam(nn.FrozenParam, true)
	}
	return nil
}

// CheckResume checks the newest checkpoint of runDir (nothing to check when there is none) against
// the models a resumed run builds, before anything is written: the header's records when it has
// them, the variables otherwise. The error names the file, what it holds and what the flags
// describe.
func CheckResume(backend backends.Backend, runDir string, models ...Model) error {
	latest, err := fit.LatestCheckpoint(runDir)
	if err != nil || latest == "" {
		return err
	}
	info, err := fit.ReadCheckpointInfo(latest)
	if err != nil {
		return fmt.Errorf("--resume: %w (remove it to resume from the previous checkpoint)", err)
	}
	for _, m := range models {
		if err := CheckFile(backend, info, m, "the flags describe"); err != nil {
			return fmt.Errorf("--resume: %w", err)
		}
	}
	return nil
}

// CheckFile compares a checkpoint with the model m (source says where m comes from, e.g.
// "run/config.json records" or "the flags describe"): the header's record at m's scope when there
// is one, then the variables under that scope against the ones m declares (same names, same
// shapes, none missing and none extra).
func CheckFile(backend backends.Backend, info *fit.CheckpointInfo, m Model, source string) error {
	want := m.Record("")
	if err := m.Validate(); err != nil {
		return fmt.Errorf("%s: %s %s: %w", info.Path, source, want, err)
	}
	if got, ok := info.Model(m.Scope); ok && !got.SameModel(want) {
		return fmt.Errorf("%s holds %s, but %s %s", info.Path, got, source, want)
	} else if !ok && len(info.Models) > 0 {
		return fmt.Errorf("%s holds %s, but %s %s at %s", info.Path, describeAll(info.Models), source, want, m.Scope)
	}
	declared, err := Declared(backend, m)
	if err != nil {
		return fmt.Errorf("%s: %s %s: %w", info.Path, source, want, err)
	}
	stored := map[string]shapes.Shape{}
	scope := strings.TrimSuffix(m.Scope, context.ScopeSeparator)
	for _, v := range info.Variables {
		if v.Scope != scope && !strings.HasPrefix(v.Scope, scope+context.ScopeSeparator) {
			continue
		}
		rel := strings.TrimPrefix(v.Scope, scope)
		if rel == "" {
			rel = context.RootScope
		}
		stored[context.JoinScope(rel, v.Name)] = v.Shape
	}
	mismatch := func(detail string) error {
		return fmt.Errorf("%s does not hold %s, which %s: %s", info.Path, want, source, detail)
	}
	if len(stored) == 0 {
		return mismatch(fmt.Sprintf("it has no variables under %s", m.Scope))
	}
	for _, name := range sortedKeys(declared) {
		got, ok := stored[name]
		switch {
		case !ok:
			return mismatch(fmt.Sprintf("it lacks %s%s", scope, name))
		case !got.Equal(declared[name]):
			return mismatch(fmt.Sprintf("its %s%s is %s, the model declares %s", scope, name, got, declared[name]))
		}
	}
	for _, name := range sortedKeys(stored) {
		if _, ok := declared[name]; !ok {
			return mismatch(fmt.Sprintf("its %s%s is not part of that model", scope, name))
		}
	}
	return nil
}

func describeAll(models []fit.ModelRecord) string {
	parts := make([]string, len(models))
	for i, m := range models {
		parts[i] = fmt.Sprintf("%s at %s", m, m.Scope)
	}
	return strings.Join(parts, "; ")
}

// Declared builds m's graph on backend (two images of its input shape, not compiled) in a fresh
// context and returns the variables it declares, by path relative to the model's scope.
func Declared(backend backends.Backend, m Model) (vars map[string]shapes.Shape, err error) {
	defer catch.Recover(&err, "building the model: ")
	if m.Data.Height < 1 || m.Data.Width < 1 || m.Data.Channels < 1 {
		return nil, fmt.Errorf("invalid input shape %dx%dx%d", m.Data.Height, m.Data.Width, m.Data.Channels)
	}
	g := graph.NewGraph(backend, "declared")
	defer g.Finalize()
	images := graph.Parameter(g, "images", shapes.Make(dtypes.Float32, 2, m.Data.Height, m.Data.Width, m.Data.Channels))
	ctx := context.New()
	m.Features(ctx, images)
	vars = map[string]shapes.Shape{}
	for v := range ctx.IterVariables() {
		if v.Scope() == context.RootScope && v.Name() == context.RNGStateVariableName {
			continue
		}
		vars[v.ScopeAndName()] = v.Shape()
	}
	return vars, nil
}

func sortedKeys(m map[string]shapes.Shape) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
