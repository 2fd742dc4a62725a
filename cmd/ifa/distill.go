package main

import (
	stdctx "context"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"maps"
	"path/filepath"
	"slices"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/backbone"
	"github.com/ifa-toolkit/ifa/cnn"
	"github.com/ifa-toolkit/ifa/data"
	"github.com/ifa-toolkit/ifa/distill"
	"github.com/ifa-toolkit/ifa/fit"
	"github.com/ifa-toolkit/ifa/internal/nn"
	"github.com/ifa-toolkit/ifa/report"
)

// DistillCmd is the `ifa distill` command: a student CNN of the zoo learns from a frozen teacher
// (an `ifa train` run) with L = γ·CE + α·KD(T) + β·L_method (METHODS.md §2.4, §4.3).
//
// The teacher is rebuilt from its run's config.json model record and loaded under /teacher as
// constants: evaluation-mode batch norm, no gradient, no optimiser state. The student lives under
// /student and the method's heads under /<method>. The recipe defaults are IFARD's (§2.5): SGD
// with Nesterov momentum 0.9, lr 0.05 (0.01 for MobileNetV2 students), weight decay 5e-4 except
// on biases and batch-norm parameters, batch 64 with the last incomplete batch dropped, 240
// epochs, lr ×0.1 after epochs 150, 180 and 210. --recipe repdistiller gives RepDistiller's
// (§4.3): plain momentum, weight decay on every parameter, the last batch kept.
//
// The run directory holds config.json (every flag, and the student's model record so the
// evaluation commands and a later distillation can load it), metrics.jsonl (per epoch: loss terms,
// test top-1/top-5, peak RSS, seconds), checkpoints/ (student, heads and the teacher) and, when
// the run ends, summary.json (report.Summary), which `ifa report` reads.
type DistillCmd struct {
	Teacher string `help:"Teacher: an 'ifa train' run directory (its newest checkpoint) or one of its checkpoint files; the model is rebuilt from the run's config.json." required:""`
	Student string `help:"Student model of the CNN zoo (see 'ifa models'), e.g. resnet8x4, vgg8, wrn_16_2, resnet20." required:""`
	Method  string `help:"Distillation method: ${distill_methods}. Every method adds its term to CE and KD." default:"ifacd"`
	Dataset string `help:"Dataset (fashion-mnist, mnist, cifar10, cifar100 or an image folder); default: the teacher's."`
	DataDir string `name:"data-dir" help:"Folder holding the named dataset (default: the teacher's, then the user cache folder)." type:"path" env:"IFA_DATA_DIR"`

	Gamma float64 `short:"r" help:"Weight γ of the cross-entropy term." default:"1"`
	Alpha float64 `short:"a" help:"Weight α of the KD term." default:"1"`
	Beta  float64 `short:"b" help:"Weight β of the method's term; negative means the method's default: ${distill_betas} (ifacd's is an assumption, the talk does not record it)." default:"-1"`
	KDT   float64 `name:"kd-t" help:"KD softmax temperature T." default:"${kd_temperature}"`
	Label string  `help:"Row label of this run in 'ifa report' (default: the method's name, ifacdL for IFACD with L taps). With --method kd --alpha 0 --label vanilla a run trains the vanilla student with the very same recipe."`

	IFACDLayers         int      `name:"ifacd-layers" help:"${ifacd_layers_doc}." default:"${ifacd_layers}" param:"ifacd_layers"`
	IFACDFeatDim        int      `name:"ifacd-feat-dim" help:"${ifacd_feat_dim_doc}." default:"${ifacd_feat_dim}" param:"ifacd_feat_dim"`
	IFACDT              float64  `name:"ifacd-t" help:"${ifacd_t_doc}." default:"${ifacd_t}" param:"ifacd_t"`
	IFACDTaps           string   `name:"ifacd-taps" help:"${ifacd_tap_source_doc}." enum:"auto,taps,stages" default:"${ifacd_tap_source}" param:"ifacd_tap_source"`
	IFACDRescalerLayers int      `name:"ifacd-rs-layers" help:"${ifacd_rs_layers_doc}." default:"${ifacd_rs_layers}" param:"ifacd_rs_layers"`
	IFACDRescalerAda    bool     `name:"ifacd-rs-adaptive" help:"${ifacd_rs_adaptive_doc}." default:"${ifacd_rs_adaptive}" param:"ifacd_rs_adaptive"`
	IFACDRescalerHidden int      `name:"ifacd-rs-hidden" help:"${ifacd_rs_hidden_doc}." default:"${ifacd_rs_hidden}" param:"ifacd_rs_hidden"`
	IFACDRescalerNorm   string   `name:"ifacd-rs-norm" help:"${ifacd_rs_norm_doc}." enum:"bn,ln,none" default:"${ifacd_rs_norm}" param:"ifacd_rs_norm"`
	IFACDRescalerAct    string   `name:"ifacd-rs-act" help:"${ifacd_rs_act_doc}." enum:"relu,gelu" default:"${ifacd_rs_act}" param:"ifacd_rs_act"`
	IFACDRescalerBlock  string   `name:"ifacd-rs-block" help:"${ifacd_rs_block_doc}." enum:"none,transformer,mixer" default:"${ifacd_rs_block}" param:"ifacd_rs_block"`
	IFACDProjSeparate   bool     `name:"ifacd-proj-separate" help:"${ifacd_proj_separate_doc}." default:"${ifacd_proj_separate}" param:"ifacd_proj_separate"`
	IFACDNoDetach       bool     `name:"ifacd-no-detach" help:"IFACD: do not stop the gradient at the rescalers' input (no effect on a frozen teacher's weights)." param:"!ifacd_rs_detach"`
	Params              []string `name:"param" help:"Set any method parameter KEY=VALUE, e.g. crd_k=4096 or hint_layer=2 (repeatable; 'ifa params' lists the keys)." placeholder:"KEY=VALUE"`

	Recipe     string `help:"Optimiser recipe: ifard (Nesterov, no weight decay on biases and batch norm, last batch dropped) or repdistiller (plain momentum, weight decay on everything, last batch kept)." enum:"ifard,repdistiller" default:"ifard"`
	EpochFlags `embed:""`
	LR         float64 `name:"lr" help:"Base learning rate; 0 means the recipe's: 0.05, or 0.01 for MobileNetV2 students." default:"0"`
	Milestones []int   `help:"Epochs (1-based) after which the rate is multiplied by --lr-factor." default:"150,180,210"`
	LRFactor   float64 `name:"lr-factor" help:"Learning-rate factor at each milestone." default:"0.1"`
	Momentum   float64 `help:"SGD momentum." default:"0.9"`
	WD         float64 `name:"weight-decay" aliases:"wd" help:"L2 weight decay (alias --wd)." default:"5e-4"`

	Padding     int  `help:"Zero padding (pixels) of the random-crop augmentation; 0 disables the crop." default:"4"`
	NoFlip      bool `name:"no-flip" help:"Disable the random horizontal flip."`
	NoAugment   bool `name:"no-augment" help:"Train on un-augmented images."`
	TrainLimit  int  `name:"limit-train" aliases:"train-limit" help:"Train on the first N training images only (0: all)." default:"0"`
	TestLimit   int  `name:"limit-test" aliases:"test-limit" help:"Evaluate on the first N test images only (0: all)." default:"0"`
	NoTeacherEv bool `name:"no-teacher-eval" help:"Skip measuring the teacher's test accuracy before training (recorded for the report's teacher row)."`

	EvalEvery int `name:"eval-every" help:"Evaluate the student's test top-1/top-5 every N epochs (always after the last); 0: only after the last." default:"1"`
	RunFlags  `embed:""`
}

// Scopes of a distillation run's variables.
const (
	distillStudentScope = "/student"
	distillTeacherScope = "/teacher"
	// distillHostScope holds a method's per-step host inputs (CRD's contrast indices), set before
	// every step.
	distillHostScope = "/host_inputs"
)

// Run implements the command.
func (c *DistillCmd) Run(app *App) error {
	return runWithBackend(app, func(cancel stdctx.Context, backend backends.Backend) error {
		_, err := c.run(cancel, app, backend)
		return err
	})
}

// distillResult is what a run of the command reports.
type distillResult struct {
	RunDir  string
	Result  *fit.Result
	Summary report.Summary
}

func (c *DistillCmd) validate() error {
	if err := validateEpochs("distill", c.EpochFlags, c.RunFlags); err != nil {
		return err
	}
	switch {
	case c.Gamma < 0 || c.Alpha < 0:
		return fmt.Errorf("distill: --gamma %g and --alpha %g: want >= 0", c.Gamma, c.Alpha)
	case !(c.KDT > 0):
		return fmt.Errorf("distill: --kd-t %g: want > 0", c.KDT)
	case c.LR < 0:
		return fmt.Errorf("distill: --lr %g: want >= 0 (0: the recipe's)", c.LR)
	}
	return validateDataAndRun("distill", c.Padding, c.TrainLimit, c.TestLimit, c.EvalEvery, c.RunFlags)
}

// resolveTeacher finds the teacher's checkpoint file and its run's model record.
func resolveTeacher(path string) (file string, rec EncoderRecord, err error) {
	file, err = fit.ResolveCheckpoint(path)
	if err != nil {
		return "", rec, fmt.Errorf("distill: --teacher: %w", err)
	}
	candidates := []string{filepath.Dir(file)}
	if filepath.Base(filepath.Dir(file)) == "checkpoints" {
		candidates = []string{filepath.Dir(filepath.Dir(file)), filepath.Dir(file)}
	}
	for _, dir := range candidates {
		params, err := readRunParams(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", rec, fmt.Errorf("distill: --teacher %s: %w", path, err)
		}
		rec = params.Model
		if err := rec.Validate(); err != nil {
			return "", rec, fmt.Errorf("distill: --teacher %s: %s: %w", path, filepath.Join(dir, fit.ConfigFile), err)
		}
		return file, rec, nil
	}
	return "", rec, fmt.Errorf("distill: --teacher %s: no %s in %v says which model it holds (ifa train writes it in the run directory)",
		path, fit.ConfigFile, candidates)
}

// teacherName is the teacher's model name for the report.
func teacherName(rec EncoderRecord) string {
	if rec.CNN != nil {
		return rec.CNN.Name
	}
	if rec.ViT != nil {
		return "vit:" + rec.ViT.String()
	}
	return rec.Family
}

// distillData holds the loaders and the data spec of a run.
type distillData struct {
	train, test *data.ImageLoader
	trainSet    *data.Dataset
	spec        DataSpec
	classes     int
}

// loadData opens the dataset and builds the loaders. Images are padded to the teacher's input size
// when smaller and normalised with the teacher's statistics, so the teacher sees them as it was
// trained.
func (c *DistillCmd) loadData(teacher EncoderRecord, seed int64, dropLast bool) (*distillData, error) {
	name, dir := c.Dataset, c.DataDir
	if name == "" {
		name = teacher.Data.Dataset
		if dir == "" {
			dir = teacher.Data.Dir
		}
	}
	if name == "" {
		return nil, errors.New("distill: the teacher's run does not record its dataset: give --dataset")
	}
	train, test, spec, err := openTrainTest(name, dir, c.TrainLimit, c.TestLimit)
	if err != nil {
		return nil, fmt.Errorf("distill: %w", err)
	}
	if test.NumClasses() != train.NumClasses() {
		return nil, fmt.Errorf("distill: %s: the test split has %d classes, the train split %d", name, test.NumClasses(), train.NumClasses())
	}
	th, tw, tc := teacher.Data.Height, teacher.Data.Width, teacher.Data.Channels
	if train.C != tc || train.H > th || train.W > tw {
		return nil, fmt.Errorf("distill: %s: images %dx%dx%d, but the teacher takes %dx%dx%d", name, train.H, train.W, train.C, th, tw, tc)
	}
	if len(teacher.Data.Mean) == tc && len(teacher.Data.Std) == tc {
		spec.Mean, spec.Std = teacher.Data.Mean, teacher.Data.Std
	}
	spec.Height, spec.Width = th, tw
	norm := spec.Norm()
	var ops []data.Op
	if th != train.H || tw != train.W {
		ops = append(ops, data.PadTo{H: th, W: tw})
	}
	ops = augmentOps(ops, th, tw, c.Padding, c.NoFlip, c.NoAugment)
	testPipe := data.TestTransform(norm)
	if th != train.H || tw != train.W {
		testPipe = testPipe.PadFirst(th, tw)
	}
	trainLoader, err := data.NewLoader(train, data.LoaderConfig{
		BatchSize: c.Batch, Transforms: []data.Pipeline{{Ops: append(ops, norm)}}, Shuffle: true, DropLast: dropLast,
		Seed: uint64(seed), Workers: c.Workers,
	})
	if err != nil {
		return nil, fmt.Errorf("distill: training set: %w", err)
	}
	testLoader, err := data.NewLoader(test, data.LoaderConfig{
		BatchSize: c.EvalBatch, Transforms: []data.Pipeline{testPipe}, Workers: c.Workers,
	})
	if err != nil {
		return nil, fmt.Errorf("distill: test set: %w", err)
	}
	return &distillData{train: trainLoader, test: testLoader, trainSet: train, spec: spec, classes: train.NumClasses()}, nil
}

// describeEncoder builds an encoder on a 2-image batch (no compilation, fresh variables) and
// returns its feature shapes and trainable parameter count.
func describeEncoder(backend backends.Backend, spec DataSpec, build func(ctx *context.Context, images *graph.Node) backbone.Features) (fs distill.FeatureShapes, params int64, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	g := graph.NewGraph(backend, "describe")
	defer g.Finalize()
	images := graph.Parameter(g, "images", shapes.Make(dtypes.Float32, 2, spec.Height, spec.Width, spec.Channels))
	ctx := context.New()
	f := build(ctx, images)
	return distill.ShapesOf(f), fit.CountParams(ctx, ""), nil
}

// methodParams returns the method parameters the flags set: the flags tagged with a key of the
// method's parameter table (IFACD's, `param:"KEY"`, `param:"!KEY"` for a negated bool), then the
// --param overrides, each converted to the type of its default.
func (c *DistillCmd) methodParams(method distill.Method) (map[string]any, error) {
	out := paramFlags(c, distill.ParamsOf(method))
	set, err := distill.Params().ParseAssignments(c.Params)
	if err != nil {
		return nil, fmt.Errorf("distill: --param %w", err)
	}
	maps.Copy(out, set)
	return out, nil
}

// optimizerRecipe returns the optimiser, the base learning rate and drop-last of the recipe.
func (c *DistillCmd) optimizerRecipe(student cnn.Spec) (fit.Optimizer, float64, bool) {
	lr := c.LR
	if lr == 0 {
		lr = 0.05
		if student.Family() == cnn.FamilyMobileNetV2 {
			lr = 0.01
		}
	}
	opt := fit.Optimizer{Kind: fit.OptimizerSGD, Momentum: c.Momentum, WeightDecay: c.WD}
	if c.Recipe == "repdistiller" {
		opt.DecayBiasAndNorm = true
		return opt, lr, false
	}
	opt.Nesterov = true
	return opt, lr, true
}

// hostInputLoader feeds a method's per-step host inputs (distill.HostInputs) into non-trainable
// variables just before each batch reaches the train step: the step reads them like any variable.
// A batch's inputs depend only on the global step, its dataset indices and labels, so a resumed run
// feeds the same inputs. The variables keep the full-batch shape of the specs (batch axis first):
// a smaller last batch's inputs fill their first rows and the step reads only those, so a
// checkpoint always holds the shape the model declares.
type hostInputLoader struct {
	data.Loader
	hi   distill.HostInputs
	vars []*context.Variable
}

// Epoch implements data.Loader.
func (l *hostInputLoader) Epoch(e int) iter.Seq2[data.Batch, error] {
	return func(yield func(data.Batch, error) bool) {
		step := int64(e) * int64(l.StepsPerEpoch())
		for b, err := range l.Loader.Epoch(e) {
			if err == nil {
				err = l.feed(step, b)
			}
			step++
			if !yield(b, err) || err != nil {
				return
			}
		}
	}
}

func (l *hostInputLoader) feed(step int64, b data.Batch) error {
	if b.Indices == nil || b.Labels == nil {
		return errors.New("distill: the method's host inputs need the batches' dataset indices and labels")
	}
	idx := tensors.MustCopyFlatData[int32](b.Indices)
	lab := tensors.MustCopyFlatData[int32](b.Labels)
	indices, labels := make([]int, len(idx)), make([]int, len(lab))
	for i := range idx {
		indices[i], labels[i] = int(idx[i]), int(lab[i])
	}
	ts, err := l.hi.Make(step, indices, labels)
	if err != nil {
		return err
	}
	if len(ts) != len(l.vars) {
		return fmt.Errorf("distill: the method made %d host inputs, its specs list %d", len(ts), len(l.vars))
	}
	for i, t := range ts {
		t, err := padRows(t, l.vars[i].Shape())
		if err != nil {
			return fmt.Errorf("distill: host input %s: %w", l.vars[i].Name(), err)
		}
		if err := l.vars[i].SetValue(t); err != nil {
			return fmt.Errorf("distill: host input %s: %w", l.vars[i].Name(), err)
		}
	}
	return nil
}

// padRows returns t grown along its first axis to shape (zero rows appended); t must have shape's
// dtype and dimensions except a first axis no longer than shape's.
func padRows(t *tensors.Tensor, shape shapes.Shape) (*tensors.Tensor, error) {
	ts := t.Shape()
	if ts.Equal(shape) {
		return t, nil
	}
	if ts.DType != shape.DType || ts.Rank() != shape.Rank() || ts.Rank() == 0 || ts.Dim(0) > shape.Dim(0) ||
		!slices.Equal(ts.Dimensions[1:], shape.Dimensions[1:]) {
		return nil, fmt.Errorf("shape %s does not fit the declared %s", ts, shape)
	}
	out := tensors.FromShape(shape)
	var err error
	if cerr := t.ConstBytes(func(src []byte) {
		err = out.MutableBytes(func(dst []byte) { copy(dst, src) })
	}); cerr != nil {
		return nil, cerr
	}
	return out, err
}

// run distils on backend; cancelling cancel stops it after the current step with a checkpoint.
func (c *DistillCmd) run(cancel stdctx.Context, app *App, backend backends.Backend) (*distillResult, error) {
	start := time.Now()
	if err := c.validate(); err != nil {
		return nil, err
	}
	method, err := distill.Get(c.Method)
	if err != nil {
		return nil, fmt.Errorf("distill: --method: %w", err)
	}
	student, err := cnn.Get(c.Student)
	if err != nil {
		return nil, fmt.Errorf("distill: --student: %w", err)
	}
	teacherFile, teacherRec, err := resolveTeacher(c.Teacher)
	if err != nil {
		return nil, err
	}
	mparams, err := c.methodParams(method)
	if err != nil {
		return nil, err
	}
	seed := app.Globals.Seed
	opt, lr, dropLast := c.optimizerRecipe(student)
	dd, err := c.loadData(teacherRec, seed, dropLast)
	if err != nil {
		return nil, err
	}
	if n := dd.trainSet.Len(); !dropLast && n > c.Batch && n%c.Batch == 1 {
		return nil, fmt.Errorf("distill: %d training images in batches of %d leave a last batch of one image, whose batch norms (and IFACD's normalised embeddings) are degenerate: change --batch or use --recipe ifard (drops the last batch)", n, c.Batch)
	}
	classes := dd.classes
	if teacherRec.CNN != nil && teacherRec.CNN.NumClasses != classes {
		return nil, fmt.Errorf("distill: the teacher %s has %d classes, the dataset %s %d", teacherName(teacherRec), teacherRec.CNN.NumClasses, dd.spec.Dataset, classes)
	}

	// Shapes and parameter counts, and the method's check, before anything is written.
	ctx := context.New()
	for k, v := range mparams {
		ctx.SetParam(k, v)
	}
	sShapes, sParams, err := describeEncoder(backend, dd.spec, func(ctx *context.Context, images *graph.Node) backbone.Features {
		return student.Build(ctx, images, classes)
	})
	if err != nil {
		return nil, fmt.Errorf("distill: student %s: %w", c.Student, err)
	}
	tShapes, tParams, err := describeEncoder(backend, dd.spec, teacherRec.Features)
	if err != nil {
		return nil, fmt.Errorf("distill: teacher %s: %w", teacherName(teacherRec), err)
	}
	if !tShapes.Logits.Ok() || tShapes.Logits.Dim(-1) != classes {
		return nil, fmt.Errorf("distill: the teacher %s gives logits %s, want %d classes for KD", teacherName(teacherRec), tShapes.Logits, classes)
	}
	if err := method.Check(ctx, sShapes, tShapes); err != nil {
		return nil, fmt.Errorf("distill: %s → %s: %w", teacherName(teacherRec), c.Student, err)
	}
	heads, err := distill.CountHeads(method, ctx, sShapes, tShapes)
	if err != nil {
		return nil, fmt.Errorf("distill: %w", err)
	}
	beta := c.Beta
	if beta < 0 {
		beta = distill.DefaultBeta(method)
	}
	label, err := distill.RunLabel(method, ctx)
	if err != nil {
		return nil, fmt.Errorf("distill: %w", err)
	}
	if c.Label != "" {
		label = c.Label
	}

	dp, err := app.dataParallel(backend, c.Batch, dd.trainSet.Len(), dropLast)
	if err != nil {
		return nil, fmt.Errorf("distill: %w", err)
	}
	runDir, err := prepareRunDir(app, "distill", c.Resume)
	if err != nil {
		return nil, fmt.Errorf("distill: %w", err)
	}
	cfg := c.loopConfig(c.EvalEvery, runDir, seed)
	cfg.Epochs = c.Epochs
	cfg.Optimizer = opt
	cfg.Schedule = fit.Schedule{Kind: fit.ScheduleMultiStep, BaseLR: lr, Milestones: slices.Clone(c.Milestones),
		Factor: c.LRFactor}
	cfg.Frozen = []string{distillTeacherScope}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("distill: %w", err)
	}
	studentRec := EncoderRecord{Family: FamilyCNN, Scope: distillStudentScope,
		CNN: &CNNRecord{Name: c.Student, NumClasses: classes}, Data: dd.spec}
	if err := writeRunConfig(runDir, RunParams{Command: "distill", Model: studentRec, Flags: c}, cfg, c.Resume); err != nil {
		return nil, fmt.Errorf("distill: %w", err)
	}

	// The frozen teacher.
	if _, err := fit.LoadVariables(ctx, teacherFile, fit.LoadOptions{From: teacherRec.Scope, To: distillTeacherScope, Frozen: true}); err != nil {
		return nil, fmt.Errorf("distill: --teacher: %w", err)
	}
	ctx.InAbsPath(distillTeacherScope).SetParam(nn.FrozenParam, true)

	// The method's host inputs (CRD's contrast indices), fed through variables.
	var train data.Loader = dd.train
	var hostVars []*context.Variable
	labels := make([]int, dd.trainSet.Len())
	for i, l := range dd.trainSet.Labels {
		labels[i] = int(l)
	}
	hi, err := distill.NewHostInputs(method, ctx, distill.TrainSet{Labels: labels, Seed: uint64(seed)})
	if err != nil {
		return nil, fmt.Errorf("distill: %w", err)
	}
	if hi != nil {
		hctx := ctx.InAbsPath(distillHostScope).Checked(false)
		for _, sp := range hi.Specs(c.Batch) {
			if sp.Shape.Rank() == 0 || sp.Shape.Dim(0) != c.Batch {
				return nil, fmt.Errorf("distill: %s: host input %s has shape %s, want the batch (%d) as its first axis", method.Name(), sp.Name, sp.Shape, c.Batch)
			}
			v := hctx.VariableWithValue(sp.Name, tensors.FromShape(sp.Shape)).SetTrainable(false)
			hostVars = append(hostVars, v)
		}
		train = &hostInputLoader{Loader: dd.train, hi: hi, vars: hostVars}
	}

	app.Log.Info().Str("method", label).Str("teacher", teacherName(teacherRec)).Str("teacher_checkpoint", teacherFile).
		Str("student", c.Student).Str("dataset", dd.spec.Dataset).Int("classes", classes).
		Float64("gamma", c.Gamma).Float64("alpha", c.Alpha).Float64("beta", beta).Str("recipe", c.Recipe).Float64("lr", lr).
		Int64("teacher_params", tParams).Int64("student_params", sParams).Int("head_params", heads.Params).
		Int("train_images", dd.train.NumExamples()).Int("steps_per_epoch", train.StepsPerEpoch()).
		Str("backend", backend.Name()).Str("run_dir", runDir).Msg("distill")

	teacherLogits := func(ctx *context.Context, images *graph.Node) *graph.Node {
		return teacherRec.Features(ctx.InAbsPath(distillTeacherScope), images).Logits
	}
	studentLogits := func(ctx *context.Context, images *graph.Node) *graph.Node {
		return student.Build(ctx.InAbsPath(distillStudentScope), images, classes).Logits
	}
	var teacherAcc *fit.Accuracy
	if !c.NoTeacherEv {
		acc, err := fit.Evaluate(backend, ctx, dd.test, teacherLogits)
		if err != nil {
			return nil, fmt.Errorf("distill: evaluating the teacher: %w", err)
		}
		teacherAcc = &acc
		app.Log.Info().Float64("teacher_top1", acc.Top1).Float64("teacher_top5", acc.Top5).Msg("teacher evaluated")
	}

	datasetSize := dd.trainSet.Len()
	kdT := c.KDT
	lossFn := func(ctx *context.Context, in fit.Inputs) fit.Loss {
		if in.Labels == nil {
			panic("distill: the training batches carry no labels")
		}
		g := in.Images.Graph()
		sf := student.Build(ctx.InAbsPath(distillStudentScope), in.Images, classes)
		tf := teacherRec.Features(ctx.InAbsPath(distillTeacherScope), in.Images)
		ce := crossEntropy(sf.Logits, in.Labels)
		kd := distill.KDLoss(sf.Logits, graph.StopGradient(tf.Logits), kdT)
		total := graph.Add(graph.MulScalar(ce, c.Gamma), graph.MulScalar(kd, c.Alpha))
		terms := []fit.Term{{Name: "ce", Value: ce}, {Name: "kd", Value: kd}}
		if method.Name() != "kd" {
			extra := make([]*graph.Node, len(hostVars))
			b := in.Images.Shape().Dim(0)
			for i, v := range hostVars {
				extra[i] = v.ValueGraph(g)
				if extra[i].Shape().Dim(0) != b { // the last, smaller batch
					extra[i] = graph.Slice(extra[i], graph.AxisRange(0, b))
				}
			}
			lm := method.Loss(ctx, sf, tf, distill.Step{Labels: in.Labels, Extra: extra, DatasetSize: datasetSize})
			total = graph.Add(total, graph.MulScalar(lm, beta))
			terms = append(terms, fit.Term{Name: method.Name(), Value: lm})
		}
		terms = append(terms, fit.Term{Name: "top1", Value: batchTop1(sf.Logits, in.Labels)})
		return fit.Loss{Total: total, Terms: terms}
	}
	evalFn, releaseEval := testEvaluator(backend, dp, studentLogits, dd.test)
	defer releaseEval()
	res, err := fit.Run(cancel, fit.Job{
		Backend: backend, Context: ctx, Train: train, Loss: lossFn, Eval: evalFn, Log: app.Log, Terminal: app.Terminal,
		Parallel: dp,
	}, cfg)
	if err != nil {
		return nil, fmt.Errorf("distill: %w", err)
	}

	// The run's summary.
	metrics, err := report.ReadMetrics(runDir)
	if err != nil {
		return nil, fmt.Errorf("distill: %w", err)
	}
	sum := report.Summary{
		Method: method.Name(), Label: label, Teacher: teacherName(teacherRec), TeacherCheckpoint: teacherFile,
		Student: c.Student, Dataset: dd.spec.Dataset, Recipe: c.Recipe, Seed: seed,
		Gamma: c.Gamma, Alpha: c.Alpha, Beta: beta, KDTemperature: kdT, MethodParams: mparams,
		Epochs: res.Epochs, PeakRSSBytes: fit.PeakRSS(), ImagesPerSec: res.ImagesPerSec, Backend: backend.Name(),
		Params: report.Params{
			Teacher: tParams, Student: sParams, Heads: int64(heads.Params), HeadsReported: int64(heads.Reported()),
			Talk: tParams + sParams + int64(heads.Reported()), Trainable: sParams + int64(heads.Params),
		},
	}
	sum.FinalTop1, sum.FinalTop5, sum.BestTop1, sum.BestTop1Epoch, sum.BestTop5, _ = report.Accuracies(metrics)
	for _, m := range metrics {
		sum.TrainSeconds += m.Seconds
		sum.PeakRSSBytes = max(sum.PeakRSSBytes, m.PeakRSSBytes)
	}
	if len(metrics) > 0 {
		sum.SecondsPerEpoch = sum.TrainSeconds / float64(len(metrics))
	}
	if teacherAcc != nil {
		sum.TeacherTop1, sum.TeacherTop5 = &teacherAcc.Top1, &teacherAcc.Top5
	}
	if trained := fit.CountParams(ctx, ""); trained != sum.Params.Trainable {
		app.Log.Warn().Int64("counted", trained).Int64("expected", sum.Params.Trainable).
			Msg("the trainable parameters differ from student + heads")
	}
	if err := report.WriteSummary(runDir, sum); err != nil {
		return nil, fmt.Errorf("distill: %w", err)
	}
	app.Log.Info().Str("method", label).Str("pair", sum.Pair()).Int("epochs", sum.Epochs).
		Float64("final_top1", sum.FinalTop1).Float64("best_top1", sum.BestTop1).Int("best_epoch", sum.BestTop1Epoch).
		Float64("params_talk_m", float64(sum.Params.Talk)/1e6).Int64("peak_rss_bytes", sum.PeakRSSBytes).
		Float64("seconds_per_epoch", sum.SecondsPerEpoch).Float64("seconds", time.Since(start).Seconds()).
		Str("run_dir", runDir).Msg("distillation done")
	return &distillResult{RunDir: runDir, Result: res, Summary: sum}, nil
}
