package runner

import (
	stdctx "context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/backbone"
	"github.com/ifa-toolkit/ifa/data"
	"github.com/ifa-toolkit/ifa/distill"
	"github.com/ifa-toolkit/ifa/fit"
	"github.com/ifa-toolkit/ifa/report"
	"github.com/ifa-toolkit/ifa/rundir"
)

// Distill distils (the options of `ifa distill`): a student CNN of the zoo learns from a frozen teacher
// (an `ifa train` run) with L = γ·CE + α·KD(T) + β·L_method (METHODS.md §2.4, §4.3).
//
// The teacher is rebuilt from its run's config.json model record and loaded under /teacher as
// constants: evaluation-mode batch norm, no gradient, no optimiser state. The student lives under
// /student and the method's heads under /<method>. The recipe defaults are IFARD's (§2.5): SGD
// with Nesterov momentum 0.9, lr 0.05 (0.01 for MobileNetV2 and ShuffleNet students), weight decay 5e-4 except
// on biases and batch-norm parameters, batch 64 with the last incomplete batch dropped, 240
// epochs, lr ×0.1 after epochs 150, 180 and 210. --recipe repdistiller gives RepDistiller's
// (§4.3): plain momentum, weight decay on every parameter, the last batch kept. --optimizer adamw
// replaces the recipe's SGD by AdamW (base lr distill.AdamWLR unless --lr is given), which ViT and
// MLP-Mixer students need.
//
// The run directory holds config.json (every flag, and the student's model record so the
// evaluation commands and a later distillation can load it), metrics.jsonl (per epoch: loss terms,
// test top-1/top-5, peak RSS, seconds), checkpoints/ (student, heads and the teacher) and, when
// the run ends, summary.json (report.Summary), which `ifa report` reads.
type Distill struct {
	Teacher string `help:"Teacher: an 'ifa train' run directory (its newest checkpoint) or one of its checkpoint files; the model is rebuilt from the run's config.json. With --teacher-model: a PyTorch state dict (.pth) or safetensors file." required:""`

	TorchTeacherFlags `embed:""`
	Student           string `help:"Student model (see 'ifa models'): a CNN of the zoo (resnet8x4, vgg8, wrn_16_2, shufflev2, ...), vit:CONFIG (vit:nano) or mixer:CONFIG (mixer:nano); a ViT or Mixer takes the teacher's image size." required:""`
	StudentTaps       string `name:"student-taps" help:"Student layers the map-based baselines (hint, attention, similarity, vid, nst) pair: blocks (every block output), last:K (the last K taps), blocks:last:K, or tap indices such as 0,-1 (default: the model's stage maps)."`
	TeacherTaps       string `name:"teacher-taps" aliases:"taps" help:"Teacher layers (alias --taps): IFACD's views (every chosen layer: --ifacd-layers and --ifacd-taps are then ignored) and the maps the baselines pair; blocks, last:K, blocks:last:K or indices, as --student-taps (default: IFACD's last --ifacd-layers taps, the baselines' stage maps)."`
	Method            string `help:"Distillation method: ${distill_methods}. Every method adds its term to CE and KD." default:"ifacd"`
	Dataset           string `help:"Dataset (fashion-mnist, mnist, cifar10, cifar100 or an image folder); default: the teacher's."`
	DataDir           string `name:"data-dir" help:"Folder holding the named dataset (default: the teacher's, then the user cache folder)." type:"path" env:"IFA_DATA_DIR"`

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
	IFACDRescalerBlock  string   `name:"ifacd-rs-block" help:"${ifacd_rs_block_doc}." default:"${ifacd_rs_block}" param:"ifacd_rs_block"`
	IFACDProjSeparate   bool     `name:"ifacd-proj-separate" help:"${ifacd_proj_separate_doc}." default:"${ifacd_proj_separate}" param:"ifacd_proj_separate"`
	IFACDNoDetach       bool     `name:"ifacd-no-detach" help:"IFACD: do not stop the gradient at the rescalers' input (no effect on a frozen teacher's weights)." param:"!ifacd_rs_detach"`
	Params              []string `name:"param" help:"Set any method parameter KEY=VALUE, e.g. crd_k=4096 or hint_layer=2 (repeatable; 'ifa params' lists the keys)." placeholder:"KEY=VALUE"`

	Recipe     string `help:"Optimiser recipe: ifard (Nesterov, no weight decay on biases and batch norm, last batch dropped) or repdistiller (plain momentum, weight decay on everything, last batch kept)." enum:"ifard,repdistiller" default:"ifard"`
	EpochFlags `embed:""`
	Optimizer  string  `help:"Optimizer: sgd (the recipe's momentum SGD, for CNN students) or adamw (Adam with decoupled --weight-decay, PyTorch's β 0.9, 0.999, the recipe's weight-decay exclusions and last batch; --momentum does not apply). ViT and MLP-Mixer students learn little with SGD and need adamw, e.g. --optimizer adamw --weight-decay 0.05." enum:"sgd,adamw" default:"sgd"`
	LR         float64 `name:"lr" help:"Base learning rate; 0 means the recipe's: ${recipe_lr}, or ${recipe_light_lr} for lightweight students (MobileNetV2, ShuffleNetV1/V2); with --optimizer adamw, ${adamw_lr} for every student." default:"0"`
	Milestones []int   `help:"Epochs (1-based) after which the rate is multiplied by --lr-factor." default:"150,180,210"`
	LRFactor   float64 `name:"lr-factor" help:"Learning-rate factor at each milestone." default:"0.1"`
	Momentum   float64 `help:"SGD momentum." default:"0.9"`
	WD         float64 `name:"weight-decay" aliases:"wd" help:"L2 weight decay (alias --wd)." default:"5e-4"`

	Padding     int  `help:"Zero padding (pixels) of the random-crop augmentation; 0 disables the crop." default:"4"`
	NoFlip      bool `name:"no-flip" help:"Disable the random horizontal flip."`
	NoAugment   bool `name:"no-augment" help:"Train on un-augmented images."`
	LimitTrain  int  `name:"limit-train" aliases:"train-limit" help:"Train on the first N training images only (0: all)." default:"0"`
	LimitTest   int  `name:"limit-test" aliases:"test-limit" help:"Evaluate on the first N test images only (0: all)." default:"0"`
	NoTeacherEv bool `name:"no-teacher-eval" help:"Skip measuring the teacher's test accuracy before training (recorded for the report's teacher row)."`

	EvalEvery int `name:"eval-every" help:"Evaluate the student's test top-1/top-5 every N epochs (always after the last); 0: only after the last." default:"1"`
	RunFlags  `embed:""`
}

// DistillResult is what a distillation reports.
type DistillResult struct {
	// RunDir is the run directory.
	RunDir string
	// Result is the training loop's.
	Result *fit.Result
	// Summary is the run's summary.json.
	Summary report.Summary
}

// Check checks the options, naming the flag at fault in a UsageError.
func (c *Distill) Check() error {
	checks := epochChecks(c.EpochFlags, c.RunFlags)
	checks = append(checks,
		Want(c.Gamma >= 0, "--gamma %g: want >= 0", c.Gamma),
		Want(c.Alpha >= 0, "--alpha %g: want >= 0", c.Alpha),
		Want(c.KDT > 0, "--kd-t %g: want > 0", c.KDT),
		Want(c.LR >= 0, "--lr %g: want >= 0 (0: the recipe's)", c.LR))
	checks = append(checks, sgdChecks(c.LRFactor, c.Momentum, c.WD)...)
	return FirstFailed("distill", append(checks, dataAndRunChecks(c.Padding, c.LimitTrain, c.LimitTest, c.EvalEvery, c.RunFlags)...)...)
}

// distillData holds the loaders and the data spec of a run.
type distillData struct {
	train, test *data.ImageLoader
	trainSet    *data.Dataset
	spec        rundir.DataSpec
	classes     int
}

// loadData opens the dataset and builds the loaders. Images are padded to the teacher's input size
// when smaller and normalised with the teacher's statistics, so the teacher sees them as it was
// trained.
func (c *Distill) loadData(teacher rundir.Model, seed int64, dropLast bool) (*distillData, error) {
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
	train, test, spec, err := OpenTrainTestCrop(name, dir, c.LimitTrain, c.LimitTest, teacher.Data.Crop)
	if err != nil {
		return nil, distillErrorf("%w", err)
	}
	if test.NumClasses() != train.NumClasses() {
		return nil, fmt.Errorf("distill: %s: the test split has %d classes, the train split %d", name, test.NumClasses(), train.NumClasses())
	}
	th, tw, tc := teacher.Data.Height, teacher.Data.Width, teacher.Data.Channels
	if teacher.Data.Crop > 0 {
		if train.C != tc {
			return nil, fmt.Errorf("distill: %s: images with %d channels, but the teacher takes %d", name, train.C, tc)
		}
		if len(teacher.Data.Mean) == tc && len(teacher.Data.Std) == tc {
			spec.Mean, spec.Std = teacher.Data.Mean, teacher.Data.Std
		}
		return c.loadFolderRecipe(train, test, spec, seed, dropLast)
	}
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
	return c.newLoaders(train, test, spec, data.Pipeline{Ops: append(ops, norm)}, testPipe, seed, dropLast)
}

// MethodParams returns the method parameters the flags set: the flags tagged with a key of the
// method's parameter table (IFACD's, `param:"KEY"`, `param:"!KEY"` for a negated bool), then the
// --param overrides, each converted to the type of its default.
func (c *Distill) MethodParams(method distill.Method) (map[string]any, error) {
	out := paramFlags(c, distill.ParamsOf(method))
	set, err := distill.Params().ParseAssignments(c.Params)
	if err != nil {
		return nil, distillErrorf("--param %w", err)
	}
	maps.Copy(out, set)
	return out, nil
}

// Run distils in env.RunDir (with c.Resume, continues the run there from its newest
// checkpoint) and writes summary.json at the end. Cancelling cancel stops the run after the
// current step with a checkpoint and returns an error wrapping fit.ErrInterrupted.
func (c *Distill) Run(cancel stdctx.Context, env Env) (*DistillResult, error) {
	start := time.Now()
	if err := c.Check(); err != nil {
		return nil, err
	}
	backend := env.Backend
	method, err := distill.Get(c.Method)
	if err != nil {
		return nil, UsageError{distillErrorf("--method: %w", err)}
	}
	if err := rundir.CheckModelName(c.Student); err != nil {
		return nil, UsageError{distillErrorf("--student: %w", err)}
	}
	studentTaps, err := parseTaps("--student-taps", c.StudentTaps)
	if err != nil {
		return nil, err
	}
	teacherTaps, err := parseTaps("--teacher-taps", c.TeacherTaps)
	if err != nil {
		return nil, err
	}
	recipe, err := distill.GetRecipe(c.Recipe)
	if err != nil {
		return nil, UsageError{distillErrorf("--recipe: %w", err)}
	}
	teacherPath, dropTeacher, err := c.torchTeacher(backend, c.Teacher, c.Dataset)
	if err != nil {
		return nil, distillErrorf("%w", err)
	}
	defer dropTeacher()
	teacher, err := rundir.Load(backend, teacherPath, rundir.Want{Flag: "--teacher", Classifier: true,
		What: "a classifier (an 'ifa train' or 'ifa distill' run)"})
	if err != nil {
		return nil, distillErrorf("%w", err)
	}
	warnAll(env, teacher.Warnings)
	teacherFile, teacherRec := teacher.File, teacher.Model
	teacherSource := teacherFile // what the summary names: the PyTorch file for --teacher-model
	if c.TeacherModel != "" {
		teacherSource = c.Teacher
	}
	mparams, err := c.MethodParams(method)
	if err != nil {
		return nil, err
	}
	seed := env.Seed
	dd, err := c.loadData(teacherRec, seed, recipe.DropLast)
	if err != nil {
		return nil, err
	}
	if n := dd.trainSet.Len(); !recipe.DropLast && n > c.Batch && n%c.Batch == 1 {
		return nil, fmt.Errorf("distill: %d training images in batches of %d leave a last batch of one image, whose batch norms (and IFACD's normalised embeddings) are degenerate: change --batch or use --recipe ifard (drops the last batch)", n, c.Batch)
	}
	classes := dd.classes
	if n := teacherRec.Classes(); n != classes {
		return nil, fmt.Errorf("distill: the teacher %s has %d classes, the dataset %s %d", teacherRec.Name(), n, dd.spec.Dataset, classes)
	}
	studentRec, err := rundir.ModelNamed(c.Student, classes, dd.spec, distill.StudentScope)
	if err != nil {
		return nil, UsageError{distillErrorf("--student: %w", err)}
	}
	lr := recipe.BaseLR(c.LR, studentRec.Lightweight())
	if c.Optimizer == fit.OptimizerAdamW && c.LR == 0 {
		lr = distill.AdamWLR
	}

	// The objective, checked against the encoders' shapes (as their views show them) before
	// anything is written.
	obj := distill.NewObjective(method, ViewOf(studentRec, studentTaps).Wrap(studentRec.Features),
		ViewOf(teacherRec, teacherTaps).Wrap(teacherRec.Features))
	obj.Gamma, obj.Alpha, obj.KDTemperature = c.Gamma, c.Alpha, c.KDT
	if c.Beta >= 0 {
		obj.Beta = c.Beta
	}
	h, w, ch := dd.spec.Height, dd.spec.Width, dd.spec.Channels
	sShapes, sParams, err := distill.DescribeEncoder(backend, obj.Student, h, w, ch)
	if err != nil {
		return nil, distillErrorf("student %s: %w", c.Student, err)
	}
	tShapes, tParams, err := distill.DescribeEncoder(backend, obj.Teacher, h, w, ch)
	if err != nil {
		return nil, distillErrorf("teacher %s: %w", teacherRec.Name(), err)
	}
	if teacherTaps != nil && method.Name() == (distill.IFACD{}).Name() {
		// IFACD contrasts every chosen teacher layer.
		mparams[distill.ParamIFACDLayers] = len(tShapes.TapVectors)
		mparams[distill.ParamIFACDTapSource] = distill.IFACDTapsTaps
	}
	ctx := context.New()
	for k, v := range mparams {
		ctx.SetParam(k, v)
	}
	plan, err := obj.Check(ctx, sShapes, tShapes)
	if err != nil {
		return nil, distillErrorf("%s → %s: %w", teacherRec.Name(), c.Student, err)
	}
	label := plan.Label
	if c.Label != "" {
		label = c.Label
	}

	dp, err := env.DataParallel(c.Batch, dd.trainSet.Len(), recipe.DropLast)
	if err != nil {
		return nil, distillErrorf("%w", err)
	}
	runDir := env.RunDir
	if err := CheckRunDir(runDir, c.Resume); err != nil {
		return nil, distillErrorf("%w", err)
	}
	cfg := c.loopConfig(c.EvalEvery, runDir, seed)
	cfg.Epochs = c.Epochs
	cfg.Optimizer = recipe.Optimizer(c.Momentum, c.WD)
	if c.Optimizer == fit.OptimizerAdamW {
		cfg.Optimizer = recipe.AdamW(c.WD)
	}
	cfg.Schedule = fit.Schedule{Kind: fit.ScheduleMultiStep, BaseLR: lr, Milestones: slices.Clone(c.Milestones),
		Factor: c.LRFactor}
	cfg.Frozen = []string{distill.TeacherScope}
	if err := cfg.Validate(); err != nil {
		return nil, distillErrorf("%w", err)
	}
	teacherAt := teacherRec
	teacherAt.Scope = distill.TeacherScope
	if c.Resume {
		if err := rundir.CheckResume(backend, runDir, studentRec, teacherAt); err != nil {
			return nil, distillErrorf("%w", err)
		}
	}
	if err := distill.ImportTeacher(ctx, teacherFile, teacherRec.Scope); err != nil {
		return nil, distillErrorf("--teacher: %w", err)
	}
	labels := make([]int, dd.trainSet.Len())
	for i, l := range dd.trainSet.Labels {
		labels[i] = int(l)
	}
	train, err := obj.FeedHostInputs(ctx, dd.train, distill.TrainSet{Labels: labels, Seed: uint64(seed)}, c.Batch)
	if err != nil {
		return nil, distillErrorf("%w", err)
	}
	// The first write: everything above only checked and read.
	if err := rundir.WriteConfig(runDir, rundir.Params{Command: "distill", Model: studentRec, Flags: c, MethodParams: withDefaults(method, mparams)}, cfg, c.Resume); err != nil {
		return nil, distillErrorf("%w", err)
	}

	env.Log.Info().Str("method", label).Str("teacher", teacherRec.Name()).Str("teacher_checkpoint", teacherSource).
		Str("student", c.Student).Str("dataset", dd.spec.Dataset).Int("classes", classes).
		Float64("gamma", obj.Gamma).Float64("alpha", obj.Alpha).Float64("beta", obj.Beta).Str("recipe", c.Recipe).Str("optimizer", cfg.Optimizer.Kind).Float64("lr", lr).
		Int64("teacher_params", tParams).Int64("student_params", sParams).Int("head_params", plan.Heads.Params).
		Int("train_images", dd.train.NumExamples()).Int("steps_per_epoch", train.StepsPerEpoch()).
		Str("backend", backend.Name()).Str("run_dir", runDir).Msg("distill")

	var teacherAcc *fit.Accuracy
	if !c.NoTeacherEv {
		acc, err := fit.Evaluate(backend, ctx, dd.test, obj.TeacherLogits)
		if err != nil {
			return nil, distillErrorf("evaluating the teacher: %w", err)
		}
		teacherAcc = &acc
		env.Log.Info().Float64("teacher_top1", acc.Top1).Float64("teacher_top5", acc.Top5).Msg("teacher evaluated")
	}
	evalFn, releaseEval := testEvaluator(backend, dp, obj.StudentLogits, dd.test)
	defer releaseEval()
	res, err := fit.Run(cancel, fit.Job{
		Backend: backend, Context: ctx, Train: train, Loss: obj.Loss, Eval: evalFn, Log: env.Log, Terminal: env.Terminal,
		Parallel: dp, Models: []fit.ModelRecord{studentRec.Record("student"), teacherAt.Record("teacher")}, Abort: env.Abort,
	}, cfg)
	if err != nil {
		return nil, distillErrorf("%w", err)
	}

	// The run's summary.
	metrics, err := report.ReadMetrics(runDir)
	if err != nil {
		return nil, distillErrorf("%w", err)
	}
	heads := plan.Heads
	sum := report.Summary{
		Method: method.Name(), Label: label, Teacher: teacherRec.Name(), TeacherCheckpoint: teacherSource,
		Student: studentRec.Name(), Dataset: dd.spec.Dataset, Recipe: c.Recipe, Seed: seed,
		StudentTaps: c.StudentTaps, TeacherTaps: c.TeacherTaps,
		Gamma: obj.Gamma, Alpha: obj.Alpha, Beta: obj.Beta, KDTemperature: obj.KDTemperature, MethodParams: mparams,
		Epochs: res.Epochs, PeakRSSBytes: fit.PeakRSS(), ImagesPerSec: res.ImagesPerSec, Backend: backend.Name(),
		Params: report.Params{
			Teacher: tParams, Student: sParams, Heads: int64(heads.Params), HeadsReported: int64(heads.Reported()),
			Talk: tParams + sParams + int64(heads.Reported()), Trainable: sParams + int64(heads.Params),
		},
	}
	sum.AddMetrics(metrics)
	if b, m := PeakMemory(backend); m == MeasureXLAExecutable {
		sum.DevicePeakBytes, sum.DeviceMemoryMeasure = b, m
	}
	if teacherAcc != nil {
		sum.TeacherTop1, sum.TeacherTop5 = &teacherAcc.Top1, &teacherAcc.Top5
	}
	if trained := fit.CountParams(ctx, ""); trained != sum.Params.Trainable {
		env.Log.Warn().Int64("counted", trained).Int64("expected", sum.Params.Trainable).
			Msg("the trainable parameters differ from student + heads")
	}
	if err := report.WriteSummary(runDir, sum); err != nil {
		return nil, distillErrorf("%w", err)
	}
	env.Log.Info().Str("method", label).Str("pair", sum.Pair()).Int("epochs", sum.Epochs).
		Float64("final_top1", sum.FinalTop1).Float64("best_top1", sum.BestTop1).Int("best_epoch", sum.BestTop1Epoch).
		Float64("params_talk_m", float64(sum.Params.Talk)/1e6).Int64("peak_rss_bytes", sum.PeakRSSBytes).Int64("device_peak_bytes", sum.DevicePeakBytes).
		Float64("seconds_per_epoch", sum.SecondsPerEpoch).Float64("seconds", time.Since(start).Seconds()).
		Str("run_dir", runDir).Msg("distillation done")
	return &DistillResult{RunDir: runDir, Result: res, Summary: sum}, nil
}

// parseTaps parses a tap-choice flag; empty means none.
func parseTaps(flag, text string) (*backbone.TapChoice, error) {
	if text == "" {
		return nil, nil
	}
	choice, err := backbone.ParseTapChoice(text)
	if err != nil {
		return nil, UsageError{distillErrorf("%s: %w", flag, err)}
	}
	return &choice, nil
}

// ViewOf is how the distillers see the model: a ViT's or Mixer's token taps as grids, the chosen
// layers as taps and stage maps.
func ViewOf(m rundir.Model, taps *backbone.TapChoice) distill.View {
	v := distill.View{Taps: taps}
	if rows, cols, ok := m.TokenGrid(); ok {
		v.Rows, v.Cols = rows, cols
	}
	return v
}

// loadFolderRecipe builds the loaders of a teacher trained with the image-folder recipe
// (ifa train --image-size): the student trains on the teacher's random resized crops and is tested
// on its centre crops, normalised with the teacher's statistics.
func (c *Distill) loadFolderRecipe(train, test *data.Dataset, spec rundir.DataSpec, seed int64, dropLast bool) (*distillData, error) {
	trainPipe, testPipe := data.FolderRecipe(spec.Crop, spec.Norm())
	if c.NoAugment {
		trainPipe = testPipe
	}
	return c.newLoaders(train, test, spec, trainPipe, testPipe, seed, dropLast)
}

// newLoaders makes the shuffled training loader and the test loader of a distillation.
func (c *Distill) newLoaders(train, test *data.Dataset, spec rundir.DataSpec, trainPipe, testPipe data.Pipeline, seed int64, dropLast bool) (*distillData, error) {
	trainLoader, err := data.NewLoader(train, data.LoaderConfig{
		BatchSize: c.Batch, Transforms: []data.Pipeline{trainPipe}, Shuffle: true, DropLast: dropLast,
		Seed: uint64(seed), Workers: c.Workers,
	})
	if err != nil {
		return nil, distillErrorf("training set: %w", err)
	}
	testLoader, err := data.NewLoader(test, data.LoaderConfig{
		BatchSize: c.EvalBatch, Transforms: []data.Pipeline{testPipe}, Workers: c.Workers,
	})
	if err != nil {
		return nil, distillErrorf("test set: %w", err)
	}
	return &distillData{train: trainLoader, test: testLoader, trainSet: train, spec: spec, classes: train.NumClasses()}, nil
}

// withDefaults returns set completed with the defaults of the method's parameter table: every
// tunable the method reads, with its value in the run.
func withDefaults(method distill.Method, set map[string]any) map[string]any {
	out := map[string]any{}
	for _, p := range distill.ParamsOf(method) {
		out[p.Key] = p.Default
	}
	maps.Copy(out, set)
	return out
}

// distillErrorf is fmt.Errorf("distill: "+format, args...) for errors that wrap one (%w, last) of the
// distill package, whose messages begin "distill: " too: the wrapped message loses that prefix,
// so the line names it once ("distill: resnet32x4 → shufflev2: fsp: ..."). The result still
// unwraps to the wrapped error.
func distillErrorf(format string, args ...any) error {
	err := fmt.Errorf("distill: "+format, args...)
	inner := errors.Unwrap(err)
	if inner == nil {
		return err
	}
	msg, innerMsg := err.Error(), inner.Error()
	if !strings.HasPrefix(innerMsg, "distill: ") || !strings.HasSuffix(msg, innerMsg) {
		return err
	}
	return wrappedError{msg: strings.TrimSuffix(msg, innerMsg) + strings.TrimPrefix(innerMsg, "distill: "), err: inner}
}

// wrappedError is an error with its own message that unwraps to err.
type wrappedError struct {
	msg string
	err error
}

func (e wrappedError) Error() string { return e.msg }
func (e wrappedError) Unwrap() error { return e.err }
