package runner

import (
	stdctx "context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/cnn"
	"github.com/ifa-toolkit/ifa/data"
	"github.com/ifa-toolkit/ifa/distill"
	"github.com/ifa-toolkit/ifa/fit"
	"github.com/ifa-toolkit/ifa/rundir"
)

// Train is supervised training of a CNN of the zoo (a teacher, or a
// vanilla student baseline) with cross-entropy. The defaults are RepDistiller's teacher recipe
// (METHODS.md §4.3): SGD lr 0.05, momentum 0.9, weight decay 5e-4 on every parameter, batch 64, 240
// epochs, ×0.1 after epochs 150, 180 and 210, random crop with 4-pixel zero padding and horizontal
// flip. --nesterov --wd-exclude-bias-norm gives IFARD's optimiser (§2.5).
//
// 28×28 data (Fashion-MNIST, MNIST) is trained at 28×28 by default: every zoo model pools globally,
// so the final ResNet map is 7×7 instead of 8×8 and a step costs about 23% less than at 32×32.
// --pad-to-32 zero-pads the images (centred) to 32×32 first, for the CIFAR geometry.
//
// The run directory holds config.json (every flag, the loop configuration and the model record —
// rundir.Model — that rebuilds the model for `ifa distill --teacher`, `ifa knn-eval` and
// `ifa linear-eval`), metrics.jsonl (one line per epoch with test top-1/top-5) and checkpoints/.
type Train struct {
	Model   string `help:"Model (see 'ifa models'): a CNN of the zoo (resnet8, resnet32x4, wrn_40_2, vgg13, resnet50, shufflev1, ...), vit:CONFIG (vit:nano) or mixer:CONFIG (mixer:nano); a ViT or Mixer takes the data's image size." required:""`
	Dataset string `help:"Dataset: fashion-mnist, mnist, cifar10, cifar100, or the path of an image folder (root/train/<class>/*.png, root/test/...)." required:""`
	DataDir string `name:"data-dir" help:"Folder holding the named dataset (default: the user cache folder, then the system dataset folders)." type:"path" env:"IFA_DATA_DIR"`

	EpochFlags `embed:""`
	LR         float64 `name:"lr" help:"Base learning rate; 0 means RepDistiller's: ${recipe_lr}, or ${recipe_light_lr} for the lightweight families (MobileNetV2, ShuffleNetV1/V2)." default:"0"`
	Schedule   string  `help:"Learning-rate schedule: multistep (×--lr-factor after each milestone epoch), cosine (per-step half cosine to 0 after --warmup-steps of linear warm-up) or constant." enum:"multistep,cosine,constant" default:"multistep"`
	Milestones []int   `help:"Epochs (1-based) after which the multistep schedule multiplies the rate by --lr-factor." default:"150,180,210"`
	LRFactor   float64 `name:"lr-factor" help:"Multistep factor." default:"0.1"`
	Warmup     int64   `name:"warmup-steps" help:"Linear warm-up steps of the cosine schedule." default:"0"`

	Optimizer         string  `help:"Optimizer: sgd (with --momentum, --nesterov; the CNN recipes) or adamw (Adam with decoupled --weight-decay, PyTorch's defaults β 0.9, 0.999; ViTs and Mixers train far faster with it, e.g. --optimizer adamw --lr 1e-3 --wd 0.05 --schedule cosine --warmup-steps 100)." enum:"sgd,adamw" default:"sgd"`
	Momentum          float64 `help:"SGD momentum." default:"0.9"`
	Nesterov          bool    `help:"Nesterov momentum (IFARD's recipe)."`
	WeightDecay       float64 `name:"weight-decay" aliases:"wd" help:"L2 weight decay (alias --wd)." default:"5e-4"`
	WDExcludeBiasNorm bool    `name:"wd-exclude-bias-norm" help:"No weight decay on biases and batch-norm parameters (IFARD's recipe, METHODS.md §2.5); the default decays every parameter (RepDistiller)."`

	Padding    int  `help:"Zero padding (pixels) of the random-crop augmentation; 0 disables the crop." default:"4"`
	NoFlip     bool `name:"no-flip" help:"Disable the random horizontal flip (e.g. for digits)."`
	NoAugment  bool `name:"no-augment" help:"Train on un-augmented images (overrides --padding and flips)."`
	ImageSize  int  `name:"image-size" help:"Image folders larger than 32x32 (fine-grained data): decode at 8/7 of N once (cached next to the folder), train on random resized N×N crops with flips, test on the centre N×N crop (0: read the folder at 32x32 with the CIFAR augmentation)." default:"0"`
	PadTo32    bool `name:"pad-to-32" help:"Zero-pad smaller images (28x28 Fashion-MNIST/MNIST) to 32x32 before augmenting, for train and test. Off by default: the models pool globally and 28x28 is cheaper."`
	DropLast   bool `name:"drop-last" help:"Drop the last incomplete training batch of each epoch (IFARD); RepDistiller keeps it."`
	LimitTrain int  `name:"limit-train" aliases:"train-limit" help:"Train on the first N training images only (0: all), for quick runs." default:"0"`
	LimitTest  int  `name:"limit-test" aliases:"test-limit" help:"Evaluate on the first N test images only (0: all)." default:"0"`

	Init      string `help:"Start from the weights of this run or checkpoint (ifa train, ifa distill's student, ifa import, or the encoder of ifa pretrain vit) instead of a random initialisation: fine-tuning. The model must be --model (the same configuration and input); a classifier of another width, or none, starts afresh." type:"path"`
	EvalEvery int    `name:"eval-every" help:"Evaluate top-1/top-5 on the test set every N epochs (always after the last); 0: only after the last." default:"1"`
	RunFlags  `embed:""`
}

// TrainModelScope is the scope the trained model's variables live under in the context and in
// checkpoints ("/model/stem/conv/weights", ...); config.json's model record names it.
const TrainModelScope = "/model"

// trainData holds the loaders and the record of the model they feed.
type trainData struct {
	train, test *data.ImageLoader
	record      rundir.Model
}

// Check checks the options that the libraries would reject with less context, naming the flag
// at fault in a UsageError.
func (c *Train) Check() error {
	checks := epochChecks(c.EpochFlags, c.RunFlags)
	checks = append(checks, Want(c.LR >= 0, "--lr %g: want >= 0 (0: the recipe's)", c.LR), Want(c.Warmup >= 0, "--warmup-steps %d: want >= 0", c.Warmup))
	checks = append(checks, sgdChecks(c.LRFactor, c.Momentum, c.WeightDecay)...)
	return FirstFailed("train", append(checks, dataAndRunChecks(c.Padding, c.LimitTrain, c.LimitTest, c.EvalEvery, c.RunFlags)...)...)
}

// loadData opens the dataset's splits and builds the training and test loaders.
func (c *Train) loadData(seed int64) (*trainData, error) {
	train, test, spec, err := OpenTrainTestCrop(c.Dataset, c.DataDir, c.LimitTrain, c.LimitTest, c.ImageSize)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if err := CheckBatch(c.Batch, train.Len()); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if test.NumClasses() != train.NumClasses() {
		return nil, fmt.Errorf("train: %s: the test split has %d classes, the train split %d", c.Dataset, test.NumClasses(), train.NumClasses())
	}
	norm := spec.Norm()
	h, w := train.H, train.W
	var ops []data.Op
	if c.PadTo32 && (h < 32 || w < 32) {
		h, w = max(h, 32), max(w, 32)
		ops = append(ops, data.PadTo{H: h, W: w})
	}
	ops = augmentOps(ops, h, w, c.Padding, c.NoFlip, c.NoAugment)
	trainPipe := data.Pipeline{Ops: append(ops, norm)}
	testPipe := data.TestTransform(norm)
	if h != train.H || w != train.W {
		testPipe = testPipe.PadFirst(h, w)
	}
	if c.ImageSize > 0 {
		h, w = c.ImageSize, c.ImageSize
		trainPipe, testPipe = data.FolderRecipe(c.ImageSize, norm)
		if c.NoAugment {
			trainPipe = testPipe
		}
	}
	trainLoader, err := data.NewLoader(train, data.LoaderConfig{
		BatchSize: c.Batch, Transforms: []data.Pipeline{trainPipe}, Shuffle: true, DropLast: c.DropLast,
		Seed: uint64(seed), Workers: c.Workers,
	})
	if err != nil {
		return nil, fmt.Errorf("train: training set: %w", err)
	}
	testLoader, err := data.NewLoader(test, data.LoaderConfig{
		BatchSize: c.EvalBatch, Transforms: []data.Pipeline{testPipe}, Workers: c.Workers,
	})
	if err != nil {
		return nil, fmt.Errorf("train: test set: %w", err)
	}
	// The record gives the shape the model takes (32x32 with --pad-to-32).
	spec.Height, spec.Width = h, w
	rec, err := rundir.ModelNamed(c.Model, train.NumClasses(), spec, TrainModelScope)
	if err != nil {
		return nil, Usagef("train: --model: %w", err)
	}
	return &trainData{train: trainLoader, test: testLoader, record: rec}, nil
}

// FitConfig is the training-loop configuration the options describe, for a run in runDir.
func (c *Train) FitConfig(runDir string, seed int64, rec rundir.Model) fit.Config {
	lr := c.LR
	if lr == 0 {
		lr = distill.Recipes["repdistiller"].BaseLR(0, rec.Lightweight())
	}
	sched := fit.Schedule{Kind: fit.ScheduleConstant, BaseLR: lr}
	switch c.Schedule {
	case "multistep":
		sched = fit.Schedule{Kind: fit.ScheduleMultiStep, BaseLR: lr, Milestones: slices.Clone(c.Milestones), Factor: c.LRFactor}
	case "cosine":
		sched = fit.Schedule{Kind: fit.ScheduleWarmupCosine, BaseLR: lr, WarmupSteps: c.Warmup}
	}
	cfg := c.loopConfig(c.EvalEvery, runDir, seed)
	cfg.Epochs = c.Epochs
	cfg.Optimizer = fit.Optimizer{
		Kind: fit.OptimizerSGD, Momentum: c.Momentum, Nesterov: c.Nesterov, WeightDecay: c.WeightDecay,
		DecayBiasAndNorm: !c.WDExcludeBiasNorm,
	}
	if c.Optimizer == fit.OptimizerAdamW {
		cfg.Optimizer = fit.Optimizer{Kind: fit.OptimizerAdamW, WeightDecay: c.WeightDecay, DecayBiasAndNorm: !c.WDExcludeBiasNorm}
	}
	cfg.Schedule = sched
	return cfg
}

// TrainResult is what a training run reports.
type TrainResult struct {
	// RunDir is the run directory.
	RunDir string
	// Result is the training loop's.
	Result *fit.Result
	// Record is the trained model's record (config.json's).
	Record rundir.Model
	// Params counts the model's parameters.
	Params int
	// Seconds is the run's wall time.
	Seconds float64
}

// Run trains in env.RunDir (with c.Resume, continues the run there from its newest checkpoint).
// Cancelling cancel stops the run after the current step with a checkpoint and returns an error
// wrapping fit.ErrInterrupted.
func (c *Train) Run(cancel stdctx.Context, env Env) (*TrainResult, error) {
	start := time.Now()
	if err := c.Check(); err != nil {
		return nil, err
	}
	backend := env.Backend
	if err := rundir.CheckModelName(c.Model); err != nil {
		return nil, Usagef("train: --model: %w", err)
	}
	seed := env.Seed
	td, err := c.loadData(seed)
	if err != nil {
		return nil, err
	}
	rec := td.record
	classes := rec.Classes()
	input := cnn.MapShape{H: rec.Data.Height, W: rec.Data.Width, C: rec.Data.Channels}
	_, nParams, err := distill.DescribeEncoder(backend, rec.Features, input.H, input.W, input.C)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	dp, err := env.DataParallel(c.Batch, td.train.NumExamples(), c.DropLast)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	runDir := env.RunDir
	if err := CheckRunDir(runDir, c.Resume); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if c.Resume {
		if err := rundir.CheckResume(backend, runDir, rec); err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
	}
	cfg := c.FitConfig(runDir, seed, rec)
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	ctx := context.New()
	if c.Init != "" && !c.Resume {
		if err := initFrom(env, backend, ctx, c.Init, rec, TrainModelScope); err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
	}
	// The first write: everything above only checked and read.
	if err := rundir.WriteConfig(runDir, rundir.Params{Command: "train", Model: rec, Flags: c}, cfg, c.Resume); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	env.Log.Info().Str("model", c.Model).Int64("params", nParams).Str("dataset", c.Dataset).
		Int("train_images", td.train.NumExamples()).Int("test_images", td.test.NumExamples()).
		Int("classes", classes).Str("input", input.String()).Int("steps_per_epoch", td.train.StepsPerEpoch()).
		Str("backend", backend.Name()).Str("run_dir", runDir).Msg("train")

	modelCtx := func(ctx *context.Context) *context.Context { return ctx.InAbsPath(TrainModelScope) }
	lossFn := func(ctx *context.Context, in fit.Inputs) fit.Loss {
		if in.Labels == nil {
			panic(errors.New("train: the training batches carry no labels"))
		}
		f := rec.Features(modelCtx(ctx), in.Images)
		return fit.Classification(f.Logits, in.Labels)
	}
	evalFn, releaseEval := testEvaluator(backend, dp, func(ctx *context.Context, images *graph.Node) *graph.Node {
		return rec.Features(modelCtx(ctx), images).Logits
	}, td.test)
	defer releaseEval()
	res, err := fit.Run(cancel, fit.Job{
		Backend: backend, Context: ctx, Train: td.train, Loss: lossFn, Eval: evalFn,
		Log: env.Log, Terminal: env.Terminal, Parallel: dp, Models: []fit.ModelRecord{rec.Record("model")}, Abort: env.Abort,
	}, cfg)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	out := &TrainResult{RunDir: runDir, Result: res, Record: rec, Params: int(nParams), Seconds: time.Since(start).Seconds()}
	ev := env.Log.Info().Str("model", c.Model).Int("epochs", res.Epochs).Int64("steps", res.GlobalStep).
		Float64("train_loss", res.TrainLoss)
	for _, k := range []string{"test_top1", "test_top5", "test_loss"} {
		if v, ok := res.Metrics[k]; ok {
			ev = ev.Float64(k, v)
		}
	}
	if res.HasBest {
		ev = ev.Float64("best_test_top1", res.BestMetric).Int("best_epoch", res.BestEpoch)
	}
	ev.Float64("images_per_sec", res.ImagesPerSec).Float64("seconds", out.Seconds).Str("checkpoint", res.Checkpoint).
		Str("run_dir", runDir).Msg("training done")
	return out, nil
}
