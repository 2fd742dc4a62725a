package runner

// PyTorch interchange: Import (a torch.save state dict or safetensors file → a run directory),
// Export (a run's checkpoint → safetensors under PyTorch's names), and Test (a classifier
// checkpoint's test top-1/top-5).

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/cnn"
	"github.com/ifa-toolkit/ifa/data"
	"github.com/ifa-toolkit/ifa/fit"
	"github.com/ifa-toolkit/ifa/interop"
	"github.com/ifa-toolkit/ifa/rundir"
	"github.com/ifa-toolkit/ifa/torchio"
	"github.com/ifa-toolkit/ifa/vit"
)

// importModelScope is where an imported model's variables live in its checkpoint (the same scope
// as an `ifa train` run's, so every command that takes a run takes an import).
const importModelScope = TrainModelScope

// Import maps a PyTorch state dict onto a model of ifa's (the options of `ifa import`).
type Import struct {
	Model   string    `help:"The file's architecture: a CNN of the zoo (see 'ifa models'; RepDistiller's key names) or vit:CONFIG (e.g. vit:nano, vit:ti_4; timm's key names)." required:""`
	Classes int       `help:"Classifier width (default: read from the file's classifier; 0: the file has none)." default:"-1"`
	Input   string    `help:"Input image shape HxWxC (default: 32x32 for CNNs, the configuration's image for ViTs). The channel count is always read from the first convolution; C, when given, must match it."`
	Dataset string    `help:"Dataset whose normalisation the weights expect (fashion-mnist, mnist, cifar10, cifar100): recorded for ifa test, knn-eval, linear-eval and distill."`
	Mean    []float32 `help:"Per-channel normalisation mean the weights expect (overrides --dataset's), e.g. 0.5071,0.4867,0.4408."`
	Std     []float32 `help:"Per-channel normalisation standard deviation (with --mean)."`
	File    string    `arg:"" help:"A torch.save state dict (.pth/.pt, zip or legacy format, bare or in RepDistiller's {\"model\": ...} wrapper) or a .safetensors file." type:"existingfile"`
}

// importRecord is what config.json's flags say about an imported file.
type importRecord struct {
	Import
	// Format and Wrapper: how the state dict was stored; NumBatchesTracked the BatchNorms' counters
	// (written back by ifa export).
	Format            torchio.Format    `json:"format"`
	Wrapper           string            `json:"wrapper,omitempty"`
	Extra             map[string]string `json:"extra,omitempty"`
	NumBatchesTracked map[string]int64  `json:"num_batches_tracked,omitempty"`
}

// importedModel reads a PyTorch file and maps it onto the named model: the variables (relative
// scopes), the model record (Scope importModelScope) and the import record. Errors name the file.
func (c *Import) importedModel(backend backends.Backend) ([]fit.SavedVariable, rundir.Model, importRecord, error) {
	var rec rundir.Model
	var irec importRecord
	fail := func(err error) ([]fit.SavedVariable, rundir.Model, importRecord, error) {
		return nil, rec, irec, fmt.Errorf("import: %s: %w", c.File, err)
	}
	f, err := torchio.Load(c.File)
	if err != nil {
		return nil, rec, irec, fmt.Errorf("import: %w", err)
	}
	if c.Classes < -1 {
		return nil, rec, irec, Usagef("import: --classes %d: want >= 0 (or -1: read from the file)", c.Classes)
	}
	channels, classes, err := interop.Infer(c.Model, f.State, c.Classes)
	if err != nil {
		return fail(err)
	}
	input := cnn.MapShape{H: 32, W: 32, C: channels}
	if vitName, isViT := strings.CutPrefix(c.Model, interop.ViTPrefix); isViT {
		// The configuration's own image size.
		if cfg, err := vit.Get(vitName); err == nil {
			input.H, input.W = cfg.ImageHeight, cfg.ImageWidth
		}
	}
	if c.Input != "" {
		in, err := cnn.ParseMapShape(c.Input)
		if err != nil {
			return nil, rec, irec, fmt.Errorf("import: --input: %w", err)
		}
		if in.C != channels {
			return fail(fmt.Errorf("--input %s has %d channels, the first convolution takes %d", c.Input, in.C, channels))
		}
		input = in
	}
	model, err := interop.NewModel(c.Model, classes, input)
	if err != nil {
		return nil, rec, irec, fmt.Errorf("import: --model: %w", err)
	}
	vars, err := interop.Variables(backend, model)
	if err != nil {
		return nil, rec, irec, fmt.Errorf("import: %w", err)
	}
	desc := fmt.Sprintf("%s (%d classes, input %s)", c.Model, classes, input)
	imp, err := interop.Import(f.State, vars, desc)
	if err != nil {
		return fail(err)
	}
	spec := rundir.DataSpec{Dataset: c.Dataset, Height: input.H, Width: input.W, Channels: input.C}
	if c.Dataset != "" {
		norm, ok := data.NormFor(c.Dataset)
		if !ok {
			return nil, rec, irec, fmt.Errorf("import: --dataset %s: unknown normalisation; give --mean and --std", c.Dataset)
		}
		spec.Mean, spec.Std = norm.Mean, norm.Std
	}
	if len(c.Mean) > 0 || len(c.Std) > 0 {
		if len(c.Mean) != channels || len(c.Std) != channels {
			return nil, rec, irec, fmt.Errorf("import: --mean and --std need %d values each (the input channels), got %d and %d", channels, len(c.Mean), len(c.Std))
		}
		spec.Mean, spec.Std = c.Mean, c.Std
	}
	rec = rundir.Model{Scope: importModelScope, Data: spec}
	if model.ViT != nil {
		rec.Family, rec.ViT = rundir.FamilyViT, model.ViT
	} else {
		rec.Family, rec.CNN = rundir.FamilyCNN, &rundir.CNN{Name: c.Model, NumClasses: classes}
	}
	irec = importRecord{Import: *c, Format: f.Format, Wrapper: f.Wrapper, Extra: f.Extra, NumBatchesTracked: imp.NumBatchesTracked}
	return imp.Variables, rec, irec, nil
}

// Write imports the file into runDir: config.json and checkpoints/step-000000000000.ckpt, built in
// a temporary folder beside it and renamed into place, so a failure leaves nothing behind.
func (c *Import) Write(backend backends.Backend, runDir string) (rundir.Model, error) {
	vars, rec, irec, err := c.importedModel(backend)
	if err != nil {
		return rec, err
	}
	if entries, err := os.ReadDir(runDir); err == nil && len(entries) > 0 {
		return rec, fmt.Errorf("import: --out %s already exists and is not empty", runDir)
	}
	parent := filepath.Dir(filepath.Clean(runDir))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return rec, fmt.Errorf("import: --out: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, ".tmp-"+filepath.Base(runDir)+"-*")
	if err != nil {
		return rec, fmt.Errorf("import: --out: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = os.RemoveAll(tmp)
		}
	}()
	if err := fit.WriteConfig(tmp, rundir.Params{Command: "import", Model: rec, Flags: irec}, fit.Config{}); err != nil {
		return rec, fmt.Errorf("import: %w", err)
	}
	ckDir := filepath.Join(tmp, "checkpoints")
	if err := os.MkdirAll(ckDir, 0o755); err != nil {
		return rec, fmt.Errorf("import: %w", err)
	}
	ctx := interop.NewContext(vars, importModelScope)
	if err := fit.SaveCheckpoint(filepath.Join(ckDir, fit.CheckpointName(0)), ctx, fit.LoopState{}, rec.Record("model")); err != nil {
		return rec, fmt.Errorf("import: %w", err)
	}
	_ = os.Remove(runDir) // an empty folder is replaced
	if err := os.Rename(tmp, runDir); err != nil {
		return rec, fmt.Errorf("import: --out %s: %w", runDir, err)
	}
	ok = true
	return rec, nil
}

// modelOf is the interop model of a run's record.
func modelOf(rec rundir.Model) (interop.Model, error) {
	input := cnn.MapShape{H: rec.Data.Height, W: rec.Data.Width, C: rec.Data.Channels}
	switch {
	case rec.ViT != nil:
		cfg := *rec.ViT
		return interop.Model{Name: interop.ViTPrefix + cfg.Name, ViT: &cfg, Classes: cfg.NumClasses,
			Input: cnn.MapShape{H: cfg.ImageHeight, W: cfg.ImageWidth, C: cfg.Channels}}, nil
	case rec.CNN != nil:
		return interop.NewModel(rec.CNN.Name, rec.CNN.NumClasses, input)
	}
	return interop.Model{}, fmt.Errorf("model record: no cnn or vit section")
}

// Export writes a run's model as safetensors under PyTorch's names (the options of `ifa export`).
type Export struct {
	Checkpoint string `help:"A run directory (its newest checkpoint) or a checkpoint file: ifa train, ifa distill (the student) or ifa import." required:"" type:"path"`
	// Output is the .safetensors file (ifa export: the global --out).
	Output string `kong:"-"`
}

// Run writes the safetensors file and returns its tensor count; the loader's warnings go to
// env.Log.
func (c *Export) Run(env Env) (int, error) {
	backend := env.Backend
	enc, err := rundir.Load(backend, c.Checkpoint, rundir.Want{Flag: "--checkpoint"})
	if err != nil {
		return 0, fmt.Errorf("export: %w", err)
	}
	warnAll(env, enc.Warnings)
	model, err := modelOf(enc.Model)
	if err != nil {
		return 0, fmt.Errorf("export: %s: %w", enc.File, err)
	}
	vars, err := interop.Variables(backend, model)
	if err != nil {
		return 0, fmt.Errorf("export: %w", err)
	}
	ck := enc.Checkpoint
	// num_batches_tracked: an imported run's own counters, otherwise one BatchNorm update per step.
	var flags struct {
		Params struct {
			Command string       `json:"command"`
			Flags   importRecord `json:"flags"`
		} `json:"params"`
	}
	if enc.Run != nil {
		if raw, err := os.ReadFile(enc.Run.Config); err == nil {
			_ = json.Unmarshal(raw, &flags)
		}
	}
	nbt := func(prefix string) int64 {
		if flags.Params.Command == "import" {
			return flags.Params.Flags.NumBatchesTracked[prefix] + ck.State.GlobalStep
		}
		return ck.State.GlobalStep
	}
	sd, err := interop.Export(ck, enc.Model.Scope, vars, nbt)
	if err != nil {
		return 0, fmt.Errorf("export: %w", err)
	}
	sd.Metadata = map[string]string{"format": "pt", "arch": model.Name, "source": enc.File}
	if err := torchio.WriteSafetensorsFile(c.Output, sd); err != nil {
		return 0, fmt.Errorf("export: --out %w", err)
	}
	return len(sd.Keys), nil
}

// Test measures a classifier checkpoint's top-1/top-5 on a dataset's test split (the options of
// `ifa test`).
type Test struct {
	Checkpoint string `help:"A classifier's run directory (its newest checkpoint) or checkpoint file: ifa train, ifa distill (the student) or ifa import." required:"" type:"path"`
	Dataset    string `help:"Dataset (fashion-mnist, mnist, cifar10, cifar100 or an image folder); default: the run's."`
	DataDir    string `name:"data-dir" help:"Folder holding the named dataset." type:"path" env:"IFA_DATA_DIR"`
	Format     string `help:"Output format: text or json (one line)." enum:"text,json" default:"text"`
	Batch      int    `help:"Evaluation batch size." default:"256"`
	LimitTest  int    `name:"limit-test" help:"Evaluate the first N test images only (0: all)." default:"0"`
}

// TestResult is what Test measures (ifa test's JSON line).
type TestResult struct {
	Checkpoint string  `json:"checkpoint"`
	Model      string  `json:"model"`
	Dataset    string  `json:"dataset"`
	Split      string  `json:"split"`
	Images     int     `json:"images"`
	Top1       float64 `json:"top1"`
	Top5       float64 `json:"top5"`
	Loss       float64 `json:"loss"`
}

// Run evaluates the checkpoint; the loader's warnings go to env.Log.
func (c *Test) Run(env Env) (*TestResult, error) {
	backend := env.Backend
	if err := FirstFailed("test", Want(c.Batch >= 1, "--batch %d: want >= 1", c.Batch),
		Want(c.LimitTest >= 0, "--limit-test %d: want >= 0 (0: all)", c.LimitTest)); err != nil {
		return nil, err
	}
	enc, err := rundir.Load(backend, c.Checkpoint, rundir.Want{Flag: "--checkpoint", Classifier: true,
		What: "a classifier (an 'ifa train', 'ifa distill' or 'ifa import' run)"})
	if err != nil {
		return nil, fmt.Errorf("test: %w", err)
	}
	warnAll(env, enc.Warnings)
	rec := enc.Model
	modelCtx, err := enc.Context()
	if err != nil {
		return nil, fmt.Errorf("test: %w", err)
	}
	_, test, spec, err := EvalData(rec, c.Dataset, c.DataDir, 1, c.LimitTest)
	if err != nil {
		return nil, fmt.Errorf("test: %w", err)
	}
	loader, err := EvalLoader(test, spec, c.Batch, 0)
	if err != nil {
		return nil, fmt.Errorf("test: %w", err)
	}
	ev, err := fit.NewEvaluator(backend, modelCtx, func(ctx *context.Context, images *graph.Node) *graph.Node {
		return rec.Features(ctx, images).Logits
	})
	if err != nil {
		return nil, fmt.Errorf("test: %w", err)
	}
	defer ev.Finalize()
	acc, err := ev.Evaluate(loader)
	if err != nil {
		return nil, fmt.Errorf("test: %w", err)
	}
	return &TestResult{Checkpoint: enc.File, Model: rec.String(), Dataset: spec.Dataset, Split: "test",
		Images: acc.N, Top1: acc.Top1, Top5: acc.Top5, Loss: acc.Loss}, nil
}

// TorchTeacherFlags are ifa distill's flags for a teacher given as a PyTorch file.
type TorchTeacherFlags struct {
	TeacherModel string `name:"teacher-model" help:"With --teacher FILE.pth (or .safetensors): the file's architecture (a zoo CNN, RepDistiller's key names, or vit:CONFIG); the file is imported as 'ifa import' does, for this run only."`
	TeacherInput string `name:"teacher-input" help:"With --teacher-model: the teacher's input shape HxWxC (default 32x32 and the channels of its first convolution)."`
}

// torchTeacher imports a PyTorch teacher file into a temporary run directory when --teacher-model
// is given, and returns the run to load (path itself otherwise) and a function removing it.
func (f TorchTeacherFlags) torchTeacher(backend backends.Backend, path, dataset string) (run string, cleanup func(), err error) {
	if f.TeacherModel == "" {
		if f.TeacherInput != "" {
			return "", nil, errors.New("--teacher-input needs --teacher-model")
		}
		return path, func() {}, nil
	}
	tmp, err := os.MkdirTemp("", "ifa-teacher-*")
	if err != nil {
		return "", nil, err
	}
	imp := &Import{Model: f.TeacherModel, Classes: -1, Input: f.TeacherInput, File: path}
	if _, ok := data.NormFor(dataset); ok {
		imp.Dataset = dataset
	}
	run = filepath.Join(tmp, "teacher")
	if _, err := imp.Write(backend, run); err != nil {
		_ = os.RemoveAll(tmp)
		return "", nil, fmt.Errorf("--teacher %w", err)
	}
	return run, func() { _ = os.RemoveAll(tmp) }, nil
}

// initFrom loads the model of a run (--init: ifa train, distill, import, or a pretrained ViT
// encoder of ifa pretrain vit) into ctx under scope for fine-tuning. The run must hold the model
// rec describes (family, name, configuration and input shape); a classifier of another width, or
// none, is left out (it starts afresh for the new classes).
func initFrom(env Env, backend backends.Backend, ctx *context.Context, path string, rec rundir.Model, scope string) error {
	l, err := rundir.Load(backend, path, rundir.Want{Flag: "--init", Family: rec.Family})
	if err != nil {
		return err
	}
	warnAll(env, l.Warnings)
	classes := rec.Classes()
	if name := rec.Name(); l.Model.Name() != name {
		return fmt.Errorf("--init %s holds %s, want %s", l.File, l.Model, name)
	}
	if !l.Model.WithClasses(classes).Record("").SameModel(rec.Record("")) {
		return fmt.Errorf("--init %s holds %s, want %s", l.File, l.Model, rec)
	}
	src, err := l.Context()
	if err != nil {
		return fmt.Errorf("--init: %w", err)
	}
	skipFC, fc := l.Model.Classes() != classes, "/"+l.Model.ClassifierScope()
	if skipFC {
		msg := "--init: the classifier has another width: it starts afresh"
		if l.Model.Classes() == 0 {
			msg = "--init: the run has no classifier: it starts afresh"
		}
		env.Log.Info().Int("init_classes", l.Model.Classes()).Int("classes", classes).Msg(msg)
	}
	n := 0
	for v := range src.IterVariables() {
		if skipFC && (v.Scope() == fc || strings.HasPrefix(v.Scope(), fc+"/")) {
			continue
		}
		val, err := v.Value()
		if err != nil {
			return fmt.Errorf("--init %s: %s: %w", l.File, v.ScopeAndName(), err)
		}
		// Variables at the model's root (a ViT's cls_token, pos_embed) go to scope itself: GoMLX
		// tells "/model/" from "/model".
		to := scope
		if v.Scope() != context.RootScope {
			to += v.Scope()
		}
		ctx.InAbsPath(to).VariableWithValue(v.Name(), val).SetTrainable(v.Trainable)
		n++
	}
	env.Log.Info().Str("init", l.File).Int("variables", n).Msg("fine-tuning from")
	return nil
}

// warnAll logs each warning of a loader to env.Log.
func warnAll(env Env, warnings []string) {
	for _, w := range warnings {
		env.Log.Warn().Msg(w)
	}
}
